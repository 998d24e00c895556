#include "http_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <arpa/inet.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>

namespace dynaseal::integration {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

json::value HttpResponse::json() const { return json::parse(body); }

std::string HttpResponse::error_code() const {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const json::value* error = v.get_object().if_contains("error");
  if (error == nullptr || !error->is_object()) return "";
  const json::value* code = error->get_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return "";
  return std::string(code->get_string());
}

struct HttpConnection::Parser {
  std::optional<http::response_parser<http::string_body>> message;
  boost::beast::flat_buffer buffer;

  void begin() {
    message.emplace();
    message->eager(true);
    message->body_limit(boost::none);
  }
};

HttpConnection::HttpConnection(std::uint16_t port)
    : parser_(std::make_unique<Parser>()), port_(port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(err));
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpConnection::~HttpConnection() { close(); }

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool HttpConnection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool HttpConnection::send_request(std::string_view method, std::string_view target,
                                  std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  req.append("Host: 127.0.0.1:").append(std::to_string(port_)).append("\r\n");
  for (const auto& [name, value] : headers)
    req.append(name).append(": ").append(value).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.append("Content-Type: application/json\r\n");
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  return send_raw(req);
}

bool HttpConnection::pump(const std::function<bool()>& stop, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Parser& p = *parser_;
  auto sync = [&] {
    if (!p.message->is_header_done()) return;
    const auto& m = p.message->get();
    current_.status = m.result_int();
    current_.headers.clear();
    for (const auto& field : m) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      current_.headers[name] = std::string(field.value());
    }
    current_.body = m.body();
    current_.complete = p.message->is_done();
  };
  for (;;) {
    while (p.buffer.size() > 0 && !p.message->is_done()) {
      boost::system::error_code ec;
      const std::size_t n = p.message->put(p.buffer.data(), ec);
      p.buffer.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) {
        sync();
        return false;
      }
      if (n == 0) break;
    }
    sync();
    if (stop() || p.message->is_done()) return stop();
    if (fd_ < 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
    auto space = p.buffer.prepare(64 * 1024);
    const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      boost::system::error_code ec;
      if (n == 0 && p.message->is_header_done()) p.message->put_eof(ec);
      sync();
      return stop();
    }
    p.buffer.commit(static_cast<std::size_t>(n));
  }
}

HttpResponse HttpConnection::read_response(std::chrono::milliseconds timeout) {
  parser_->begin();
  current_ = HttpResponse{};
  pump([] { return false; }, timeout);
  return current_;
}

HttpResponse& HttpConnection::read_until(const std::function<bool(const std::string&)>& done,
                                         std::chrono::milliseconds timeout) {
  if (!parser_->message) {
    parser_->begin();
    current_ = HttpResponse{};
  }
  pump([&] { return parser_->message->is_header_done() && done(parser_->message->get().body()); },
       timeout);
  return current_;
}

HttpResponse& HttpConnection::read_rest(std::chrono::milliseconds timeout) {
  if (!parser_->message) parser_->begin();
  pump([] { return false; }, timeout);
  return current_;
}

bool HttpConnection::wait_closed(std::chrono::milliseconds timeout, std::string* received) {
  const auto deadline = Clock::now() + timeout;
  if (parser_->buffer.size() > 0 && received != nullptr) {
    const auto data = parser_->buffer.data();
    received->append(static_cast<const char*>(data.data()), data.size());
    parser_->buffer.consume(data.size());
  }
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    if (received != nullptr) received->append(buf, static_cast<std::size_t>(n));
  }
}

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body, std::string_view bearer,
                          std::chrono::milliseconds timeout) {
  HttpConnection c(port);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + std::string(bearer));
  c.send_request(method, target, body, headers);
  return c.read_response(timeout);
}

std::vector<std::string> sse_data(std::string_view body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      out.emplace_back(line);
    }
    start = nl + 1;
  }
  return out;
}

double metric(std::string_view text, std::string_view series) {
  std::size_t at = 0;
  while ((at = text.find(series, at)) != std::string_view::npos) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const std::size_t after = at + series.size();
    if (line_start && after < text.size() && text[after] == ' ') {
      return std::strtod(std::string(text.substr(after + 1, 40)).c_str(), nullptr);
    }
    at = after;
  }
  return 0;
}

}  // namespace dynaseal::integration

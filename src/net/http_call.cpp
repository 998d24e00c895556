#include "net/http_call.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "net/http_client.hpp"

namespace dynaseal::net {
namespace {

asio::awaitable<void> exchange(UpstreamPool& pool, http::request<http::string_body>& req,
                               Result<HttpReply>& out) {
  UpstreamCall call(pool);
  if (auto e = co_await call.send(req)) {
    out = Unexpected(*e);
    co_return;
  }
  const unsigned status = call.head().result_int();
  auto body = co_await call.read_all(kMaxReplyBytes);
  if (!body) {
    out = Unexpected(body.error());
    co_return;
  }
  out = HttpReply{.status = status, .body = std::move(*body)};
}

}  // namespace

std::string HttpReply::error_code() const {
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) return "";
  const auto* error = doc.as_object().if_contains("error");
  if (error == nullptr || !error->is_object()) return "";
  const auto* code = error->as_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return "";
  return std::string(code->as_string());
}

Error HttpReply::error() const {
  switch (status) {
    case 401: return Error::admin_unauthorized;
    case 404: return Error::not_found;
    case 409: return Error::conflict;
    default: return Error::upstream_error;
  }
}

std::string HttpReply::describe() const {
  const std::string code = error_code();
  return "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code);
}

Result<HttpReply> http_call(std::string_view base_url, http::verb method, std::string_view target,
                            std::string body, std::string_view bearer,
                            std::chrono::milliseconds timeout) {
  auto where = parse_upstream_url(base_url);
  if (!where) return Unexpected(Error::upstream_error);
  http::request<http::string_body> req{method, std::string(target), 11};
  req.set(http::field::accept, "application/json");
  if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + std::string(bearer));
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  ClientOptions options;
  options.connect_timeout = options.first_byte_timeout = options.idle_timeout =
      options.total_timeout = timeout;
  asio::io_context ioc;
  Result<HttpReply> out = Unexpected(Error::upstream_error);
  {
    UpstreamPool pool(ioc.get_executor(), *where, options);
    asio::co_spawn(ioc, exchange(pool, req, out), asio::detached);
    ioc.run();
  }
  return out;
}

}  // namespace dynaseal::net

// A blocking HTTP/1.1 client for the integration tests, on raw sockets so that tests can also
// misbehave: send byte by byte, send garbage, stop reading, close mid-stream. Responses are
// parsed with Beast's parser; every read has a deadline, so a test never hangs on a server that
// does not answer.
//
//   HttpResponse r = http_post(port, "/v1/chat/completions", body, token);
//   HttpConnection c(port);                       // or step by step, e.g. for a stream:
//   c.send_request("POST", "/v1/chat/completions", body, {{"Authorization", "Bearer " + t}});
//   c.read_until([](const std::string& b) { return sse_data(b).size() >= 2; });
//   c.close();                                    // leave mid-stream
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace dynaseal::integration {

using namespace std::chrono_literals;

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  bool complete = false;  // the whole message was read (chunked: the last chunk arrived)

  std::string header(const std::string& name) const;
  boost::json::value json() const;  // throws when the body is not JSON
  // error.code of an OpenAI error body, or "" when there is none.
  std::string error_code() const;
};

// A blocking client connection to 127.0.0.1:port. Every read has a deadline, so a test never
// hangs on a server that does not answer.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends raw bytes; false when the peer closed or reset the connection.
  bool send_raw(std::string_view bytes);
  // Sends a request (Host, Content-Length and Content-Type added when a body is given).
  bool send_request(std::string_view method, std::string_view target, std::string_view body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Reads one whole response. On EOF / reset / timeout before the end, returns what was read
  // (status 0 when not even the head arrived) with complete == false.
  HttpResponse read_response(std::chrono::milliseconds timeout = 20s);
  // Reads the head and then body bytes until `done(body)` is true, the message ends or the
  // timeout passes. Call again to continue; body accumulates across calls.
  HttpResponse& read_until(const std::function<bool(const std::string& body)>& done,
                           std::chrono::milliseconds timeout = 20s);
  // After read_until: reads the rest of the message.
  HttpResponse& read_rest(std::chrono::milliseconds timeout = 20s);

  // True when the server closed the connection (EOF or reset) within `timeout`; bytes that
  // arrive meanwhile are appended to `received` (if given).
  bool wait_closed(std::chrono::milliseconds timeout, std::string* received = nullptr);

  void close();
  int fd() const { return fd_; }

 private:
  struct Parser;
  // Feeds bytes to the parser until `stop()`; false on EOF, error or timeout.
  bool pump(const std::function<bool()>& stop, std::chrono::milliseconds timeout);

  int fd_ = -1;
  std::unique_ptr<Parser> parser_;
  HttpResponse current_;
  std::uint16_t port_;
};

// One request per connection (Connection: close is not sent; the connection is just dropped).
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body = "", std::string_view bearer = "",
                          std::chrono::milliseconds timeout = 20s);
inline HttpResponse http_get(std::uint16_t port, std::string_view target,
                             std::string_view bearer = "") {
  return http_request(port, "GET", target, "", bearer);
}
inline HttpResponse http_post(std::uint16_t port, std::string_view target, std::string_view body,
                              std::string_view bearer = "") {
  return http_request(port, "POST", target, body, bearer);
}

// The `data:` payloads of an SSE body, in order.
std::vector<std::string> sse_data(std::string_view body);

// A metric's value in Prometheus text (`series` is the name with its labels exactly as
// rendered, e.g. dynaseal_usage_records_total{status="ok"}); 0 when absent.
double metric(std::string_view text, std::string_view series);

}  // namespace dynaseal::integration

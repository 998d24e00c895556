// A stand-in for a backend's callback endpoint: an HTTP server in the test process that records
// every usage callback the LLM server delivers (headers and raw body) and answers with a status
// the test chooses, so tests can take a receiver "down" (500) and bring it back.
//
//   CallbackReceiver callbacks;                      // 127.0.0.1, a free port
//   ... server config: callback_url = callbacks.url()
//   auto event = callbacks.wait_event(c.jti, 1, 5s);  // the accepted event's body as JSON
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/crypto.hpp"
#include "net/http_server.hpp"

namespace dynaseal::integration {

struct ReceivedCallback {
  std::string id;  // webhook-id
  std::string timestamp;
  std::string signature;
  std::string body;
  unsigned answered = 0;  // the status we replied with
};

class CallbackReceiver {
 public:
  CallbackReceiver();
  ~CallbackReceiver();

  std::string url() const;            // http://127.0.0.1:PORT/v1/callbacks/usage
  void answer_with(unsigned status);  // 204 by default

  std::vector<ReceivedCallback> received() const;
  // Callbacks we acknowledged (2xx), each webhook-id counted as often as it was acknowledged.
  std::size_t acknowledged(const std::string& webhook_id) const;
  std::size_t acknowledged_total() const;
  // The body of the first acknowledged callback for `jti`.`use`, waiting up to `timeout`.
  std::optional<boost::json::object> wait_event(const std::string& jti, std::int64_t use,
                                                std::chrono::milliseconds timeout) const;
  // Waits until `n` distinct webhook-ids were acknowledged.
  bool wait_acknowledged(std::size_t n, std::chrono::milliseconds timeout) const;
  std::size_t distinct_acknowledged() const;
  // The webhook-ids acknowledged with two different bodies (delivery is at least once, but a
  // redelivery must carry the same bytes): empty when every id kept its body.
  std::vector<std::string> ids_with_two_bodies() const;

 private:
  mutable std::mutex mutex_;
  std::vector<ReceivedCallback> received_;
  unsigned status_ = 204;
  std::unique_ptr<net::HttpServer> http_;
};

// True when `c` carries a valid v1a signature by `server_key` and a fresh timestamp.
bool signed_by(const ReceivedCallback& c, const PublicKey& server_key);

}  // namespace dynaseal::integration

#include "callback_receiver.hpp"

#include <map>
#include <set>
#include <thread>

#include <boost/json/parse.hpp>

#include "core/webhook.hpp"

namespace dynaseal::integration {

CallbackReceiver::CallbackReceiver() {
  net::ServerOptions options;
  options.threads = 1;
  http_ = std::make_unique<net::HttpServer>(
      options,
      [this](net::Exchange& ex) -> net::asio::awaitable<void> {
        const net::Request& req = ex.request();
        ReceivedCallback c{std::string(req["webhook-id"]), std::string(req["webhook-timestamp"]),
                           std::string(req["webhook-signature"]), req.body(), 0};
        unsigned status = 0;
        {
          std::lock_guard lock(mutex_);
          status = status_;
          c.answered = status;
          received_.push_back(std::move(c));
        }
        co_await ex.respond(
            net::make_response(req, static_cast<net::http::status>(status), "", "text/plain"));
      },
      [](Error, net::http::status status) {
        return net::Response{status, 11};
      });
  http_->start();
}

CallbackReceiver::~CallbackReceiver() {
  http_->stop(std::chrono::milliseconds(0));
  http_->wait();
}

std::string CallbackReceiver::url() const {
  return "http://127.0.0.1:" + std::to_string(http_->port()) + "/v1/callbacks/usage";
}

void CallbackReceiver::answer_with(unsigned status) {
  std::lock_guard lock(mutex_);
  status_ = status;
}

std::vector<ReceivedCallback> CallbackReceiver::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

std::size_t CallbackReceiver::acknowledged(const std::string& webhook_id) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& c : received_) n += c.id == webhook_id && c.answered / 100 == 2;
  return n;
}

std::size_t CallbackReceiver::acknowledged_total() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& c : received_) n += c.answered / 100 == 2;
  return n;
}

std::size_t CallbackReceiver::distinct_acknowledged() const {
  std::lock_guard lock(mutex_);
  std::set<std::string> ids;
  for (const auto& c : received_) {
    if (c.answered / 100 == 2) ids.insert(c.id);
  }
  return ids.size();
}

std::vector<std::string> CallbackReceiver::ids_with_two_bodies() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, const std::string*> bodies;
  std::set<std::string> twice;
  for (const auto& c : received_) {
    if (c.answered / 100 != 2) continue;
    auto [it, fresh] = bodies.emplace(c.id, &c.body);
    if (!fresh && *it->second != c.body) twice.insert(c.id);
  }
  return {twice.begin(), twice.end()};
}

bool CallbackReceiver::wait_acknowledged(std::size_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (distinct_acknowledged() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::optional<boost::json::object> CallbackReceiver::wait_event(
    const std::string& jti, std::int64_t use, std::chrono::milliseconds timeout) const {
  const std::string id = jti + "." + std::to_string(use);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      for (const auto& c : received_) {
        if (c.id == id && c.answered / 100 == 2) return boost::json::parse(c.body).as_object();
      }
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool signed_by(const ReceivedCallback& c, const PublicKey& server_key) {
  const PublicKey keys[] = {server_key};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  return verify_webhook({c.id, c.timestamp, c.signature}, c.body, keys, now, 300).has_value();
}

}  // namespace dynaseal::integration

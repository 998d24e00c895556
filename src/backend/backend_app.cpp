#include "backend/backend_app.hpp"

#include <spdlog/spdlog.h>

#include "backend/service.hpp"
#include "backend/signing_key.hpp"
#include "backend/store_pool.hpp"
#include "backend/usage_writer.hpp"
#include "net/http_errors.hpp"
#include "store/process_lock.hpp"

namespace dynaseal::backend {
namespace {

// Opens the database at start, so that a schema this build cannot use stops the start with
// the reason, and records the key in the signing_key file as the active one. The connection
// becomes the usage writer's.
std::unique_ptr<BackendStore> prepare_store(const BackendConfig& c, const ActiveKey& key) {
  std::string why;
  auto store = open_backend_store(c.db, c.db_path, &why);
  if (!store) throw ConfigError("db: " + (why.empty() ? c.db_path.string() : why));
  if (!(*store)->activate_signing_key(key.kid, key.public_jwk, system_unix_ms() / 1000)) {
    throw ConfigError("db: cannot record the signing key");
  }
  return std::move(*store);
}

}  // namespace

struct BackendApp::Impl {
  BackendConfig config;
  // SQLite: one backend per database file (store/process_lock.hpp).
  std::optional<store::ProcessLock> db_lock = store::ProcessLock::acquire_sqlite(config.db_path);
  SigningKeySource keys;
  StorePool stores;
  std::unique_ptr<UsageWriter> writer;  // stopped after the HTTP server (~BackendApp)
  std::unique_ptr<BackendService> service;
  std::unique_ptr<net::HttpServer> http;

  explicit Impl(BackendConfig c)
      : config(std::move(c)),
        keys(config.signing_key),
        stores([db = config.db, path = config.db_path] { return open_backend_store(db, path); }) {}
};

BackendApp::BackendApp(BackendConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
  Impl& i = *impl_;
  i.writer =
      std::make_unique<UsageWriter>(prepare_store(i.config, *i.keys.current(system_unix_ms())));
  i.service = std::make_unique<BackendService>(i.config, i.stores, *i.writer, i.keys);
  // Requests the HTTP layer refuses itself (413, 431, 400) never reach the service.
  net::Rejecter reject = [](Error e, net::http::status status) {
    net::Response res{status, 11};
    res.set(net::http::field::content_type, "application/json");
    res.body() = net::error_body(e);
    return res;
  };
  BackendService& service = *i.service;
  i.http = std::make_unique<net::HttpServer>(
      i.config.http, [&service](net::Exchange& ex) { return service.handle(ex); },
      std::move(reject));
  spdlog::info("backend {} for server {}: signing with kid {}", i.config.id, i.config.server.id,
               i.keys.current(system_unix_ms())->kid);
}

BackendApp::~BackendApp() {
  stop(std::chrono::milliseconds(0));
  wait();
  // Callbacks still queued are recorded; their replies go nowhere (the server retries them).
  impl_->writer->stop();
}

std::uint16_t BackendApp::port() const { return impl_->http->port(); }

void BackendApp::start() { impl_->http->start(); }

void BackendApp::stop(std::chrono::milliseconds grace) { impl_->http->stop(grace); }

void BackendApp::wait() { impl_->http->wait(); }

}  // namespace dynaseal::backend

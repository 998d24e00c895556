// The backend assembled from its configuration: the signing key (created on first start), the
// store (migrated on open, one connection per worker thread), the HTTP service and server.
//
//   BackendApp app(load_backend_config("backend.toml"));   // throws ConfigError / system_error
//   app.start();                                            // listening on app.port()
//   ...; app.stop(std::chrono::seconds(10)); app.wait();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "backend/config.hpp"

namespace dynaseal::backend {

class BackendApp {
 public:
  explicit BackendApp(BackendConfig config);
  ~BackendApp();
  BackendApp(const BackendApp&) = delete;
  BackendApp& operator=(const BackendApp&) = delete;

  std::uint16_t port() const;
  void start();
  // Stops accepting and lets in-flight requests finish for up to `grace`.
  void stop(std::chrono::milliseconds grace);
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynaseal::backend

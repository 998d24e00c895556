// The LLM server assembled from its configuration: identity key and admin token (created on
// first start), backend registry, use store, router, gateway and HTTP server.
//
//   ServerApp app(load_server_config("server.toml"));   // throws ConfigError / std::system_error
//   app.start();                                         // listening on app.port()
//   ...; app.stop(std::chrono::seconds(10)); app.wait();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "server/config.hpp"

namespace dynaseal::server {

class ServerApp {
 public:
  explicit ServerApp(ServerConfig config);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  std::uint16_t port() const;
  void start();
  // Stops accepting and lets in-flight requests finish for up to `grace`.
  void stop(std::chrono::milliseconds grace);
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynaseal::server

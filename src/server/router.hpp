// Routes a model to the upstream engine that serves it, and hands out connection pools.
//
// Pools are per worker thread (net::UpstreamPool is single-threaded), created on first use and
// kept for the life of the thread, so forwarding takes no lock.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "core/string_map.hpp"
#include "net/http_client.hpp"
#include "server/config.hpp"

namespace dynaseal::server {

class Router {
 public:
  explicit Router(std::vector<UpstreamConfig> upstreams);

  // The upstream serving `model`, or nullptr.
  const UpstreamConfig* route(std::string_view model) const;
  // This thread's pool for `upstream` (which must come from route()).
  net::UpstreamPool& pool(const UpstreamConfig& upstream, const boost::asio::any_io_executor& ex);
  const std::vector<UpstreamConfig>& upstreams() const { return upstreams_; }

 private:
  std::vector<UpstreamConfig> upstreams_;
  StringMap<std::size_t> by_model_;
  std::uint64_t generation_;  // never reused, so a thread's pools belong to one router
};

}  // namespace dynaseal::server

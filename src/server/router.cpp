#include "server/router.hpp"

#include <map>
#include <memory>

namespace dynaseal::server {
namespace {

std::atomic<std::uint64_t> next_generation{1};

// This thread's pools: router generation -> one pool per upstream index.
thread_local std::map<std::uint64_t, std::vector<std::unique_ptr<net::UpstreamPool>>> pools;

}  // namespace

Router::Router(std::vector<UpstreamConfig> upstreams)
    : upstreams_(std::move(upstreams)), generation_(next_generation++) {
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    for (const std::string& model : upstreams_[i].models) by_model_.emplace(model, i);
  }
}

const UpstreamConfig* Router::route(std::string_view model) const {
  auto it = by_model_.find(model);
  return it == by_model_.end() ? nullptr : &upstreams_[it->second];
}

net::UpstreamPool& Router::pool(const UpstreamConfig& upstream,
                                const boost::asio::any_io_executor& ex) {
  auto& mine = pools[generation_];
  if (mine.empty()) mine.resize(upstreams_.size());
  const auto index = static_cast<std::size_t>(&upstream - upstreams_.data());
  if (!mine[index]) {
    mine[index] = std::make_unique<net::UpstreamPool>(ex, upstream.target, upstream.client);
  }
  return *mine[index];
}

}  // namespace dynaseal::server

#include "server/registry_sync.hpp"

#include <spdlog/spdlog.h>

#include "core/jwk.hpp"

namespace dynaseal::server {
namespace {

bool same(const store::RegisteredBackend& a, const store::RegisteredBackend& b) {
  return a.jwks == b.jwks && a.callback_url == b.callback_url;
}

}  // namespace

RegistrySync::RegistrySync(BackendRegistry& registry,
                           const std::vector<store::RegisteredBackend>& loaded)
    : registry_(registry) {
  for (const store::RegisteredBackend& r : loaded) seen_.emplace(r.id, r);
}

std::size_t RegistrySync::apply(const std::vector<store::RegisteredBackend>& stored) {
  std::size_t changes = 0;
  std::map<std::string, store::RegisteredBackend, std::less<>> now;
  for (const store::RegisteredBackend& r : stored) {
    now.emplace(r.id, r);
    auto it = seen_.find(r.id);
    if (it != seen_.end() && same(it->second, r)) continue;
    ++changes;
    auto keys = parse_jwks(r.jwks);
    if (!keys) {
      spdlog::error("backend {}: the stored JWKS is invalid; keeping the current keys", r.id);
      continue;
    }
    const Backend b{r.id, std::move(*keys), r.callback_url};
    registry_.restore(r.id, &b);
    spdlog::info("backend {}: registration changed in the database, applied", r.id);
  }
  for (const auto& [id, row] : seen_) {
    if (now.count(id)) continue;
    ++changes;
    registry_.restore(id, nullptr);
    spdlog::info("backend {}: removed in the database, removed here too", id);
  }
  seen_ = std::move(now);
  return changes;
}

}  // namespace dynaseal::server

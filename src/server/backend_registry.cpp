#include "server/backend_registry.hpp"

#include <algorithm>

namespace dynaseal::server {

BackendRegistry::BackendRegistry() : current_(std::make_shared<const RegistrySnapshot>()) {}

std::shared_ptr<const RegistrySnapshot> BackendRegistry::snapshot() const {
  return current_.load(std::memory_order_acquire);
}

template <class Change>
Result<void> BackendRegistry::update(Change&& change) {
  std::lock_guard lock(write_);
  auto next = std::make_shared<RegistrySnapshot>(*current_.load());
  if (auto r = change(next->backends); !r) return r;
  next->issuers = IssuerRegistry();
  for (const auto& [id, b] : next->backends) next->issuers.set_issuer(id, b.keys);
  current_.store(std::move(next), std::memory_order_release);
  return {};
}

Result<void> BackendRegistry::add(Backend backend) {
  return update([&](auto& backends) -> Result<void> {
    if (backends.count(backend.id)) return Unexpected(Error::conflict);
    std::string id = backend.id;
    backends.emplace(std::move(id), std::move(backend));
    return {};
  });
}

Result<void> BackendRegistry::replace(Backend backend) {
  return update([&](auto& backends) -> Result<void> {
    auto it = backends.find(backend.id);
    if (it == backends.end()) return Unexpected(Error::not_found);
    it->second = std::move(backend);
    return {};
  });
}

Result<void> BackendRegistry::add_keys(std::string_view id, const std::vector<PublicJwk>& keys) {
  return update([&](auto& backends) -> Result<void> {
    auto it = backends.find(id);
    if (it == backends.end()) return Unexpected(Error::not_found);
    for (const PublicJwk& k : keys) {
      auto& have = it->second.keys;
      if (std::none_of(have.begin(), have.end(),
                       [&](const PublicJwk& h) { return h.kid == k.kid; })) {
        have.push_back(k);
      }
    }
    return {};
  });
}

Result<void> BackendRegistry::remove_key(std::string_view id, std::string_view kid) {
  return update([&](auto& backends) -> Result<void> {
    auto it = backends.find(id);
    if (it == backends.end()) return Unexpected(Error::not_found);
    auto& keys = it->second.keys;
    auto k =
        std::find_if(keys.begin(), keys.end(), [&](const PublicJwk& j) { return j.kid == kid; });
    if (k == keys.end()) return Unexpected(Error::not_found);
    if (keys.size() == 1) return Unexpected(Error::conflict);
    keys.erase(k);
    return {};
  });
}

void BackendRegistry::restore(std::string_view id, const Backend* previous) {
  (void)update([&](auto& backends) -> Result<void> {
    if (auto it = backends.find(id); it != backends.end()) backends.erase(it);
    if (previous != nullptr) backends.emplace(previous->id, *previous);
    return {};
  });
}

Result<void> BackendRegistry::remove(std::string_view id) {
  return update([&](auto& backends) -> Result<void> {
    auto it = backends.find(id);
    if (it == backends.end()) return Unexpected(Error::not_found);
    backends.erase(it);
    return {};
  });
}

}  // namespace dynaseal::server

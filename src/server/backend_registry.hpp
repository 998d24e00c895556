// The backends registered with this server: their ids (token issuers), public keys and
// callback URLs. Readers take an immutable snapshot without locking (one atomic load per
// request); writers (config at start, the admin API) build a new snapshot and swap it in.
//
//   auto snap = registry.snapshot();
//   verify_key(token, snap->issuers, ...);
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/issuer_registry.hpp"

namespace dynaseal::server {

struct Backend {
  std::string id;
  std::vector<PublicJwk> keys;
  std::string callback_url;
};

struct RegistrySnapshot {
  IssuerRegistry issuers;
  std::map<std::string, Backend, std::less<>> backends;
};

class BackendRegistry {
 public:
  BackendRegistry();

  std::shared_ptr<const RegistrySnapshot> snapshot() const;

  // conflict when the id exists.
  Result<void> add(Backend backend);
  // Replaces keys and callback URL of an existing backend; not_found otherwise.
  Result<void> replace(Backend backend);
  // Adds keys to a backend (rotation: the new key is accepted before it signs anything).
  Result<void> add_keys(std::string_view id, const std::vector<PublicJwk>& keys);
  // Removes one key; not_found for an unknown backend or kid; conflict when it is the last.
  Result<void> remove_key(std::string_view id, std::string_view kid);
  Result<void> remove(std::string_view id);
  // Puts backend `id` back as it was (`previous`, or absent when null): undoes a change that
  // could not be stored.
  void restore(std::string_view id, const Backend* previous);

 private:
  // Applies `change` to a copy of the current snapshot and publishes it.
  template <class Change>
  Result<void> update(Change&& change);

  std::mutex write_;
  std::atomic<std::shared_ptr<const RegistrySnapshot>> current_;
};

}  // namespace dynaseal::server

#include "core/issuer_registry.hpp"

namespace dynaseal {

void IssuerRegistry::set_issuer(std::string iss, std::vector<PublicJwk> keys) {
  issuers_.insert_or_assign(std::move(iss), std::move(keys));
}

bool IssuerRegistry::remove_issuer(std::string_view iss) {
  auto it = issuers_.find(iss);
  if (it == issuers_.end()) return false;
  issuers_.erase(it);
  return true;
}

bool IssuerRegistry::has_issuer(std::string_view iss) const {
  return issuers_.find(iss) != issuers_.end();
}

const PublicJwk* IssuerRegistry::find_key(std::string_view iss, std::string_view kid) const {
  const std::vector<PublicJwk>* keys = keys_of(iss);
  if (keys == nullptr) return nullptr;
  // An issuer has a handful of keys at most (current and rotating); a scan beats a hash.
  for (const PublicJwk& key : *keys) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

const std::vector<PublicJwk>* IssuerRegistry::keys_of(std::string_view iss) const {
  auto it = issuers_.find(iss);
  return it == issuers_.end() ? nullptr : &it->second;
}

}  // namespace dynaseal

// Which backends (issuers) may mint keys for this server, and with which public keys.
//
// An immutable-after-build value: the server builds a new registry when backends change and
// swaps it in atomically, so the verification path reads it without locks.
//
//   IssuerRegistry registry;
//   registry.set_issuer("acme", *parse_jwks(text));
//   const PublicJwk* key = registry.find_key("acme", kid);
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/jwk.hpp"
#include "core/string_map.hpp"

namespace dynaseal {

class IssuerRegistry {
 public:
  // Replaces the keys of `iss` (adding the issuer when new).
  void set_issuer(std::string iss, std::vector<PublicJwk> keys);
  // Returns false when `iss` was not registered.
  bool remove_issuer(std::string_view iss);

  bool has_issuer(std::string_view iss) const;
  // The key `kid` of `iss`, or nullptr. The pointer lives as long as the registry is unchanged.
  const PublicJwk* find_key(std::string_view iss, std::string_view kid) const;
  // Every registered issuer's keys, for listing.
  const std::vector<PublicJwk>* keys_of(std::string_view iss) const;
  std::size_t size() const { return issuers_.size(); }

 private:
  StringMap<std::vector<PublicJwk>> issuers_;
};

}  // namespace dynaseal

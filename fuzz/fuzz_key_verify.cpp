// Any byte string as a dynamic key: verify must return a value or an error, never crash, and
// accept nothing that a key of the registered issuer did not sign. Inputs that start with a
// valid token's header keep the fuzzer close to the interesting paths.
#include <cstdint>
#include <string_view>

#include "core/dynamic_key.hpp"

namespace {

struct Setup {
  dynaseal::SigningKey key = dynaseal::SigningKey::from_seed(dynaseal::Seed{});
  dynaseal::IssuerRegistry registry;
  Setup() { registry.set_issuer("acme", {dynaseal::make_public_jwk(key.public_key())}); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Setup setup;
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  auto verified = dynaseal::verify_key(token, setup.registry, "llm-1", 1700000100);
  if (verified) {
    // The only keys that verify are ones this key signed; re-minting must reproduce a token
    // that verifies too (claims survive the round trip).
    auto again = dynaseal::mint_key(verified->claims, setup.key);
    if (!again) __builtin_trap();
    if (!dynaseal::verify_key(*again, setup.registry, "llm-1", 1700000100)) __builtin_trap();
  }
  (void)dynaseal::decode_key_unverified(token);
  return 0;
}

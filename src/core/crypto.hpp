// The primitives Dynaseal uses, all from libsodium: Ed25519 (RFC 8032), SHA-256 and the
// system CSPRNG. Nothing here is implemented by hand.
//
//   SigningKey key = SigningKey::generate();
//   Signature sig = key.sign(bytes);
//   bool ok = ed25519_verify(sig, bytes, key.public_key());
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace dynaseal {

using PublicKey = std::array<std::uint8_t, 32>;
using Seed = std::array<std::uint8_t, 32>;
using Signature = std::array<std::uint8_t, 64>;
using Sha256 = std::array<std::uint8_t, 32>;

// Views a string's bytes as the unsigned bytes the primitives take.
inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A private Ed25519 key. Holds libsodium's 64-byte secret (seed ‖ public key), zeroed when the
// object dies. Copyable on purpose (servers hand it to worker threads); each copy is zeroed.
class SigningKey {
 public:
  // A new key from the system CSPRNG.
  static SigningKey generate();
  // The key whose RFC 8032 private key (the JWK "d") is `seed`.
  static SigningKey from_seed(std::span<const std::uint8_t, 32> seed);

  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  ~SigningKey();

  Seed seed() const;
  const PublicKey& public_key() const { return public_; }
  Signature sign(std::span<const std::uint8_t> message) const;

 private:
  SigningKey() = default;
  std::array<std::uint8_t, 64> secret_{};
  PublicKey public_{};
};

// True when `signature` is a valid Ed25519 signature of `message` by `key`. libsodium rejects
// non-canonical S, small-order R and small-order public keys.
bool ed25519_verify(std::span<const std::uint8_t, 64> signature,
                    std::span<const std::uint8_t> message, const PublicKey& key);

Sha256 sha256(std::span<const std::uint8_t> data);

// SHA-256 over data that arrives in pieces (a streamed response body).
class Sha256Hasher {
 public:
  Sha256Hasher();
  void update(std::string_view data);
  Sha256 finish();  // once

 private:
  alignas(16) unsigned char state_[128];  // crypto_hash_sha256_state, opaque here
};

// Fills `out` from the system CSPRNG.
void random_bytes(std::span<std::uint8_t> out);

// Lowercase hex of `bytes`.
std::string to_hex(std::span<const std::uint8_t> bytes);

// Compares two secrets in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace dynaseal

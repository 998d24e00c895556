#include "backend/user_token.hpp"

#include <array>
#include <cstdint>

#include "core/base64url.hpp"
#include "core/crypto.hpp"

namespace dynaseal::backend {

std::string new_user_token() {
  std::array<std::uint8_t, 32> bytes;
  random_bytes(bytes);
  return base64url_encode(bytes);
}

std::string token_sha256(std::string_view token) { return to_hex(sha256(as_bytes(token))); }

}  // namespace dynaseal::backend

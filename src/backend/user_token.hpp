// User tokens: the bearer secret a user presents to POST /v1/keys. 256 bits from the system
// CSPRNG, base64url (43 characters); shown once when the user is added and stored only as its
// SHA-256, so a leaked database does not leak usable tokens. Lookup is by that hash.
//
//   std::string token = new_user_token();          // print once
//   store.add_user({.token_sha256 = token_sha256(token), ...});
#pragma once

#include <string>
#include <string_view>

namespace dynaseal::backend {

inline constexpr std::size_t kUserTokenChars = 43;

std::string new_user_token();

// Lowercase hex of SHA-256(token).
std::string token_sha256(std::string_view token);

}  // namespace dynaseal::backend

// Strict, canonical base64url (RFC 4648 §5) without padding, as JOSE uses it.
//
// Decoding accepts exactly one encoding per byte string: alphabet A-Z a-z 0-9 - _, no '=',
// no whitespace, no '+' or '/', no length of the form 4k+1, and the unused low bits of the
// last character must be zero. So a token cannot be re-encoded into a second valid spelling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace dynaseal {

// Bytes needed to decode `encoded_len` characters (an upper bound also for invalid input).
constexpr std::size_t base64url_decoded_size(std::size_t encoded_len) {
  return encoded_len / 4 * 3 + (encoded_len % 4 == 0 ? 0 : encoded_len % 4 - 1);
}

// Characters produced by encoding `len` bytes.
constexpr std::size_t base64url_encoded_size(std::size_t len) {
  return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

// Appends the unpadded base64url encoding of `bytes` to `out`.
void base64url_append(std::string& out, std::span<const std::uint8_t> bytes);

std::string base64url_encode(std::span<const std::uint8_t> bytes);
std::string base64url_encode(std::string_view bytes);

// Decodes `text` into `out`, which must hold at least base64url_decoded_size(text.size())
// bytes. Returns the number of bytes written, or Error::base64_invalid; on error `out` may
// hold partial garbage.
Result<std::size_t> base64url_decode_into(std::string_view text, std::span<std::uint8_t> out);

// Decodes `text` into a new string, or Error::base64_invalid.
Result<std::string> base64url_decode(std::string_view text);

}  // namespace dynaseal

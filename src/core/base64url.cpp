#include "core/base64url.hpp"

#include <array>

namespace dynaseal {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kInvalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  table.fill(kInvalid);
  for (std::uint8_t i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}

constexpr auto kDecode = make_decode_table();

}  // namespace

void base64url_append(std::string& out, std::span<const std::uint8_t> bytes) {
  const std::size_t start = out.size();
  out.resize(start + base64url_encoded_size(bytes.size()));
  char* p = out.data() + start;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    *p++ = kAlphabet[bytes[i] >> 2];
    *p++ = kAlphabet[(bytes[i] & 3) << 4];
  } else if (rest == 2) {
    const std::uint32_t v = bytes[i] << 8 | bytes[i + 1];
    *p++ = kAlphabet[v >> 10];
    *p++ = kAlphabet[(v >> 4) & 63];
    *p++ = kAlphabet[(v & 15) << 2];
  }
}

std::string base64url_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  base64url_append(out, bytes);
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  return base64url_encode(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::size_t> base64url_decode_into(std::string_view text, std::span<std::uint8_t> out) {
  const std::size_t tail = text.size() % 4;
  // 4k+1 characters carry 6 bits past a byte boundary: no byte string encodes that way.
  if (tail == 1) return Unexpected(Error::base64_invalid);
  if (out.size() < base64url_decoded_size(text.size())) return Unexpected(Error::internal);

  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  std::uint8_t* o = out.data();
  const std::size_t full = text.size() - tail;
  // OR-ing every table entry lets one check at the end catch any invalid character.
  std::uint8_t bad = 0;
  for (std::size_t i = 0; i < full; i += 4) {
    const std::uint8_t a = kDecode[in[i]], b = kDecode[in[i + 1]], c = kDecode[in[i + 2]],
                       d = kDecode[in[i + 3]];
    bad |= a | b | c | d;
    const std::uint32_t v = std::uint32_t{a} << 18 | std::uint32_t{b} << 12 | c << 6 | d;
    *o++ = static_cast<std::uint8_t>(v >> 16);
    *o++ = static_cast<std::uint8_t>(v >> 8);
    *o++ = static_cast<std::uint8_t>(v);
  }
  if (tail == 2) {
    const std::uint8_t a = kDecode[in[full]], b = kDecode[in[full + 1]];
    bad |= a | b;
    // Canonical: the 4 bits below the last byte must be zero.
    if ((b & 15) != 0) bad = kInvalid;
    *o++ = static_cast<std::uint8_t>(a << 2 | b >> 4);
  } else if (tail == 3) {
    const std::uint8_t a = kDecode[in[full]], b = kDecode[in[full + 1]], c = kDecode[in[full + 2]];
    bad |= a | b | c;
    if ((c & 3) != 0) bad = kInvalid;
    *o++ = static_cast<std::uint8_t>(a << 2 | b >> 4);
    *o++ = static_cast<std::uint8_t>(b << 4 | c >> 2);
  }
  // Valid sextets are < 64, so bit 6 or 7 set anywhere means an invalid character.
  if (bad & 0xc0) return Unexpected(Error::base64_invalid);
  return static_cast<std::size_t>(o - out.data());
}

Result<std::string> base64url_decode(std::string_view text) {
  std::string out(base64url_decoded_size(text.size()), '\0');
  auto n = base64url_decode_into(
      text, std::span(reinterpret_cast<std::uint8_t*>(out.data()), out.size()));
  if (!n) return Unexpected(n.error());
  out.resize(*n);
  return out;
}

}  // namespace dynaseal

#include "store/redis_cluster.hpp"

#include <charconv>

namespace dynaseal::store {
namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as the cluster specification
// defines it. A checksum for placing keys, not a cryptographic primitive.
std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (const char c : bytes) {
    crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(c) << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

template <class T>
std::optional<T> number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::uint16_t redis_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) % kRedisSlots);
}

std::optional<RedisRedirect> parse_redis_redirect(std::string_view error) {
  RedisRedirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot = number<std::uint16_t>(error.substr(0, space));
  const std::string_view address = error.substr(space + 1);
  const auto colon = address.rfind(':');
  if (!slot || *slot >= kRedisSlots || colon == std::string_view::npos) return std::nullopt;
  const auto port = number<std::uint16_t>(address.substr(colon + 1));
  if (!port || *port == 0) return std::nullopt;
  r.slot = *slot;
  r.host = std::string(address.substr(0, colon));
  r.port = *port;
  if (r.host.find_first_of(" \r\n") != std::string::npos) return std::nullopt;
  return r;
}

}  // namespace dynaseal::store

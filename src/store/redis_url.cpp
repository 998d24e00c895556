#include "store/redis_url.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include <boost/asio/ip/address.hpp>

namespace dynaseal::store {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr std::string_view kShape = "expected redis://[:password@]host[:port][/db]";

using Parsed = tl::expected<RedisUrl, std::string>;

tl::unexpected<std::string> refuse(std::string_view why) {
  return tl::unexpected(std::string(why) + " (" + std::string(kShape) + ")");
}

// A decimal number of digits only, within [min, max].
std::optional<std::int64_t> number(std::string_view text, std::int64_t min, std::int64_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value < min || value > max) return std::nullopt;
  return value;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `text`; nullopt on a broken escape.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex_digit(text[i + 1]), lo = hex_digit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool valid_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.back() == '.') return false;
  if (host.find("..") != std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
}

bool is_address(std::string_view text, bool v6) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(text), ec);
  return !ec && address.is_v6() == v6;
}

// host[:port] or [v6][:port] into `url`; the reason on failure.
std::optional<std::string> read_host_port(std::string_view text, RedisUrl& url) {
  std::string_view host = text, port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return "unclosed [ in the host";
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return "unexpected characters after ]";
    if (rest == ":") return "empty port";
    if (!rest.empty()) port = rest.substr(1);
    if (!is_address(host, true)) return "invalid IPv6 address";
  } else {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return "empty port";
    }
    if (host.empty()) return "no host";
    const bool dotted = std::all_of(host.begin(), host.end(),
                                    [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (dotted ? !is_address(host, false) : !valid_dns_name(host)) return "invalid host";
  }
  if (!port.empty()) {
    const auto value = number(port, 1, 65535);
    if (!value) return "port must be a number from 1 to 65535";
    url.port = static_cast<std::uint16_t>(*value);
  }
  url.host = std::string(host);
  return std::nullopt;
}

// [:password@] into `url`; the reason on failure.
std::optional<std::string> read_user_info(std::string_view text, RedisUrl& url) {
  if (!text.starts_with(':')) return "a user name is not supported: write redis://:password@host";
  auto password = percent_decode(text.substr(1));
  if (!password) return "invalid %-escape in the password";
  if (password->empty()) return "empty password";
  url.password = std::move(*password);
  return std::nullopt;
}

}  // namespace

std::string RedisUrl::display() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out(kScheme);
  if (password) out += ":***@";
  out += v6 ? "[" + host + "]" : host;
  return out + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Parsed parse_redis_url(std::string_view text) {
  if (text.starts_with("rediss://")) return refuse("TLS (rediss://) is not supported");
  if (text.starts_with("unix:") || text.starts_with("redis+unix:") ||
      text.starts_with("redis-socket:")) {
    return refuse("unix sockets are not supported");
  }
  if (!text.starts_with(kScheme)) return refuse("not a redis:// URL");
  std::string_view rest = text.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return refuse("query strings and fragments are not supported");
  }
  if (std::any_of(rest.begin(), rest.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    return refuse("spaces and control characters are not allowed");
  }
  RedisUrl url;
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto value = number(db, 0, std::numeric_limits<std::int32_t>::max());
      if (!value) return refuse("db must be a number from 0 to 2147483647");
      url.db = *value;
    }
  }
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (auto why = read_user_info(authority.substr(0, at), url)) return refuse(*why);
    authority = authority.substr(at + 1);
  }
  if (auto why = read_host_port(authority, url)) return refuse(*why);
  return url;
}

}  // namespace dynaseal::store

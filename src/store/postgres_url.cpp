#include "store/postgres_url.hpp"

#include <algorithm>
#include <charconv>
#include <memory>

#include <libpq-fe.h>

namespace dynaseal::store {
namespace {

constexpr std::string_view kRedacted = "***";

// A comma-separated list of ports (one per host), each 1-65535; an empty entry means the
// default port.
bool valid_ports(std::string_view ports) {
  while (true) {
    const std::size_t comma = ports.find(',');
    const std::string_view port = ports.substr(0, comma);
    if (!port.empty()) {
      unsigned value = 0;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535) {
        return false;
      }
    }
    if (comma == std::string_view::npos) return true;
    ports.remove_prefix(comma + 1);
  }
}

bool valid_seconds(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && end == text.data() + text.size() && value >= 0;
}

// libpq quotes the whole URI in some of its messages: never let the password through.
std::string without_url(std::string message, std::string_view url) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const std::string redacted = redact_postgres_url(url);
  for (std::size_t at = message.find(url); at != std::string::npos;
       at = message.find(url, at + redacted.size())) {
    message.replace(at, url.size(), redacted);
  }
  return message;
}

// Replaces the values of `password=` parameters in the query part starting at `query`.
void redact_query(std::string& url, std::size_t query) {
  constexpr std::string_view kKey = "password=";
  std::size_t at = query;
  while (at < url.size()) {
    const std::size_t end = std::min(url.find('&', at), url.size());
    if (std::string_view(url).substr(at, end - at).starts_with(kKey)) {
      const std::size_t value = at + kKey.size();
      url.replace(value, end - value, kRedacted);
      at = value + kRedacted.size() + 1;
    } else {
      at = end + 1;
    }
  }
}

}  // namespace

bool is_postgres_url(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

std::optional<std::string> check_postgres_url(std::string_view url) {
  if (!is_postgres_url(url)) return "expected postgresql://... or postgres://...";
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return "the URL contains spaces or control characters (percent-encode them)";
  }
  const std::string text(url);
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(text.c_str(), &error), &PQconninfoFree);
  if (!options) {
    std::string why = error != nullptr ? without_url(error, url) : "cannot parse the URL";
    PQfreemem(error);
    return why;
  }
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "port" && !valid_ports(o->val)) return "port: expected a number in 1-65535";
    if (keyword == "connect_timeout" && !valid_seconds(o->val)) {
      return "connect_timeout: expected whole seconds";
    }
  }
  return std::nullopt;
}

std::string redact_postgres_url(std::string_view url) {
  std::string out(url);
  const std::size_t scheme = out.find("://");
  if (!is_postgres_url(url) || scheme == std::string::npos) return out;
  const std::size_t authority = scheme + 3;
  std::size_t query = out.find('?', authority);
  const std::size_t authority_end = std::min(out.find('/', authority), query);
  // The user info ends at the last '@' of the authority (a password may contain '@' only
  // percent-encoded, but be generous).
  const std::size_t at =
      out.rfind('@', authority_end == std::string::npos ? out.size() - 1 : authority_end - 1);
  if (at != std::string::npos && at >= authority) {
    const std::size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, kRedacted);
      query = out.find('?', authority);
    }
  }
  if (query != std::string::npos) redact_query(out, query + 1);
  return out;
}

}  // namespace dynaseal::store

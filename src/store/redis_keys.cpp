#include "store/redis_keys.hpp"

#include <algorithm>

#include "core/base64url.hpp"

namespace dynaseal::store {
namespace {

std::string key(std::string_view prefix, std::string_view iss, char kind, std::string_view name) {
  std::string out;
  out.reserve(prefix.size() + base64url_encoded_size(iss.size()) + name.size() + 8);
  out.append(prefix);
  out.append(":{");
  out.append(redis_key_tag(iss));
  out.append("}:");
  out += kind;
  out += ':';
  out.append(name);
  return out;
}

}  // namespace

bool valid_redis_key_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 64) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::string redis_key_tag(std::string_view iss) {
  return iss.empty() ? std::string("~") : base64url_encode(iss);
}

std::string redis_jti_key(std::string_view prefix, std::string_view iss, std::string_view jti) {
  return key(prefix, iss, 'k', jti);
}

std::string redis_sub_key(std::string_view prefix, std::string_view iss, std::string_view sub) {
  return key(prefix, iss, 's', sub);
}

std::string redis_journal_key(std::string_view prefix, std::string_view iss) {
  return key(prefix, iss, 'j', {});
}

}  // namespace dynaseal::store

#include "core/webhook.hpp"

#include <sodium.h>

#include <charconv>
#include <optional>

namespace dynaseal {
namespace {

constexpr std::string_view kVersion = "v1a,";
constexpr std::size_t kSignatureBase64 = 88;  // 64 bytes, padded standard base64

std::string signed_content(std::string_view id, std::string_view timestamp, std::string_view body) {
  std::string content;
  content.reserve(id.size() + timestamp.size() + body.size() + 2);
  content.append(id).append(".").append(timestamp).append(".").append(body);
  return content;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxWebhookIdBytes) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// A canonical non-negative decimal: no sign, no leading zero, at most 12 digits.
std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  if (text.empty() || text.size() > 12 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  if (text[0] < '0' || text[0] > '9') return std::nullopt;  // from_chars would take a '-'
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Decodes one padded standard-base64 signature; refuses anything that does not re-encode to the
// same text, so one signature has exactly one accepted spelling.
std::optional<Signature> decode_signature(std::string_view b64) {
  if (b64.size() != kSignatureBase64) return std::nullopt;
  Signature sig{};
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(sig.data(), sig.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != sig.size() || end != b64.data() + b64.size()) {
    return std::nullopt;
  }
  char again[kSignatureBase64 + 1];
  sodium_bin2base64(again, sizeof again, sig.data(), sig.size(), sodium_base64_VARIANT_ORIGINAL);
  if (std::string_view(again, kSignatureBase64) != b64) return std::nullopt;
  return sig;
}

}  // namespace

std::string webhook_signature(const SigningKey& key, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
  const Signature sig = key.sign(as_bytes(signed_content(id, std::to_string(timestamp), body)));
  char b64[kSignatureBase64 + 1];
  sodium_bin2base64(b64, sizeof b64, sig.data(), sig.size(), sodium_base64_VARIANT_ORIGINAL);
  return std::string(kVersion) + std::string(b64, kSignatureBase64);
}

Result<void> verify_webhook(const WebhookHeaders& headers, std::string_view body,
                            std::span<const PublicKey> keys, std::int64_t now,
                            std::int64_t tolerance_s) {
  if (!valid_id(headers.id)) return Unexpected(Error::webhook_malformed);
  const auto timestamp = parse_timestamp(headers.timestamp);
  if (!timestamp) return Unexpected(Error::webhook_malformed);
  if (*timestamp < now - tolerance_s || *timestamp > now + tolerance_s) {
    return Unexpected(Error::timestamp_stale);
  }
  const std::string content = signed_content(headers.id, headers.timestamp, body);
  std::string_view rest = headers.signature;
  std::size_t looked_at = 0;
  while (!rest.empty() && looked_at < kMaxWebhookSignatures) {
    const std::size_t space = rest.find(' ');
    const std::string_view one = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (one.empty()) continue;
    ++looked_at;
    if (!one.starts_with(kVersion)) continue;  // another scheme: not ours to trust
    const auto sig = decode_signature(one.substr(kVersion.size()));
    if (!sig) continue;
    for (const PublicKey& key : keys) {
      if (ed25519_verify(*sig, as_bytes(content), key)) return {};
    }
  }
  return Unexpected(Error::signature_invalid);
}

}  // namespace dynaseal

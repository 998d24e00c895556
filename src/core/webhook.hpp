// Standard Webhooks with an asymmetric signature (DESIGN §5): how the server signs a usage
// callback and how a backend checks one.
//
//   webhook-id:        <jti>.<use>
//   webhook-timestamp: <unix seconds>
//   webhook-signature: v1a,<standard base64 of Ed25519 over "id.timestamp.body">
//
// The signature header may carry several space-separated signatures (a sender rotating its key
// signs with both); one valid "v1a" signature by one of the pinned keys is enough. Other
// versions ("v1" HMAC) are ignored, never trusted. At most kMaxWebhookSignatures are looked at,
// so a hostile header cannot buy more than that many verifications.
//
//   std::string sig = webhook_signature(identity, id, ts, body);          // server
//   auto ok = verify_webhook({id, ts, sig}, body, pinned_keys, now, 300);  // backend
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace dynaseal {

inline constexpr std::size_t kMaxWebhookSignatures = 4;
inline constexpr std::size_t kMaxWebhookIdBytes = 256;

// "v1a," followed by the standard (padded) base64 of the signature over "id.timestamp.body".
std::string webhook_signature(const SigningKey& key, std::string_view id, std::int64_t timestamp,
                              std::string_view body);

struct WebhookHeaders {
  std::string_view id;
  std::string_view timestamp;
  std::string_view signature;
};

// Checks, in this order: the id is 1..256 printable ASCII characters without spaces, and the
// timestamp a canonical decimal (webhook_malformed); the timestamp is within `tolerance_s` of
// `now` either way (timestamp_stale); a v1a signature verifies with one of `keys`
// (signature_invalid, also when no v1a signature is present or one is not canonical base64).
Result<void> verify_webhook(const WebhookHeaders& headers, std::string_view body,
                            std::span<const PublicKey> keys, std::int64_t now,
                            std::int64_t tolerance_s);

}  // namespace dynaseal

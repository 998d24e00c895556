#include "core/webhook.hpp"

#include <sodium.h>

#include <gtest/gtest.h>

#include "core/key_fixture.hpp"

namespace dynaseal {
namespace {

using testing::seeded_key;

constexpr std::int64_t kNow = 1'800'000'000;
constexpr std::string_view kId = "0123456789abcdefghij.1";
constexpr std::string_view kBody = R"({"type":"usage","event_id":"0123456789abcdefghij","use":1})";

struct Signed {
  std::string id = std::string(kId);
  std::string timestamp = std::to_string(kNow);
  std::string signature;
  std::string body = std::string(kBody);
  WebhookHeaders headers() const { return {id, timestamp, signature}; }
};

Signed sign_with(const SigningKey& key) {
  Signed s;
  s.signature = webhook_signature(key, s.id, kNow, s.body);
  return s;
}

Result<void> check(const Signed& s, const PublicKey& key, std::int64_t now = kNow) {
  const PublicKey keys[] = {key};
  return verify_webhook(s.headers(), s.body, keys, now, 300);
}

TEST(Webhook, SignsWithV1aAndPaddedStandardBase64) {
  const Signed s = sign_with(seeded_key(1));
  ASSERT_TRUE(s.signature.starts_with("v1a,"));
  EXPECT_EQ(s.signature.size(), 4u + 88u);
  EXPECT_EQ(s.signature.back(), '=');
}

TEST(Webhook, SignsIdTimestampAndBodyJoinedByDots) {
  const SigningKey key = seeded_key(2);
  const Signed s = sign_with(key);
  const std::string content = s.id + "." + s.timestamp + "." + s.body;
  Signature sig{};
  std::size_t len = 0;
  const std::string b64 = s.signature.substr(4);
  ASSERT_EQ(sodium_base642bin(sig.data(), sig.size(), b64.data(), b64.size(), nullptr, &len,
                              nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  EXPECT_TRUE(ed25519_verify(sig, as_bytes(content), key.public_key()));
}

TEST(Webhook, AcceptsItsOwnSignatureWithinTheTolerance) {
  const SigningKey key = seeded_key(3);
  const Signed s = sign_with(key);
  EXPECT_TRUE(check(s, key.public_key()));
  EXPECT_TRUE(check(s, key.public_key(), kNow + 300));
  EXPECT_TRUE(check(s, key.public_key(), kNow - 300));
}

TEST(Webhook, RefusesStaleAndFutureTimestamps) {
  const SigningKey key = seeded_key(4);
  const Signed s = sign_with(key);
  EXPECT_EQ(check(s, key.public_key(), kNow + 301).error(), Error::timestamp_stale);
  EXPECT_EQ(check(s, key.public_key(), kNow - 301).error(), Error::timestamp_stale);
}

TEST(Webhook, RefusesAnotherSignersKey) {
  const Signed s = sign_with(seeded_key(5));
  EXPECT_EQ(check(s, seeded_key(6).public_key()).error(), Error::signature_invalid);
}

TEST(Webhook, RefusesAnyChangeToIdTimestampOrBody) {
  const SigningKey key = seeded_key(7);
  Signed s = sign_with(key);
  s.body += " ";
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
  s = sign_with(key);
  s.id = "0123456789abcdefghij.2";
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
  s = sign_with(key);
  s.timestamp = std::to_string(kNow + 1);
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
}

TEST(Webhook, RefusesEveryBitFlipOfTheSignature) {
  const SigningKey key = seeded_key(8);
  const Signed good = sign_with(key);
  const std::string b64 = good.signature.substr(4);
  Signature sig{};
  std::size_t len = 0;
  ASSERT_EQ(sodium_base642bin(sig.data(), sig.size(), b64.data(), b64.size(), nullptr, &len,
                              nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
    Signature flipped = sig;
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    char out[89];
    sodium_bin2base64(out, sizeof out, flipped.data(), flipped.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    Signed s = good;
    s.signature = std::string("v1a,") + out;
    EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid) << "bit " << bit;
  }
}

TEST(Webhook, RefusesEveryTruncationOfTheSignature) {
  const SigningKey key = seeded_key(9);
  const Signed good = sign_with(key);
  for (std::size_t n = 0; n < good.signature.size(); ++n) {
    Signed s = good;
    s.signature = good.signature.substr(0, n);
    EXPECT_FALSE(check(s, key.public_key())) << "length " << n;
  }
}

TEST(Webhook, RefusesNonCanonicalBase64) {
  const SigningKey key = seeded_key(10);
  Signed s = sign_with(key);
  // The last character before the "==" padding carries 4 unused bits: set one of them.
  std::string& sig = s.signature;
  const std::size_t last = sig.size() - 3;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::size_t v = std::string_view(alphabet).find(sig[last]);
  ASSERT_NE(v, std::string_view::npos);
  sig[last] = alphabet[v ^ 1];
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
}

TEST(Webhook, FindsOneValidSignatureAmongSeveral) {
  const SigningKey key = seeded_key(11);
  Signed s = sign_with(key);
  const std::string good = s.signature;
  s.signature = "v1,aGVsbG8= " + sign_with(seeded_key(12)).signature + " " + good;
  EXPECT_TRUE(check(s, key.public_key()));
}

TEST(Webhook, LooksAtNoMoreThanFourSignatures) {
  const SigningKey key = seeded_key(13);
  Signed s = sign_with(key);
  const std::string good = s.signature;
  const std::string other = sign_with(seeded_key(14)).signature;
  s.signature = other + " " + other + " " + other + " " + other + " " + good;
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
}

TEST(Webhook, NeverTrustsAnHmacV1Signature) {
  const SigningKey key = seeded_key(15);
  Signed s = sign_with(key);
  s.signature = "v1," + s.signature.substr(4);
  EXPECT_EQ(check(s, key.public_key()).error(), Error::signature_invalid);
}

TEST(Webhook, RefusesMalformedIdsAndTimestamps) {
  const SigningKey key = seeded_key(16);
  for (std::string id :
       {std::string(), std::string("has space"), std::string(300, 'a'), std::string("tab\there")}) {
    Signed s = sign_with(key);
    s.id = id;
    EXPECT_EQ(check(s, key.public_key()).error(), Error::webhook_malformed) << id;
  }
  for (std::string ts : {"", "-1", "01800000000", "1e9", "18000000000000", " 1800000000"}) {
    Signed s = sign_with(key);
    s.timestamp = ts;
    EXPECT_EQ(check(s, key.public_key()).error(), Error::webhook_malformed) << ts;
  }
}

}  // namespace
}  // namespace dynaseal

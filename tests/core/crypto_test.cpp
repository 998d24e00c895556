#include "core/crypto.hpp"

#include <sodium.h>

#include <gtest/gtest.h>

#include "core/json.hpp"
#include "test_support.hpp"

namespace dynaseal {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  std::size_t len = 0;
  EXPECT_EQ(sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                           hex.size(), nullptr, &len, nullptr),
            0);
  out.resize(len);
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> fixed(std::string_view bytes) {
  std::array<std::uint8_t, N> out{};
  EXPECT_EQ(bytes.size(), N);
  std::copy_n(bytes.begin(), std::min(N, bytes.size()), out.begin());
  return out;
}

TEST(Crypto, SignsAndVerifies) {
  const SigningKey key = SigningKey::generate();
  const Signature sig = key.sign(as_bytes("message"));
  EXPECT_TRUE(ed25519_verify(sig, as_bytes("message"), key.public_key()));
  EXPECT_FALSE(ed25519_verify(sig, as_bytes("messagf"), key.public_key()));
  EXPECT_FALSE(ed25519_verify(sig, as_bytes("message"), SigningKey::generate().public_key()));
}

TEST(Crypto, RebuildsAKeyFromItsSeed) {
  const SigningKey key = SigningKey::generate();
  const SigningKey again = SigningKey::from_seed(key.seed());
  EXPECT_EQ(again.public_key(), key.public_key());
  EXPECT_EQ(again.sign(as_bytes("x")), key.sign(as_bytes("x")));
  EXPECT_NE(SigningKey::generate().public_key(), key.public_key());
}

TEST(Crypto, HashesWithSha256) {
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, ComparesSecretsByValue) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secrets"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Crypto, DrawsFreshRandomBytes) {
  std::array<std::uint8_t, 32> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
}

// RFC 8032 §7.1 TEST 1: the empty message, reproduced byte-exact.
TEST(Crypto, MatchesRfc8032Test1) {
  DYNASEAL_REQUIRE_VECTORS(dir);
  auto doc = parse_json(testing::read_file(dir / "interop.json"));
  ASSERT_TRUE(doc);
  const auto& v = doc->at("ed25519_rfc8032_test1");
  const SigningKey key = SigningKey::from_seed(fixed<32>(from_hex(v.at("secret_hex").as_string())));
  EXPECT_EQ(to_hex(key.public_key()), v.at("public_hex").as_string());
  const Signature sig = key.sign(as_bytes(from_hex(v.at("message_hex").as_string())));
  EXPECT_EQ(to_hex(sig), v.at("signature_hex").as_string());
  EXPECT_TRUE(ed25519_verify(sig, {}, key.public_key()));
}

// Every Wycheproof Ed25519 case: valid ones verify, invalid (including malleable S >= L and
// signatures of the wrong length) do not.
TEST(Crypto, PassesWycheproofEd25519) {
  DYNASEAL_REQUIRE_VECTORS(dir);
  auto doc =
      parse_json(testing::read_file(dir / "wycheproof/ed25519_test.json"), {.max_bytes = 1 << 22});
  ASSERT_TRUE(doc);
  int valid = 0, invalid = 0;
  for (const auto& group : doc->at("testGroups").as_array()) {
    const PublicKey pk = fixed<32>(from_hex(group.at("publicKey").at("pk").as_string()));
    for (const auto& t : group.at("tests").as_array()) {
      const std::string msg = from_hex(t.at("msg").as_string());
      const std::string sig = from_hex(t.at("sig").as_string());
      const bool expected = t.at("result").as_string() == "valid";
      bool ok = false;
      if (sig.size() == 64) ok = ed25519_verify(fixed<64>(sig), as_bytes(msg), pk);
      EXPECT_EQ(ok, expected) << "tcId " << t.at("tcId").as_int64() << ": "
                              << t.at("comment").as_string();
      (expected ? valid : invalid)++;
    }
  }
  EXPECT_EQ(valid + invalid, 151);
}

}  // namespace
}  // namespace dynaseal

namespace dynaseal {
namespace {

TEST(Crypto, HashesPiecesLikeTheWhole) {
  Sha256Hasher h;
  h.update("a");
  h.update("");
  h.update("bc");
  EXPECT_EQ(h.finish(), sha256(as_bytes("abc")));
}

}  // namespace
}  // namespace dynaseal

#include "core/base64url.hpp"

#include <sodium.h>

#include <random>

#include <gtest/gtest.h>

namespace dynaseal {
namespace {

TEST(Base64url, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(std::string_view("")), "");
  EXPECT_EQ(base64url_encode(std::string_view("f")), "Zg");
  EXPECT_EQ(base64url_encode(std::string_view("fo")), "Zm8");
  EXPECT_EQ(base64url_encode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(base64url_encode(std::string_view("foob")), "Zm9vYg");
  EXPECT_EQ(base64url_encode(std::string_view("fooba")), "Zm9vYmE");
  EXPECT_EQ(base64url_encode(std::string_view("foobar")), "Zm9vYmFy");
}

TEST(Base64url, UsesTheUrlAlphabet) {
  const std::string bytes = "\xfb\xff\xbf";
  EXPECT_EQ(base64url_encode(bytes), "-_-_");
  EXPECT_EQ(*base64url_decode("-_-_"), bytes);
}

TEST(Base64url, RoundTripsEveryLength) {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len < 100; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.size(), base64url_encoded_size(len));
    auto back = base64url_decode(text);
    ASSERT_TRUE(back) << len;
    EXPECT_EQ(*back, bytes);
  }
}

TEST(Base64url, RejectsNonCanonicalInput) {
  for (std::string_view bad : std::initializer_list<std::string_view>{
           "Zg==", "Zg=", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", " Zg", "Zg ", "Z g",
           "Zg\n", "Zm9v\r\n", std::string_view("Z\0g", 3), "Zm9v\xc3\xa9", "Zm9v!", "Zm9v.Zg"}) {
    EXPECT_EQ(base64url_decode(bad).error(), Error::base64_invalid) << bad;
  }
}

TEST(Base64url, RejectsStrayBitsInEveryPosition) {
  // "f" is Zg: the last character may only carry the 2 high bits; each of the other 4
  // alphabet positions that differ only in the low bits must be refused.
  for (std::string_view bad : {"Zh", "Zi", "Zj", "Zk", "Zl", "Zm", "Zn", "Zo", "Zp", "Zq", "Zv"}) {
    EXPECT_FALSE(base64url_decode(bad)) << bad;
  }
  EXPECT_TRUE(base64url_decode("Zg"));
  EXPECT_TRUE(base64url_decode("Zw"));
}

// libsodium's decoder is strict in the same way; ours must agree with it on every input.
TEST(Base64url, AgreesWithLibsodiumOnRandomInput) {
  ASSERT_GE(sodium_init(), 0);
  std::mt19937 rng(42);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .";
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 12, 'A');
    for (char& c : text) {
      // Mostly valid characters, sometimes one that is not.
      c = alphabet[rng() % (rng() % 8 == 0 ? alphabet.size() : 64)];
    }
    unsigned char ref[16];
    std::size_t ref_len = 0;
    const bool ref_ok =
        sodium_base642bin(ref, sizeof ref, text.data(), text.size(), nullptr, &ref_len, nullptr,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
    auto ours = base64url_decode(text);
    ASSERT_EQ(ours.has_value(), ref_ok) << '"' << text << '"';
    if (ref_ok) {
      EXPECT_EQ(*ours, std::string(reinterpret_cast<char*>(ref), ref_len));
    }
  }
}

}  // namespace
}  // namespace dynaseal

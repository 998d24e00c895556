#include "core/jcs.hpp"

#include <bit>
#include <cstdint>

#include <gtest/gtest.h>

#include "core/crypto.hpp"
#include "test_support.hpp"

namespace dynaseal {
namespace {

std::string number(std::uint64_t bits) {
  std::string out;
  jcs_append_number(out, std::bit_cast<double>(bits));
  return out;
}

// RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialization.
TEST(Jcs, SerializesNumbersAsEcmascriptDoes) {
  EXPECT_EQ(number(0x0000000000000000), "0");
  EXPECT_EQ(number(0x8000000000000000), "0");
  EXPECT_EQ(number(0x0000000000000001), "5e-324");
  EXPECT_EQ(number(0x8000000000000001), "-5e-324");
  EXPECT_EQ(number(0x7fefffffffffffff), "1.7976931348623157e+308");
  EXPECT_EQ(number(0xffefffffffffffff), "-1.7976931348623157e+308");
  EXPECT_EQ(number(0x4340000000000000), "9007199254740992");
  EXPECT_EQ(number(0xc340000000000000), "-9007199254740992");
  EXPECT_EQ(number(0x4430000000000000), "295147905179352830000");
  EXPECT_EQ(number(0x44b52d02c7e14af5), "9.999999999999997e+22");
  EXPECT_EQ(number(0x44b52d02c7e14af6), "1e+23");
  EXPECT_EQ(number(0x44b52d02c7e14af7), "1.0000000000000001e+23");
  EXPECT_EQ(number(0x444b1ae4d6e2ef4e), "999999999999999700000");
  EXPECT_EQ(number(0x444b1ae4d6e2ef4f), "999999999999999900000");
  EXPECT_EQ(number(0x444b1ae4d6e2ef50), "1e+21");
  EXPECT_EQ(number(0x3eb0c6f7a0b5ed8c), "9.999999999999997e-7");
  EXPECT_EQ(number(0x3eb0c6f7a0b5ed8d), "0.000001");
  EXPECT_EQ(number(0x41b3de4355555553), "333333333.3333332");
  EXPECT_EQ(number(0x41b3de4355555554), "333333333.33333325");
  EXPECT_EQ(number(0x41b3de4355555555), "333333333.3333333");
  EXPECT_EQ(number(0x41b3de4355555556), "333333333.3333334");
  EXPECT_EQ(number(0x41b3de4355555557), "333333333.33333343");
  EXPECT_EQ(number(0xbecbf647612f3696), "-0.0000033333333333333333");
  EXPECT_EQ(number(0x43143ff3c1cb0959), "1424953923781206.2");
}

TEST(Jcs, SortsMembersByUtf16CodeUnits) {
  // U+20AC < U+1F600 (as surrogates D83D DE00) < U+FB33 in UTF-16, unlike in code points.
  auto out =
      jcs_canonicalize(R"({"\ufb33":3,"\ud83d\ude00":2,"\u20ac":1,"b":0,"a":{"z":1,"y":2}})");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out,
            "{\"a\":{\"y\":2,\"z\":1},\"b\":0,\"\xe2\x82\xac\":1,\"\xf0\x9f\x98\x80\":2,"
            "\"\xef\xac\xb3\":3}");
}

TEST(Jcs, EscapesMinimally) {
  auto out = jcs_canonicalize(R"(["\u0000\u001f\b\t\n\f\r\"\\/\u007f\u2028\u00e9"])");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "[\"\\u0000\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\x7f\xe2\x80\xa8\xc3\xa9\"]");
}

TEST(Jcs, TakesIntegersAsDoubles) {
  EXPECT_EQ(*jcs_canonicalize("[1, -0, 1.0, 1e2, 9007199254740993, 1E-7]"),
            "[1,0,1,100,9007199254740992,1e-7]");
}

TEST(Jcs, RefusesWhatStrictJsonRefuses) {
  EXPECT_EQ(jcs_canonicalize(R"({"a":1,"a":2})").error(), Error::json_duplicate_member);
  EXPECT_EQ(jcs_canonicalize("[1e400]").error(), Error::json_number_invalid);
  EXPECT_EQ(jcs_canonicalize(R"(["\udead"])").error(), Error::json_syntax);
}

// cyberphone/json-canonicalization test data: input/X.json canonicalizes to output/X.json.
TEST(Jcs, MatchesRfc8785TestData) {
  DYNASEAL_REQUIRE_VECTORS(dir);
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "jcs/input")) {
    const auto name = entry.path().filename();
    auto out = jcs_canonicalize(testing::read_file(entry.path()));
    ASSERT_TRUE(out) << name;
    EXPECT_EQ(*out, testing::read_file(dir / "jcs/output" / name)) << name;
    ++cases;
  }
  EXPECT_GE(cases, 6);
}

// The Agent Passport System's JCS vectors (interop.json): canonical text and its SHA-256.
TEST(Jcs, MatchesApsVectors) {
  DYNASEAL_REQUIRE_VECTORS(dir);
  auto doc = parse_json(testing::read_file(dir / "interop.json"));
  ASSERT_TRUE(doc);
  const auto& vectors = doc->at("jcs_aps_vectors").at("vectors").as_array();
  ASSERT_FALSE(vectors.empty());
  for (const auto& v : vectors) {
    const std::string id(v.at("id").as_string());
    const std::string expected(v.at("expected_jcs").as_string());
    EXPECT_EQ(jcs_serialize(v.at("input")), expected) << id;
    EXPECT_EQ(to_hex(sha256(as_bytes(expected))), v.at("sha256").as_string()) << id;
  }
}

}  // namespace
}  // namespace dynaseal

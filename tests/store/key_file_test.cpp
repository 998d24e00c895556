#include "store/key_file.hpp"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace dynaseal::store {
namespace {

class KeyFile : public ::testing::Test {
 protected:
  std::filesystem::path path(const char* name) const { return dir_ / name; }
  static void write(const std::filesystem::path& p, std::string_view text, mode_t mode) {
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
  }

  testing::TempDir dir_;
};

TEST_F(KeyFile, WritesAPrivateKeyReadableOnlyByItsOwner) {
  const SigningKey key = SigningKey::generate();
  ASSERT_TRUE(write_private_key_file(path("k.jwk"), key));
  struct stat st {};
  ASSERT_EQ(::stat(path("k.jwk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = read_private_key_file(path("k.jwk"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->public_key(), key.public_key());
}

TEST_F(KeyFile, NeverOverwritesAnExistingFile) {
  ASSERT_TRUE(write_private_key_file(path("k.jwk"), SigningKey::generate()));
  const std::string before = *read_small_file(path("k.jwk"), 4096);
  EXPECT_EQ(write_private_key_file(path("k.jwk"), SigningKey::generate()).error(), Error::io_error);
  EXPECT_EQ(*read_small_file(path("k.jwk"), 4096), before);
}

TEST_F(KeyFile, RefusesAPrivateKeyOthersCanRead) {
  ASSERT_TRUE(write_private_key_file(path("k.jwk"), SigningKey::generate()));
  ::chmod(path("k.jwk").c_str(), 0640);
  EXPECT_EQ(read_private_key_file(path("k.jwk")).error(), Error::key_file_unsafe);
  ::chmod(path("k.jwk").c_str(), 0604);
  EXPECT_EQ(read_private_key_file(path("k.jwk")).error(), Error::key_file_unsafe);
  ::chmod(path("k.jwk").c_str(), 0400);
  EXPECT_TRUE(read_private_key_file(path("k.jwk")));
}

TEST_F(KeyFile, ReportsMissingAndInvalidFiles) {
  EXPECT_EQ(read_private_key_file(path("missing")).error(), Error::io_error);
  EXPECT_EQ(read_private_key_file(dir_.path()).error(), Error::io_error);
  write(path("junk"), "{\"kty\":", 0600);
  EXPECT_EQ(read_private_key_file(path("junk")).error(), Error::key_invalid);
  EXPECT_EQ(read_jwks_file(path("junk")).error(), Error::key_invalid);
  EXPECT_EQ(read_jwks_file(path("missing")).error(), Error::io_error);
  write(path("huge"), std::string(kMaxKeyFileBytes + 1, ' '), 0600);
  EXPECT_EQ(read_jwks_file(path("huge")).error(), Error::io_error);
}

TEST_F(KeyFile, ReadsPublicKeySets) {
  const SigningKey a = SigningKey::generate(), b = SigningKey::generate();
  write(path("one.json"), public_jwk_json(a.public_key()), 0644);
  write(path("set.json"),
        jwks_json({make_public_jwk(a.public_key()), make_public_jwk(b.public_key())}), 0644);
  EXPECT_EQ(read_jwks_file(path("one.json"))->size(), 1u);
  EXPECT_EQ(read_jwks_file(path("set.json"))->size(), 2u);
}

}  // namespace
}  // namespace dynaseal::store

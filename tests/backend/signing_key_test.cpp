#include "backend/signing_key.hpp"

#include <sys/stat.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "backend/config.hpp"
#include "core/jwk.hpp"
#include "store/key_file.hpp"
#include "test_support.hpp"

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kT0 = 1'800'000'000'000;  // ms

TEST(SigningKey, IsCreated0600WhenMissingAndReadAfterwards) {
  testing::TempDir dir;
  auto created = load_or_create_signing_key(dir / "acme.jwk");
  ASSERT_TRUE(created);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "acme.jwk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = load_or_create_signing_key(dir / "acme.jwk");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kid, created->kid);
  EXPECT_EQ(again->kid, jwk_thumbprint(again->key.public_key()));
  EXPECT_EQ(parse_jwks(again->public_jwk)->front().kid, again->kid);
}

TEST(SigningKey, AnUnsafeFileIsRefusedAtStart) {
  testing::TempDir dir;
  ASSERT_TRUE(load_or_create_signing_key(dir / "acme.jwk"));
  ::chmod((dir / "acme.jwk").c_str(), 0644);
  EXPECT_EQ(load_or_create_signing_key(dir / "acme.jwk").error(), Error::key_file_unsafe);
  EXPECT_THROW(SigningKeySource(dir / "acme.jwk"), ConfigError);
}

TEST(SigningKeySource, PicksUpAReplacedFileAtTheNextCheck) {
  testing::TempDir dir;
  SigningKeySource source(dir / "acme.jwk");
  const std::string first = source.current(kT0)->kid;
  const SigningKey next = SigningKey::generate();
  ASSERT_TRUE(store::write_private_key_file(dir / "acme.jwk.next", next));
  ASSERT_EQ(std::rename((dir / "acme.jwk.next").c_str(), (dir / "acme.jwk").c_str()), 0);
  // Within the check interval the published key stays; at the next check the new one signs.
  EXPECT_EQ(source.current(kT0 + SigningKeySource::kCheckEveryMs - 1)->kid, first);
  EXPECT_EQ(source.current(kT0 + SigningKeySource::kCheckEveryMs)->kid,
            jwk_thumbprint(next.public_key()));
}

TEST(SigningKeySource, KeepsTheOldKeyWhenTheNewFileIsUnusable) {
  testing::TempDir dir;
  SigningKeySource source(dir / "acme.jwk");
  const std::string first = source.current(kT0)->kid;
  {
    std::FILE* f = std::fopen((dir / "bad").c_str(), "w");
    std::fputs("{}", f);
    std::fclose(f);
  }
  ::chmod((dir / "bad").c_str(), 0600);
  ASSERT_EQ(std::rename((dir / "bad").c_str(), (dir / "acme.jwk").c_str()), 0);
  EXPECT_EQ(source.current(kT0 + 5000)->kid, first);
  EXPECT_EQ(source.current(kT0 + 10000)->kid, first);
}

}  // namespace
}  // namespace dynaseal::backend

#include "server/backend_checks.hpp"

#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

TEST(BackendChecks, IdsAreShortAndPlain) {
  for (const char* ok : {"acme", "shop-2", "a.b_c", "A"}) EXPECT_TRUE(valid_backend_id(ok)) << ok;
  for (const char* bad : {"", "a/b", "a b", "a\nb", "ümlaut", "a?b", "%2f"}) {
    EXPECT_FALSE(valid_backend_id(bad)) << bad;
  }
  EXPECT_TRUE(valid_backend_id(std::string(128, 'a')));
  EXPECT_FALSE(valid_backend_id(std::string(129, 'a')));
}

TEST(BackendChecks, CallbackUrlsMustBeHttpWithAHost) {
  EXPECT_FALSE(callback_url_problem("http://127.0.0.1:9000/v1/callbacks/usage", false));
  EXPECT_FALSE(callback_url_problem("https://backend.example.com/cb", false));
  EXPECT_FALSE(callback_url_problem("http://10.0.0.7/cb", false));  // private networks are fine
  for (const char* bad : {"ftp://x/cb", "http://user:pw@x/cb", "http:///cb", "x", "http://x/?q"}) {
    EXPECT_TRUE(callback_url_problem(bad, false)) << bad;
  }
}

TEST(BackendChecks, LinkLocalAndMetadataTargetsAreRefusedUnlessAllowed) {
  for (const char* bad :
       {"http://169.254.169.254/latest/meta-data", "http://169.254.1.1:80/cb", "http://2852039166/",
        "http://0xa9.0xfe.0xa9.0xfe/", "http://[fe80::1]/cb", "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA./"}) {
    EXPECT_TRUE(callback_url_problem(bad, false)) << bad;
    EXPECT_FALSE(callback_url_problem(bad, true)) << bad;
  }
}

}  // namespace
}  // namespace dynaseal::server

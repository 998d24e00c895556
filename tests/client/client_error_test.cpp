// The client's typed errors: codes from OpenAI error bodies, and the fallbacks.

#include "client/client_error.hpp"

#include <gtest/gtest.h>

namespace dynaseal::client {
namespace {

TEST(ClientError, TakesCodeAndMessageFromTheOpenAiErrorBody) {
  const ClientError e = http_error(
      401, R"({"error":{"message":"the key has been used up","type":"authentication_error",)"
           R"("code":"uses_exhausted"}})");
  EXPECT_EQ(e.kind, ClientError::Kind::http);
  EXPECT_EQ(e.http_status, 401);
  EXPECT_EQ(e.code, "uses_exhausted");
  EXPECT_EQ(e.message, "the key has been used up");
}

TEST(ClientError, FallsBackToTheTypeWhenTheCodeIsNull) {
  const ClientError e =
      http_error(400, R"({"error":{"message":"bad","type":"invalid_request_error","code":null}})");
  EXPECT_EQ(e.code, "invalid_request_error");
  EXPECT_EQ(e.message, "bad");
}

TEST(ClientError, FallsBackToHttpErrorWithoutAnErrorBody) {
  for (std::string_view body :
       {"", "<html>502 Bad Gateway</html>", "{}", R"({"error":"nope"})", R"({"error":{}})",
        R"({"error":{"code":"a"},"error":{"code":"b"}})"}) {
    const ClientError e = http_error(502, body);
    EXPECT_EQ(e.kind, ClientError::Kind::http) << body;
    EXPECT_EQ(e.http_status, 502) << body;
    EXPECT_FALSE(e.message.empty()) << body;
    EXPECT_EQ(e.code, kHttpError) << body;
  }
}

TEST(ClientError, ANullBodyIsNotAnErrorBody) {
  EXPECT_FALSE(error_from_body(R"({"choices":[]})", 200));
  EXPECT_FALSE(error_from_body("not json", 200));
  EXPECT_TRUE(error_from_body(R"({"error":{"message":"m","code":"c"}})", 200));
}

TEST(ClientError, KindsHaveStableNames) {
  EXPECT_EQ(to_string(ClientError::Kind::transport), "transport");
  EXPECT_EQ(to_string(ClientError::Kind::http), "http");
  EXPECT_EQ(to_string(ClientError::Kind::protocol), "protocol");
}

}  // namespace
}  // namespace dynaseal::client

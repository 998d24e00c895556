#include "net/http_errors.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dynaseal::net {
namespace {

using http::status;

TEST(HttpErrors, MapsTheContractCodesToTheirStatuses) {
  const std::pair<Error, status> contract[] = {
      {Error::body_malformed, status::bad_request},
      {Error::model_missing, status::bad_request},
      {Error::token_missing, status::unauthorized},
      {Error::token_expired, status::unauthorized},
      {Error::uses_exhausted, status::unauthorized},
      {Error::token_revoked, status::unauthorized},
      {Error::model_not_allowed, status::forbidden},
      {Error::max_tokens_exceeded, status::forbidden},
      {Error::n_not_allowed, status::forbidden},
      {Error::stream_not_allowed, status::forbidden},
      {Error::endpoint_not_allowed, status::forbidden},
      {Error::budget_exhausted, status::payment_required},
      {Error::body_too_large, status::payload_too_large},
      {Error::rate_limited, status::too_many_requests},
      {Error::upstream_error, status::bad_gateway},
      {Error::upstream_timeout, status::gateway_timeout},
      {Error::store_unavailable, status::service_unavailable},
  };
  for (const auto& [e, s] : contract) EXPECT_EQ(http_error(e).status, s) << to_string(e);
}

TEST(HttpErrors, EveryTokenErrorIsAnAuthenticationError) {
  for (Error e = Error::token_missing; e <= Error::token_revoked;
       e = static_cast<Error>(static_cast<int>(e) + 1)) {
    EXPECT_EQ(http_error(e).status, status::unauthorized) << to_string(e);
    EXPECT_EQ(http_error(e).type, "authentication_error") << to_string(e);
  }
}

TEST(HttpErrors, WritesTheOpenAiErrorShape) {
  const auto body = boost::json::parse(error_body(Error::max_tokens_exceeded)).as_object();
  ASSERT_EQ(body.size(), 1u);
  const auto& error = body.at("error").as_object();
  EXPECT_EQ(error.at("code").as_string(), "max_tokens_exceeded");
  EXPECT_EQ(error.at("type").as_string(), "permission_error");
  EXPECT_FALSE(error.at("message").as_string().empty());
}

TEST(HttpErrors, NeverShowsInternalCodesToClients) {
  for (Error e : {Error::json_syntax, Error::key_invalid, Error::io_error, Error::internal}) {
    EXPECT_EQ(http_error(e).status, status::internal_server_error);
    const auto body = boost::json::parse(error_body(e)).as_object();
    EXPECT_EQ(body.at("error").at("code").as_string(), "internal") << to_string(e);
  }
}

TEST(HttpErrors, AsksForABearerTokenOn401) {
  net::Request req{net::http::verb::post, "/v1/completions", 11};
  const net::Response res = error_response(req, Error::token_missing);
  EXPECT_EQ(res.result(), status::unauthorized);
  EXPECT_EQ(res[net::http::field::www_authenticate], "Bearer");
  EXPECT_EQ(res[net::http::field::content_type], "application/json");
}

}  // namespace
}  // namespace dynaseal::net

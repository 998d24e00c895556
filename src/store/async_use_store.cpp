#include "store/async_use_store.hpp"

namespace dynaseal::store {

asio::awaitable<Result<UseGrant>> InlineUseStore::consume(const ConsumeRequest& req,
                                                          std::int64_t now) {
  co_return store_.consume(req, now);
}

asio::awaitable<Result<void>> InlineUseStore::settle(std::string_view iss, std::string_view jti,
                                                     std::int64_t /*use*/,
                                                     std::int64_t granted_tokens,
                                                     std::int64_t actual_tokens, std::int64_t now) {
  co_return store_.settle(iss, jti, granted_tokens, actual_tokens, now);
}

asio::awaitable<Result<void>> InlineUseStore::revoke_jti(std::string_view iss, std::string_view jti,
                                                         std::int64_t until, std::int64_t now) {
  co_return store_.revoke_jti(iss, jti, until, now);
}

asio::awaitable<Result<void>> InlineUseStore::revoke_sub(std::string_view iss, std::string_view sub,
                                                         std::int64_t revoked_at,
                                                         std::int64_t until, std::int64_t now) {
  co_return store_.revoke_sub(iss, sub, revoked_at, until, now);
}

asio::awaitable<Result<JournalPage>> InlineUseStore::journal(std::string_view /*iss*/,
                                                             std::uint64_t /*cursor*/) {
  co_return JournalPage{};
}

asio::awaitable<Result<void>> InlineUseStore::forget(std::string_view /*iss*/,
                                                     std::string_view /*jti*/,
                                                     std::int64_t /*use*/) {
  co_return Result<void>{};
}

asio::awaitable<void> InlineUseStore::release() { co_return; }

asio::awaitable<bool> InlineUseStore::check() { co_return store_.healthy(); }

}  // namespace dynaseal::store

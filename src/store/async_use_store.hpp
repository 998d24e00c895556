// The use store as the server calls it: from coroutines on its worker threads, which must never
// block. Same operations, results, checks and error order as store::UseStore
// (store/use_store.hpp, the contract in prose); each operation is awaited instead of called.
//
// Implementations: InlineUseStore runs a synchronous UseStore (the memory store) inline, without
// suspending; RedisUseStore (store/redis_use_store.hpp) sends one atomic script per operation
// over a connection driven by the calling coroutine's io_context.
//
// Views (ConsumeRequest's, iss, jti, sub) must stay valid until the awaitable completes, as for
// any co_await; implementations copy what they keep before they suspend.
//
//   InlineUseStore uses(memory_store);   // or RedisUseStore uses(options)
//   auto grant = co_await uses.consume(request, now);
//   if (!grant) co_return reject(grant.error());
//   co_await uses.settle(iss, jti, grant->granted_tokens, actual, now);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "store/use_store.hpp"

namespace dynaseal::store {

namespace asio = boost::asio;

class AsyncUseStore {
 public:
  virtual ~AsyncUseStore() = default;

  // As UseStore::consume, settle, revoke_jti and revoke_sub.
  virtual asio::awaitable<Result<UseGrant>> consume(const ConsumeRequest& req,
                                                    std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> settle(std::string_view iss, std::string_view jti,
                                               std::int64_t granted_tokens,
                                               std::int64_t actual_tokens, std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> revoke_jti(std::string_view iss, std::string_view jti,
                                                   std::int64_t until, std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> revoke_sub(std::string_view iss, std::string_view sub,
                                                   std::int64_t revoked_at, std::int64_t until,
                                                   std::int64_t now) = 0;

  // Contacts the store if it has one to contact, then answers as healthy() (for /readyz).
  virtual asio::awaitable<bool> check() = 0;

  // Whether the store can serve, as far as it knows without waiting (see each implementation).
  virtual bool healthy() const = 0;

  // Entries held, where the implementation can count them (see each implementation).
  virtual std::size_t size() const = 0;
};

// A synchronous UseStore awaited in place: each operation completes without suspending, so the
// memory store costs no more than a call (and an awaitable frame from Asio's recycling
// allocator). Owns nothing: `store` must outlive it.
class InlineUseStore final : public AsyncUseStore {
 public:
  explicit InlineUseStore(UseStore& store) : store_(store) {}

  asio::awaitable<Result<UseGrant>> consume(const ConsumeRequest& req, std::int64_t now) override;
  asio::awaitable<Result<void>> settle(std::string_view iss, std::string_view jti,
                                       std::int64_t granted_tokens, std::int64_t actual_tokens,
                                       std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_jti(std::string_view iss, std::string_view jti,
                                           std::int64_t until, std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_sub(std::string_view iss, std::string_view sub,
                                           std::int64_t revoked_at, std::int64_t until,
                                           std::int64_t now) override;
  asio::awaitable<bool> check() override;
  bool healthy() const override { return store_.healthy(); }
  std::size_t size() const override { return store_.size(); }

 private:
  UseStore& store_;
};

}  // namespace dynaseal::store

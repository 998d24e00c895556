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
//   co_await uses.settle(iss, jti, grant->use, grant->granted_tokens, actual, now);
//
// The journal closes the gap between a use and its record. The server takes a use here, then
// writes its outbox record to another database; a server killed in between, or a database
// write that fails, would leave a use spent and never reported. So a store whose uses outlive
// the server (Redis) also writes, in the same atomic step as the use, the event that reports
// it as interrupted (ConsumeRequest::event_head/tail). settle removes it. Every replica
// replays entries older than replica_timeout (server/use_journal.hpp): it writes the record
// unless one exists, then forgets the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "store/use_store.hpp"

namespace dynaseal::store {

namespace asio = boost::asio;

// One use whose event may not be recorded yet.
struct JournalEntry {
  std::string jti;
  std::int64_t use = 0;          // >= 1
  std::int64_t consumed_at = 0;  // unix seconds, the store's clock at consume
  std::string event;             // event_head + decimal(use) + event_tail
};

// A slice of one issuer's journal. Entries present for the whole scan are returned at least
// once; an entry may come twice (replaying is idempotent).
struct JournalPage {
  std::vector<JournalEntry> entries;
  std::vector<std::string> corrupt;  // entry names that do not parse: left alone, for operators
  std::uint64_t cursor = 0;          // where the next page starts; 0: the scan is complete
};

class AsyncUseStore {
 public:
  virtual ~AsyncUseStore() = default;

  // As UseStore::consume, settle, revoke_jti and revoke_sub. consume also writes the journal
  // entry of the use it grants (see above); settle removes the entry of use `use` of the key
  // (iss, jti), also when the key itself expired.
  virtual asio::awaitable<Result<UseGrant>> consume(const ConsumeRequest& req,
                                                    std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> settle(std::string_view iss, std::string_view jti,
                                               std::int64_t use, std::int64_t granted_tokens,
                                               std::int64_t actual_tokens, std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> revoke_jti(std::string_view iss, std::string_view jti,
                                                   std::int64_t until, std::int64_t now) = 0;
  virtual asio::awaitable<Result<void>> revoke_sub(std::string_view iss, std::string_view sub,
                                                   std::int64_t revoked_at, std::int64_t until,
                                                   std::int64_t now) = 0;

  // The journal of issuer `iss`, one page from `cursor` (0: the start). Pages are small (about
  // a hundred entries). A store without a journal returns an empty, complete page.
  virtual asio::awaitable<Result<JournalPage>> journal(std::string_view iss,
                                                       std::uint64_t cursor) = 0;
  // Removes one entry (its record is known to exist). Removing a missing entry succeeds.
  virtual asio::awaitable<Result<void>> forget(std::string_view iss, std::string_view jti,
                                               std::int64_t use) = 0;
  // Whether consume writes journal entries.
  virtual bool journals() const = 0;

  // Closes what the calling io_context holds of this store (a Redis connection keeps a read
  // pending), so that the io_context can run out of work and end. A later call reconnects.
  virtual asio::awaitable<void> release() = 0;

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
  asio::awaitable<Result<void>> settle(std::string_view iss, std::string_view jti, std::int64_t use,
                                       std::int64_t granted_tokens, std::int64_t actual_tokens,
                                       std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_jti(std::string_view iss, std::string_view jti,
                                           std::int64_t until, std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_sub(std::string_view iss, std::string_view sub,
                                           std::int64_t revoked_at, std::int64_t until,
                                           std::int64_t now) override;
  // No journal: the uses themselves are forgotten with the process.
  asio::awaitable<Result<JournalPage>> journal(std::string_view iss, std::uint64_t cursor) override;
  asio::awaitable<Result<void>> forget(std::string_view iss, std::string_view jti,
                                       std::int64_t use) override;
  bool journals() const override { return false; }
  asio::awaitable<void> release() override;
  asio::awaitable<bool> check() override;
  bool healthy() const override { return store_.healthy(); }
  std::size_t size() const override { return store_.size(); }

 private:
  UseStore& store_;
};

}  // namespace dynaseal::store

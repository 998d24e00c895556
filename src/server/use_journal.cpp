#include "server/use_journal.hpp"

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <spdlog/spdlog.h>

#include "core/json.hpp"

namespace dynaseal::server {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether the entry's event reports exactly this use as interrupted.
bool describes(const store::JournalEntry& e, std::string_view iss) {
  auto parsed = parse_json(e.event);
  if (!parsed || !parsed->is_object()) return false;
  const json::object& event = parsed->get_object();
  return string_member(event, "type") == "usage" && string_member(event, "event_id") == e.jti &&
         int_member(event, "use") == e.use && string_member(event, "iss") == iss &&
         string_member(event, "status") == "interrupted";
}

// The writes, built outside the coroutine (GCC 12 and coroutine temporaries).
store::OutboxWrite open_write(std::string_view iss, const store::JournalEntry& e,
                              const std::string& owner) {
  return store::outbox::Open{.key = {std::string(iss), e.jti, e.use},
                             .owner = owner,
                             .interrupted_body = e.event,
                             .now_ms = unix_ms()};
}

store::OutboxWrite finalize_write(std::string_view iss, const store::JournalEntry& e) {
  return store::outbox::Finalize{
      .key = {std::string(iss), e.jti, e.use}, .body = e.event, .now_ms = unix_ms()};
}

enum class Replay { written, existed, failed };

asio::awaitable<Replay> replay(DbWorker& db, const std::string& iss, const store::JournalEntry& e,
                               const std::string& owner) {
  auto opened = co_await db.write_durable(open_write(iss, e, owner));
  if (opened == Error::conflict) co_return Replay::existed;
  if (opened) co_return Replay::failed;
  // Open and at once pending: the request it stands for is over. A failure here leaves this
  // replica's open record, which recovery turns into the same event.
  auto finalized = co_await db.write_durable(finalize_write(iss, e));
  if (finalized) {
    spdlog::warn("journal: cannot finalize event {}.{}: {}", e.jti, e.use, to_string(*finalized));
  }
  co_return Replay::written;
}

}  // namespace

asio::awaitable<JournalPass> replay_journal_once(store::AsyncUseStore& uses, DbWorker& db,
                                                 std::vector<std::string> issuers,
                                                 std::string owner, std::int64_t consumed_by) {
  JournalPass pass;
  if (!uses.journals()) co_return pass;
  for (const std::string& iss : issuers) {
    std::uint64_t cursor = 0;
    do {
      auto page = co_await uses.journal(iss, cursor);
      if (!page) {
        pass.complete = false;
        break;
      }
      pass.corrupt += static_cast<std::int64_t>(page->corrupt.size());
      for (const store::JournalEntry& e : page->entries) {
        if (e.consumed_at > consumed_by) continue;  // its request may still be recording it
        if (!describes(e, iss)) {
          ++pass.corrupt;
          continue;
        }
        const Replay done = co_await replay(db, iss, e, owner);
        if (done == Replay::failed) {
          pass.complete = false;
          co_return pass;  // the database is down: every other entry would fail too
        }
        (done == Replay::written ? pass.replayed : pass.forgotten) += 1;
        // A failure leaves the entry for the next pass, which finds the record and forgets it.
        (void)co_await uses.forget(iss, e.jti, e.use);
      }
      cursor = page->cursor;
    } while (cursor != 0);
  }
  co_return pass;
}

asio::awaitable<void> replay_journal(store::AsyncUseStore& uses, DbWorker& db,
                                     const BackendRegistry& backends, std::string owner,
                                     OutboxOptions options, asio::steady_timer& timer,
                                     const bool& stopping,
                                     std::function<void(std::int64_t)> replayed) {
  std::int64_t reported_corrupt = 0;
  while (!stopping) {
    std::vector<std::string> issuers;
    for (const auto& [id, backend] : backends.snapshot()->backends) issuers.push_back(id);
    const std::int64_t consumed_by =
        (unix_ms() - options.replica_timeout.count()) / 1000;  // whole seconds, rounded down
    JournalPass pass =
        co_await replay_journal_once(uses, db, std::move(issuers), owner, consumed_by);
    if (stopping) break;
    if (pass.replayed > 0) {
      spdlog::warn("journal: {} consumed uses had no record: reported as interrupted",
                   pass.replayed);
      replayed(pass.replayed);
    }
    if (pass.corrupt != reported_corrupt) {
      if (pass.corrupt > 0) {
        spdlog::error("journal: {} entries do not describe their use; left in place", pass.corrupt);
      }
      reported_corrupt = pass.corrupt;
    }
    timer.expires_after(options.heartbeat);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) break;  // cancelled: stopping
  }
  co_await uses.release();  // so that this io_context runs out of work and can end
}

}  // namespace dynaseal::server

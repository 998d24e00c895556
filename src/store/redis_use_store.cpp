#include "store/redis_use_store.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <stdexcept>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "store/redis_cluster.hpp"
#include "store/redis_connections.hpp"
#include "store/redis_keys.hpp"
#include "store/redis_scripts.hpp"

namespace dynaseal::store {
namespace {

using Clock = RedisConnection::Clock;

// Times beyond any real clock are clamped to this (2^50 s, some 35 million years): the scripts'
// numbers stay exact doubles and EXPIREAT stays valid. Only absurd times compare differently.
constexpr std::int64_t kTimeLimit = std::int64_t{1} << 50;

// One script call: EVALSHA sha numkeys keys... args..., or EVAL with the body after NOSCRIPT.
struct ScriptCall {
  const RedisScript* script = nullptr;
  std::vector<std::string> args;
};

ScriptCall script_call(const RedisScript& script, std::initializer_list<std::string> keys,
                       std::initializer_list<std::string> args) {
  ScriptCall call{.script = &script, .args = {}};
  call.args.reserve(3 + keys.size() + args.size());
  call.args.emplace_back("EVALSHA");
  call.args.push_back(script.sha1);
  call.args.push_back(std::to_string(keys.size()));
  call.args.insert(call.args.end(), keys.begin(), keys.end());
  call.args.insert(call.args.end(), args.begin(), args.end());
  return call;
}

std::string time_arg(std::int64_t t) {
  return std::to_string(std::clamp(t, -kTimeLimit, kTimeLimit));
}

bool valid_request(const ConsumeRequest& req) {
  if (req.uses < 1 || req.want_tokens < 1) return false;
  if (req.min_tokens < 1 || req.min_tokens > req.want_tokens) return false;
  return !req.budget || *req.budget >= 1;
}

// The journal's name for use `use` of key `jti`: its webhook-id.
std::string journal_field(std::string_view jti, std::int64_t use) {
  std::string field(jti);
  field += '.';
  field += std::to_string(use);
  return field;
}

ScriptCall consume_call(std::string_view prefix, const ConsumeRequest& req, std::int64_t now) {
  return script_call(
      redis_consume_script(),
      {redis_jti_key(prefix, req.iss, req.jti), redis_sub_key(prefix, req.iss, req.sub),
       redis_journal_key(prefix, req.iss)},
      {time_arg(now), time_arg(req.expires_at), time_arg(req.iat), std::to_string(req.uses),
       req.budget ? std::to_string(*req.budget) : "", std::to_string(req.want_tokens),
       std::string(req.jti), std::string(req.event_head), std::string(req.event_tail),
       std::to_string(req.min_tokens)});
}

ScriptCall settle_call(std::string_view prefix, std::string_view iss, std::string_view jti,
                       std::int64_t use, std::int64_t granted_tokens, std::int64_t actual_tokens,
                       std::int64_t now) {
  return script_call(redis_settle_script(),
                     {redis_jti_key(prefix, iss, jti), redis_journal_key(prefix, iss)},
                     {time_arg(now), std::to_string(granted_tokens), std::to_string(actual_tokens),
                      journal_field(jti, use)});
}

ScriptCall revoke_jti_call(std::string_view prefix, std::string_view iss, std::string_view jti,
                           std::int64_t until, std::int64_t now) {
  return script_call(redis_revoke_jti_script(), {redis_jti_key(prefix, iss, jti)},
                     {time_arg(now), time_arg(until)});
}

ScriptCall revoke_sub_call(std::string_view prefix, std::string_view iss, std::string_view sub,
                           std::int64_t revoked_at, std::int64_t until, std::int64_t now) {
  return script_call(redis_revoke_sub_script(), {redis_sub_key(prefix, iss, sub)},
                     {time_arg(now), time_arg(revoked_at), time_arg(until)});
}

std::string_view text_of(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view() : std::string_view(reply.str, reply.len);
}

bool is_noscript(const redisReply& reply) {
  return reply.type == REDIS_REPLY_ERROR && text_of(reply).starts_with("NOSCRIPT");
}

// A refusal or a reply of the wrong shape, logged at most once a second per store.
Result<RedisReply> refused(RedisShared& shared, std::string_view what) {
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  auto last = shared.last_warning_ms.load(std::memory_order_relaxed);
  if (now_ms - last >= 1000 &&
      shared.last_warning_ms.compare_exchange_strong(last, now_ms, std::memory_order_relaxed)) {
    spdlog::warn("redis {}: {}", shared.options.url.display(), what);
  }
  return Unexpected(Error::store_unavailable);
}

// Health from a reply; an error reply (out of memory, read-only, corrupt state...) becomes
// store_unavailable.
Result<RedisReply> checked(RedisShared& shared, Result<RedisReply> reply) {
  if (!reply) return reply;  // the connection failed, and said so
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    shared.set_healthy(false);
    return refused(shared, "refused a script: " + std::string(text_of(**reply)));
  }
  shared.set_healthy(true);
  return reply;
}

// A Cluster redirects a command at most this often before it counts as a failure (a MOVED to
// the slot's new node, then an ASK during a migration, is the longest legitimate chain).
constexpr int kMaxRedirects = 3;
// While its slot migrates, a command on several keys that are not all on one node yet answers
// TRYAGAIN: it is sent again after this pause, until its deadline.
constexpr auto kTryAgainPause = std::chrono::milliseconds(20);

bool is_tryagain(const redisReply& reply) {
  return reply.type == REDIS_REPLY_ERROR && text_of(reply).starts_with("TRYAGAIN");
}

// Sends `args` for `slot` on the calling io_context's connections: to the node the slot is
// known to live on, following MOVED (learnt for the next commands) and ASK (this one only), and
// waiting out TRYAGAIN while the deadline allows.
asio::awaitable<Result<RedisReply>> send(RedisConnections& connections, std::uint16_t slot,
                                         std::span<const std::string> args,
                                         Clock::time_point deadline) {
  const auto executor = co_await asio::this_coro::executor;
  auto routes = connections.on(executor);
  auto connection = routes->for_slot(slot);
  bool asking = false;
  for (int hop = 0;;) {
    Result<RedisReply> reply = Unexpected(Error::store_unavailable);
    if (connection->available()) reply = co_await connection->call(args, deadline, asking);
    if (!reply) {
      if (connection != routes->seed()) routes->unlearn(slot);  // failed over, perhaps
      co_return reply;
    }
    if ((*reply)->type != REDIS_REPLY_ERROR) co_return reply;
    if (is_tryagain(**reply) && Clock::now() + kTryAgainPause < deadline) {
      asio::steady_timer pause(executor, kTryAgainPause);
      co_await pause.async_wait(asio::use_awaitable);
      connection = routes->for_slot(slot);
      asking = false;
      hop = 0;  // a fresh attempt: the deadline bounds these
      continue;
    }
    auto redirect = parse_redis_redirect(text_of(**reply));
    if (!redirect || ++hop > kMaxRedirects) co_return reply;
    // An empty host is the answering node's own (with the port given).
    auto next =
        routes->node(redirect->host.empty() ? connection->host() : redirect->host, redirect->port);
    if (!next) co_return reply;  // redirected to one node too many: refused as it came
    if (!redirect->ask) routes->learn(redirect->slot, next);
    connection = std::move(next);
    asking = redirect->ask;
  }
}

// Sends `call` for `slot`; an error reply becomes store_unavailable.
asio::awaitable<Result<RedisReply>> run_script(RedisConnections& connections,
                                               std::chrono::milliseconds timeout,
                                               std::uint16_t slot, ScriptCall call) {
  const Clock::time_point deadline = Clock::now() + timeout;
  auto reply = co_await send(connections, slot, call.args, deadline);
  if (reply && is_noscript(**reply)) {
    call.args[0] = "EVAL";
    call.args[1] = call.script->body;
    reply = co_await send(connections, slot, call.args, deadline);
  }
  co_return checked(connections.shared(), std::move(reply));
}

// One plain command for `slot`; an error reply becomes store_unavailable.
asio::awaitable<Result<RedisReply>> run_command(RedisConnections& connections,
                                                std::chrono::milliseconds timeout,
                                                std::uint16_t slot, std::vector<std::string> args) {
  auto reply = co_await send(connections, slot, args, Clock::now() + timeout);
  co_return checked(connections.shared(), std::move(reply));
}

// A decimal without sign or leading noise, at least `min`.
std::optional<std::int64_t> decimal(std::string_view text, std::int64_t min) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || text.size() > 19 || text[0] == '-' || text[0] == '+' || ec != std::errc() ||
      stop != end || value < min) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::int64_t> positive(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_STRING) return std::nullopt;
  return decimal(text_of(reply), 1);
}

// consume's reply: [0, use, granted] or [code]. Anything else, or a grant beyond what was asked,
// is not trusted.
Result<UseGrant> read_grant(const redisReply& reply, std::int64_t uses, std::int64_t want,
                            RedisShared& shared) {
  const auto bad = [&] { return refused(shared, "unexpected reply to consume").error(); };
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0) return Unexpected(bad());
  const redisReply& code = *reply.element[0];
  if (code.type != REDIS_REPLY_INTEGER) return Unexpected(bad());
  if (code.integer != 0) {
    if (reply.elements != 1) return Unexpected(bad());
    if (code.integer == 1) return Unexpected(Error::token_expired);
    if (code.integer == 2) return Unexpected(Error::token_revoked);
    if (code.integer == 3) return Unexpected(Error::uses_exhausted);
    if (code.integer == 4) return Unexpected(Error::budget_exhausted);
    return Unexpected(bad());
  }
  if (reply.elements != 3) return Unexpected(bad());
  const auto use = positive(*reply.element[1]);
  const auto granted = positive(*reply.element[2]);
  if (!use || !granted || *use > uses || *granted > want) return Unexpected(bad());
  return UseGrant{.use = *use, .granted_tokens = *granted};
}

// One journal field and value as consume writes them: "<jti>.<use>" and "<unix s> <event>".
std::optional<JournalEntry> read_journal_entry(std::string_view field, std::string_view value) {
  const auto dot = field.rfind('.');
  const auto space = value.find(' ');
  if (dot == std::string_view::npos || space == std::string_view::npos) return std::nullopt;
  const auto use = decimal(field.substr(dot + 1), 1);
  const auto at = decimal(value.substr(0, space), 0);
  if (!use || !at || space + 1 == value.size()) return std::nullopt;
  return JournalEntry{.jti = std::string(field.substr(0, dot)),
                      .use = *use,
                      .consumed_at = *at,
                      .event = std::string(value.substr(space + 1))};
}

// HSCAN's reply: [cursor, [field, value, ...]].
Result<JournalPage> read_journal_page(const redisReply& reply, RedisShared& shared) {
  const auto bad = [&] { return refused(shared, "unexpected reply to HSCAN").error(); };
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2) return Unexpected(bad());
  const redisReply& cursor = *reply.element[0];
  const redisReply& items = *reply.element[1];
  if (cursor.type != REDIS_REPLY_STRING || items.type != REDIS_REPLY_ARRAY ||
      items.elements % 2 != 0) {
    return Unexpected(bad());
  }
  JournalPage page;
  const std::string_view next = text_of(cursor);
  const auto [stop, ec] = std::from_chars(next.data(), next.data() + next.size(), page.cursor);
  if (next.empty() || ec != std::errc() || stop != next.data() + next.size()) {
    return Unexpected(bad());
  }
  for (std::size_t i = 0; i < items.elements; i += 2) {
    const redisReply& field = *items.element[i];
    const redisReply& value = *items.element[i + 1];
    if (field.type != REDIS_REPLY_STRING || value.type != REDIS_REPLY_STRING) {
      return Unexpected(bad());
    }
    if (auto entry = read_journal_entry(text_of(field), text_of(value))) {
      page.entries.push_back(std::move(*entry));
    } else {
      page.corrupt.emplace_back(text_of(field));
    }
  }
  return page;
}

// The other scripts' reply: the integer 0.
Result<void> read_done(const redisReply& reply, RedisShared& shared) {
  if (reply.type == REDIS_REPLY_INTEGER && reply.integer == 0) return {};
  return Unexpected(refused(shared, "unexpected reply to a script").error());
}

RedisConnectionOptions connection_options(const RedisUseStoreOptions& o) {
  if (!valid_redis_key_prefix(o.key_prefix)) {
    throw std::invalid_argument("key_prefix: expected 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (o.timeout.count() < 1 || o.min_backoff.count() < 1 || o.max_backoff < o.min_backoff) {
    throw std::invalid_argument("timeout and back-off must be at least 1 ms");
  }
  return {.url = o.url,
          .timeout = o.timeout,
          .min_backoff = o.min_backoff,
          .max_backoff = o.max_backoff};
}

}  // namespace

RedisUseStore::RedisUseStore(RedisUseStoreOptions options)
    : prefix_(options.key_prefix),
      timeout_(options.timeout),
      connections_(std::make_unique<RedisConnections>(connection_options(options))) {
  // Hashed now, at start-up, rather than inside the first request.
  for (const RedisScript* script : {&redis_consume_script(), &redis_settle_script(),
                                    &redis_revoke_jti_script(), &redis_revoke_sub_script()}) {
    (void)script;
  }
}

RedisUseStore::~RedisUseStore() = default;

bool RedisUseStore::healthy() const {
  return connections_->shared().healthy.load(std::memory_order_relaxed);
}

asio::awaitable<Result<UseGrant>> RedisUseStore::consume(const ConsumeRequest& req,
                                                         std::int64_t now) {
  if (!valid_request(req)) co_return Unexpected(Error::internal);
  const std::int64_t uses = req.uses, want = req.want_tokens;
  ScriptCall call = consume_call(prefix_, req, now);
  const std::uint16_t slot = redis_slot(call.args[3]);  // the first key: EVALSHA sha n key...
  auto reply = co_await run_script(*connections_, timeout_, slot, std::move(call));
  if (!reply) co_return Unexpected(reply.error());
  co_return read_grant(**reply, uses, want, connections_->shared());
}

asio::awaitable<Result<void>> RedisUseStore::settle(std::string_view iss, std::string_view jti,
                                                    std::int64_t use, std::int64_t granted_tokens,
                                                    std::int64_t actual_tokens, std::int64_t now) {
  if (granted_tokens < 0 || actual_tokens < 0) co_return Unexpected(Error::internal);
  ScriptCall call = settle_call(prefix_, iss, jti, use, granted_tokens, actual_tokens, now);
  const std::uint16_t slot = redis_slot(call.args[3]);  // the first key: EVALSHA sha n key...
  auto reply = co_await run_script(*connections_, timeout_, slot, std::move(call));
  if (!reply) co_return Unexpected(reply.error());
  co_return read_done(**reply, connections_->shared());
}

asio::awaitable<Result<void>> RedisUseStore::revoke_jti(std::string_view iss, std::string_view jti,
                                                        std::int64_t until, std::int64_t now) {
  ScriptCall call = revoke_jti_call(prefix_, iss, jti, until, now);
  const std::uint16_t slot = redis_slot(call.args[3]);  // the first key: EVALSHA sha n key...
  auto reply = co_await run_script(*connections_, timeout_, slot, std::move(call));
  if (!reply) co_return Unexpected(reply.error());
  co_return read_done(**reply, connections_->shared());
}

asio::awaitable<Result<void>> RedisUseStore::revoke_sub(std::string_view iss, std::string_view sub,
                                                        std::int64_t revoked_at, std::int64_t until,
                                                        std::int64_t now) {
  ScriptCall call = revoke_sub_call(prefix_, iss, sub, revoked_at, until, now);
  const std::uint16_t slot = redis_slot(call.args[3]);  // the first key: EVALSHA sha n key...
  auto reply = co_await run_script(*connections_, timeout_, slot, std::move(call));
  if (!reply) co_return Unexpected(reply.error());
  co_return read_done(**reply, connections_->shared());
}

asio::awaitable<Result<JournalPage>> RedisUseStore::journal(std::string_view iss,
                                                            std::uint64_t cursor) {
  std::vector<std::string> args{"HSCAN", redis_journal_key(prefix_, iss), std::to_string(cursor),
                                "COUNT", "100"};
  const std::uint16_t slot = redis_slot(args[1]);
  auto reply = co_await run_command(*connections_, timeout_, slot, std::move(args));
  if (!reply) co_return Unexpected(reply.error());
  co_return read_journal_page(**reply, connections_->shared());
}

asio::awaitable<Result<void>> RedisUseStore::forget(std::string_view iss, std::string_view jti,
                                                    std::int64_t use) {
  std::vector<std::string> args{"HDEL", redis_journal_key(prefix_, iss), journal_field(jti, use)};
  const std::uint16_t slot = redis_slot(args[1]);
  auto reply = co_await run_command(*connections_, timeout_, slot, std::move(args));
  if (!reply) co_return Unexpected(reply.error());
  if ((*reply)->type != REDIS_REPLY_INTEGER) {
    co_return Unexpected(refused(connections_->shared(), "unexpected reply to HDEL").error());
  }
  co_return Result<void>{};
}

asio::awaitable<void> RedisUseStore::release() {
  connections_->on(co_await asio::this_coro::executor)->close_all();
}

asio::awaitable<bool> RedisUseStore::check() {
  auto connection = connections_->on(co_await asio::this_coro::executor)->seed();
  if (connection->available()) {
    const std::vector<std::string> ping(1, "PING");
    auto reply = co_await connection->call(ping, Clock::now() + timeout_);
    if (reply) connections_->shared().set_healthy((*reply)->type != REDIS_REPLY_ERROR);
  }
  co_return healthy();
}

}  // namespace dynaseal::store

#include "server/server_app.hpp"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "core/base64url.hpp"
#include "core/jwk.hpp"
#include "core/thread_name.hpp"
#include "net/http_errors.hpp"
#include "server/gateway.hpp"
#include "server/registry_sync.hpp"
#include "store/key_file.hpp"
#include "store/memory_use_store.hpp"
#include "store/postgres_server_store.hpp"
#include "store/postgres_url.hpp"
#include "store/process_lock.hpp"
#include "store/redis_use_store.hpp"
#include "store/sqlite_server_store.hpp"

namespace dynaseal::server {
namespace {

SigningKey load_or_create_identity(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    SigningKey key = SigningKey::generate();
    if (!store::write_private_key_file(path, key)) {
      throw ConfigError("identity_key: cannot create " + path.string());
    }
    spdlog::info("created identity key {} (kid {})", path.string(),
                 jwk_thumbprint(key.public_key()));
    return key;
  }
  auto key = store::read_private_key_file(path);
  if (!key) {
    throw ConfigError("identity_key: " + std::string(to_string(key.error())) + ": " +
                      std::string(describe(key.error())) + " (" + path.string() + ")");
  }
  return *key;
}

std::string load_or_create_admin_token(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    std::array<std::uint8_t, 32> bytes;
    random_bytes(bytes);
    const std::string token = base64url_encode(bytes);
    if (!store::write_new_secret_file(path, token + "\n")) {
      throw ConfigError("admin_token_file: cannot create " + path.string());
    }
    spdlog::info("created admin token file {}", path.string());
    return token;
  }
  auto text = store::read_secret_file(path, 4096);
  if (!text && text.error() == Error::key_file_unsafe) {
    throw ConfigError("admin_token_file: " + path.string() +
                      " can be read or written by group or others: chmod 600 it");
  }
  if (!text) throw ConfigError("admin_token_file: cannot read " + path.string());
  std::string token = *text;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.size() < 16) throw ConfigError("admin_token_file: token shorter than 16 characters");
  return token;
}

std::string well_known_json(const ServerConfig& c, const SigningKey& identity) {
  boost::json::object doc;
  doc["id"] = c.id;
  doc["version"] = "0.1.0";
  doc["jwks"] = boost::json::parse(jwks_json({make_public_jwk(identity.public_key())}));
  doc["features"] = boost::json::array{"dynamic_keys", "streaming", "usage_callbacks"};
  doc["max_key_ttl"] = c.policy.max_ttl;
  doc["leeway"] = c.policy.leeway;
  return boost::json::serialize(doc);
}

std::vector<std::string> all_models(const ServerConfig& c) {
  std::vector<std::string> models;
  for (const auto& u : c.upstreams) models.insert(models.end(), u.models.begin(), u.models.end());
  return models;
}

std::unique_ptr<store::ServerStore> open_db(const ServerConfig& c) {
  std::string message;
  std::unique_ptr<store::ServerStore> db;
  if (store::is_postgres_url(c.db)) {
    db = store::PostgresServerStore::open(c.db, &message);  // the message hides the password
  } else {
    db = store::SqliteServerStore::open(c.db_path, &message);
  }
  if (!db) throw ConfigError("db: " + message);
  return db;
}

// The registry at start: the config's [[backend]] entries, then what the admin API stored,
// which wins for an id in both (it is the later decision, e.g. a key rotation).
// Returns the stored rows (where RegistrySync starts from).
std::vector<store::RegisteredBackend> load_backends(const ServerConfig& c, store::ServerStore& db,
                                                    BackendRegistry& registry) {
  for (const BackendConfig& b : c.backends) {
    if (!registry.add({b.id, b.keys, b.callback_url})) throw ConfigError("backend: duplicate id");
  }
  auto stored = db.backends();
  if (!stored) throw ConfigError("db: cannot read the registered backends");
  for (const store::RegisteredBackend& r : *stored) {
    auto keys = parse_jwks(r.jwks);
    if (!keys) throw ConfigError("db: backend " + r.id + " has an invalid stored JWKS");
    Backend b{r.id, std::move(*keys), r.callback_url};
    if (registry.snapshot()->backends.count(r.id)) {
      spdlog::info("backend {}: using its registration stored through the admin API", r.id);
      registry.restore(r.id, &b);
    } else {
      (void)registry.add(std::move(b));
    }
  }
  return *stored;
}

// With the open log (db_worker.hpp): writes gathered for 2 ms, and a request's Open held for
// up to 1 s, so that one that finishes by then is inserted once, finished.
constexpr std::chrono::microseconds kGatherWrites{2000};
constexpr std::chrono::milliseconds kHoldOpens{1000};

// The use store `store` names: the memory store, awaited inline (and swept by the caller), or
// Redis, shared with every replica that names the same one.
std::unique_ptr<store::AsyncUseStore> open_uses(const ServerConfig& c,
                                                std::unique_ptr<store::MemoryUseStore>& memory) {
  if (!c.store_redis) {
    memory = std::make_unique<store::MemoryUseStore>(
        store::MemoryUseStoreOptions{.max_entries = c.store_max_entries});
    return std::make_unique<store::InlineUseStore>(*memory);
  }
  spdlog::info("use store: {} (keys {}:*, timeout {} ms)", c.store_redis->display(),
               c.store_key_prefix, c.store_timeout.count());
  store::RedisUseStoreOptions options{.url = *c.store_redis, .key_prefix = c.store_key_prefix};
  options.timeout = c.store_timeout;
  return std::make_unique<store::RedisUseStore>(options);
}

}  // namespace

struct ServerApp::Impl {
  ServerConfig config;
  // SQLite: this process alone serves from the file (and its open log). PostgreSQL is shared
  // by replicas on purpose.
  std::optional<store::ProcessLock> db_lock = store::ProcessLock::acquire_sqlite(config.db_path);
  SigningKey identity;
  BackendRegistry backends;
  std::unique_ptr<store::MemoryUseStore> memory_uses;  // store = "memory" only
  std::unique_ptr<store::AsyncUseStore> uses;
  Router router;
  Metrics metrics;
  std::unique_ptr<RegistrySync> registry_sync;  // PostgreSQL only
  std::unique_ptr<DbWorker> db;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<net::HttpServer> http;
  // Off the request path, every second: expired memory-store entries are dropped (Redis drops
  // its own), and the registry takes what other replicas stored.
  std::thread sweeper;
  std::mutex sweep_mutex;
  std::condition_variable sweep_wake;
  bool stopping = false;
  bool waited = false;

  explicit Impl(ServerConfig c)
      : config(std::move(c)),
        identity(load_or_create_identity(config.identity_key)),
        uses(open_uses(config, memory_uses)),
        router(config.upstreams),
        metrics(all_models(config)) {
    auto store = open_db(config);
    auto stored = load_backends(config, *store, backends);
    if (shared_db()) registry_sync = std::make_unique<RegistrySync>(backends, stored);
    const bool with_open_log = config.outbox.open_log && memory_uses && !shared_db();
    // With the open log nothing on the request path waits for a commit: gather writes, and
    // hold Opens for their Finalize.
    db = with_open_log ? std::make_unique<DbWorker>(std::move(store), kGatherWrites, kHoldOpens)
                       : std::make_unique<DbWorker>(std::move(store));
    std::unique_ptr<OpenLog> open_log;
    if (with_open_log) {
      auto dir = config.db_path;
      dir += "-openlog";
      const unsigned threads = config.http.threads != 0
                                   ? config.http.threads
                                   : std::max(1u, std::thread::hardware_concurrency());
      open_log = OpenLog::create(dir, {.lanes = threads});
    }
    outbox = std::make_unique<Outbox>(*db, backends, identity, config.replica_id, config.outbox,
                                      metrics, std::move(open_log));
    if (memory_uses) restore_uses();
  }

  // The memory store starts empty: the uses of keys still alive come back from the outbox (its
  // records, open log included, are complete by now). Without this a single-use key used before
  // a restart would be taken again, and the open log could not tell.
  void restore_uses() {
    const std::int64_t lifetime = config.policy.max_ttl + 2 * config.policy.leeway;
    const std::int64_t now = unix_ms() / 1000;
    std::promise<Result<std::vector<store::UsedKey>>> rows;
    db->run([&](store::ServerStore& s) { rows.set_value(s.used_keys((now - lifetime) * 1000)); });
    auto used = rows.get_future().get();
    if (!used) throw ConfigError("db: cannot read which uses were taken before the restart");
    for (const store::UsedKey& k : *used) {
      // A key's uses are alive until its exp + leeway <= iat + max_key_ttl + leeway, and its
      // first use came at most `leeway` before iat.
      const std::int64_t until = k.first_ms / 1000 + lifetime + 1;
      auto restored = memory_uses->restore(k.iss, k.event_id, k.uses, k.spent_tokens, until, now);
      if (!restored && restored.error() == Error::internal) {
        spdlog::warn("db: outbox records of event {} have an invalid use number {}: ignored",
                     k.event_id, k.uses);
      } else if (!restored) {
        throw ConfigError(
            "store: the memory store is too small for the uses of live keys "
            "(raise store_max_entries)");
      }
    }
    if (!used->empty()) spdlog::info("use store: restored the uses of {} live keys", used->size());
  }

  void sweep_loop() {
    std::unique_lock lock(sweep_mutex);
    while (!sweep_wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      if (memory_uses) memory_uses->sweep(unix_ms() / 1000);
      sync_registry();
      if (gateway) gateway->flush_logs();
    }
  }

  bool shared_db() const { return config.db_path.empty(); }  // PostgreSQL

  // Backends that other replicas registered, changed or removed (through their admin API).
  void sync_registry() {
    if (!registry_sync) return;
    std::promise<Result<std::vector<store::RegisteredBackend>>> rows;
    db->run([&rows](store::ServerStore& s) { rows.set_value(s.backends()); });
    auto stored = rows.get_future().get();
    if (stored) registry_sync->apply(*stored);
  }
};

ServerApp::ServerApp(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
  Impl& i = *impl_;
  GatewayContext ctx{.config = i.config,
                     .backends = i.backends,
                     .uses = *i.uses,
                     .router = i.router,
                     .outbox = *i.outbox,
                     .db = *i.db,
                     .metrics = i.metrics,
                     .admin_token = load_or_create_admin_token(i.config.admin_token_file),
                     .well_known = well_known_json(i.config, i.identity),
                     .open_connections = [&i] { return i.http ? i.http->open_connections() : 0; }};
  i.gateway = std::make_unique<Gateway>(std::move(ctx));
  // Requests the HTTP layer refuses itself (413, 431, 400) never reach the gateway: counted
  // and logged here.
  net::Rejecter reject = [&i](Error e, net::http::status status) {
    i.metrics.request(Route::other, static_cast<unsigned>(status), e, 0);
    if (i.config.access_log && i.gateway->log_refusal(e)) {
      spdlog::info(R"(access {{"endpoint":"other","status":{},"code":"{}"}})",
                   static_cast<unsigned>(status), to_string(e));
    }
    net::Response res{status, 11};
    res.set(net::http::field::content_type, "application/json");
    res.body() = net::error_body(e);
    return res;
  };
  Gateway& gateway = *i.gateway;
  i.http = std::make_unique<net::HttpServer>(
      i.config.http, [&gateway](net::Exchange& ex) { return gateway.handle(ex); },
      std::move(reject));
}

ServerApp::~ServerApp() {
  stop(std::chrono::milliseconds(0));
  wait();
}

std::uint16_t ServerApp::port() const { return impl_->http->port(); }

void ServerApp::start() {
  // A SQLite file serves one node: no other replica to watch or to sync the registry from.
  impl_->outbox->start(impl_->shared_db(), impl_->uses.get());
  impl_->http->start();
  impl_->sweeper = std::thread([this] {
    name_this_thread("sweeper");
    impl_->sweep_loop();
  });
}

void ServerApp::stop(std::chrono::milliseconds grace) {
  impl_->http->stop(grace);
  {
    std::lock_guard lock(impl_->sweep_mutex);
    impl_->stopping = true;
  }
  impl_->sweep_wake.notify_all();
}

void ServerApp::wait() {
  if (impl_->waited) return;  // the destructor waits too
  impl_->waited = true;
  impl_->http->wait();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
  // Requests are over: deliver what they produced (briefly: a backend that is down must not
  // hold the exit up), stop delivering, then let the database take the last writes.
  impl_->outbox->drain(std::chrono::seconds(2));
  impl_->outbox->stop();
  impl_->db->stop();
}

}  // namespace dynaseal::server

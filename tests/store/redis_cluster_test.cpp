// The Redis use store on a Redis Cluster: slots as the cluster computes them, redirections
// parsed strictly, and a store pointed at one node that serves issuers living on every node,
// follows a slot that moves (MOVED) and one that is being migrated (ASK). The UseStore contract
// also runs on the shared cluster (use_store_test.cpp, "RedisCluster").
#include "store/redis_cluster.hpp"

#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "store/raw_redis.hpp"
#include "store/redis_fixture.hpp"
#include "store/redis_keys.hpp"
#include "store/redis_use_store.hpp"
#include "store/run_awaitable.hpp"
#include "support/services.hpp"

namespace dynaseal::store {
namespace {

using namespace std::string_literals;
using testing::RawRedis;
using testing::run_awaitable;

TEST(RedisSlot, FollowsTheClusterSpecification) {
  EXPECT_EQ(redis_slot("123456789"), 0x31C3 % 16384);  // the specification's CRC16 check value
  EXPECT_EQ(redis_slot("foo"), 12182);
  EXPECT_EQ(redis_slot("{user1000}.following"), redis_slot("{user1000}.followers"));
  EXPECT_EQ(redis_slot("{user1000}.following"), redis_slot("user1000"));
  EXPECT_EQ(redis_slot("foo{}{bar}"), redis_slot("foo{}{bar}"s));  // empty tag: the whole key
  EXPECT_NE(redis_slot("foo{}{bar}"), redis_slot("bar"));
  EXPECT_EQ(redis_slot("foo{{bar}}zap"), redis_slot("{bar"));
  EXPECT_EQ(redis_slot("foo{bar}{zap}"), redis_slot("bar"));
  EXPECT_EQ(redis_slot(""), 0);
}

TEST(RedisSlot, AgreesWithRedisOnTheStoresKeysWhateverTheirBytes) {
  RawRedis raw(testing::shared_redis_cluster_url());
  const std::vector<std::string> issuers = {"acme", "", "~", "{", "}", "a{b}c", "\0x"s, "\xff"s};
  for (const std::string& iss : issuers) {
    for (const std::string& key :
         {redis_jti_key("dks", iss, "j{x}"), redis_sub_key("dks", iss, "}{"),
          redis_journal_key("dks", iss)}) {
      EXPECT_EQ(redis_slot(key), raw.integer({"CLUSTER", "KEYSLOT", key})) << key;
    }
  }
}

TEST(RedisRedirect, ReadsMovedAndAsk) {
  auto moved = parse_redis_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->host, "127.0.0.1");
  EXPECT_EQ(moved->port, 6381);
  auto ask = parse_redis_redirect("ASK 16383 ::1:7000");  // IPv6: the port follows the last ':'
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->host, "::1");
  EXPECT_EQ(ask->port, 7000);
  auto same_node = parse_redis_redirect("MOVED 1 :6380");
  ASSERT_TRUE(same_node);
  EXPECT_EQ(same_node->host, "");
}

TEST(RedisRedirect, RefusesAnythingElse) {
  for (const char* error :
       {"ERR unknown command", "MOVED", "MOVED 1", "MOVED 16384 h:1", "MOVED -1 h:1", "MOVED x h:1",
        "MOVED 1 h", "MOVED 1 h:", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h:1x", "ASK  1 h:1",
        "moved 1 h:1", "MOVED 1 h h:1", "TRYAGAIN Multiple keys request"}) {
    EXPECT_FALSE(parse_redis_redirect(error)) << error;
  }
}

// Node ids and the slot's owner, read from the cluster itself.
class OwnCluster : public ::testing::Test {
 protected:
  OwnCluster() {
    for (const std::string& url : cluster_.node_urls()) nodes_.emplace_back(url);
    for (RawRedis& node : nodes_) {
      auto id = node.command({"CLUSTER", "MYID"});
      ids_.emplace_back(id->str, id->len);
    }
  }

  std::unique_ptr<RedisUseStore> store() {
    RedisUseStoreOptions options{.url = testing::redis_url_of(cluster_.url()), .key_prefix = "dks"};
    options.timeout = std::chrono::milliseconds(5000);
    return std::make_unique<RedisUseStore>(options);
  }

  // Which node (0-2) holds `key` (the others answer MOVED, or ASK during a migration).
  std::size_t holder(const std::string& key) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto reply = nodes_[i].command({"EXISTS", key});
      if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) return i;
    }
    return nodes_.size();
  }

  // Which node (0-2) owns `slot`, as node 1 sees the cluster.
  std::size_t owner(std::uint16_t slot) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto reply = nodes_[i].command({"CLUSTER", "NODES"});
      const std::string table(reply->str, reply->len);
      // "<id> <addr> myself,master - 0 0 1 connected 0-5460": find our own line's ranges.
      const auto mine = table.find("myself");
      const auto line_end = table.find('\n', mine);
      const std::string line = table.substr(mine, line_end - mine);
      std::size_t at = line.find(" connected");
      if (at == std::string::npos) continue;
      std::istringstream ranges(line.substr(at + 10));
      std::string range;
      while (ranges >> range) {
        if (range.starts_with("[")) continue;  // a migration in progress
        const auto dash = range.find('-');
        const int low = std::stoi(range.substr(0, dash));
        const int high = dash == std::string::npos ? low : std::stoi(range.substr(dash + 1));
        if (slot >= low && slot <= high) return i;
      }
    }
    return nodes_.size();
  }

  ConsumeRequest key(std::string_view iss, std::string_view jti, std::int64_t uses = 5) const {
    return {.iss = iss,
            .jti = jti,
            .sub = "user-42",
            .iat = now_ - 10,
            .expires_at = now_ + 600,
            .uses = uses,
            .budget = std::nullopt,
            .want_tokens = 10,
            .event_head = R"({"use":)",
            .event_tail = "}"};
  }

  testing::RedisCluster cluster_;
  std::vector<RawRedis> nodes_;
  std::vector<std::string> ids_;
  const std::int64_t now_ = testing::unix_now();
  asio::io_context context_;
};

TEST_F(OwnCluster, ServesIssuersOnEveryNodeThroughOneNodesUrl) {
  auto uses = store();
  std::set<std::size_t> holders;
  for (int i = 0; i < 24; ++i) {
    const std::string iss = "issuer-" + std::to_string(i);
    const auto req = key(iss, "cluster-key-00001");
    auto grant = run_awaitable(context_, uses->consume(req, now_));
    ASSERT_TRUE(grant) << iss << ": " << to_string(grant.error());
    EXPECT_EQ(grant->use, 1);
    EXPECT_EQ(run_awaitable(context_, uses->consume(req, now_))->use, 2);
    ASSERT_TRUE(run_awaitable(context_, uses->settle(iss, req.jti, 1, 10, 3, now_)));
    auto journal = run_awaitable(context_, uses->journal(iss, 0));
    ASSERT_TRUE(journal);
    ASSERT_EQ(journal->entries.size(), 1u) << "use 1 was settled";
    ASSERT_TRUE(run_awaitable(context_, uses->forget(iss, req.jti, 2)));
    ASSERT_TRUE(run_awaitable(context_, uses->revoke_sub(iss, "user-42", now_, now_ + 60, now_)));
    EXPECT_EQ(run_awaitable(context_, uses->consume(req, now_)).error(), Error::token_revoked);

    const std::string state = redis_jti_key("dks", iss, req.jti);
    const std::size_t node = holder(state);
    EXPECT_EQ(node, owner(redis_slot(state))) << iss << " stored off its slot's node";
    holders.insert(node);
  }
  EXPECT_EQ(holders.size(), 3u) << "24 issuers spread over the three nodes";
  EXPECT_TRUE(uses->healthy());
}

// Moves `slot` from node `from` to node `to` the way redis-cli --cluster reshard does.
void move_slot(std::vector<RawRedis>& nodes, const std::vector<std::string>& ids,
               std::uint16_t slot, std::size_t from, std::size_t to, bool finish) {
  const std::string s = std::to_string(slot);
  nodes[to].command({"CLUSTER", "SETSLOT", s, "IMPORTING", ids[from]});
  nodes[from].command({"CLUSTER", "SETSLOT", s, "MIGRATING", ids[to]});
  if (!finish) return;
  auto keys = nodes[from].command({"CLUSTER", "GETKEYSINSLOT", s, "1000"});
  auto port = nodes[to].command({"CONFIG", "GET", "port"});
  const std::string to_port(port->element[1]->str, port->element[1]->len);
  for (std::size_t i = 0; i < keys->elements; ++i) {
    const std::string k(keys->element[i]->str, keys->element[i]->len);
    nodes[from].command({"MIGRATE", "127.0.0.1", to_port, k, "0", "5000"});
  }
  for (RawRedis& node : nodes) node.command({"CLUSTER", "SETSLOT", s, "NODE", ids[to]});
}

TEST_F(OwnCluster, FollowsASlotThatMovesToAnotherNode) {
  auto uses = store();
  const auto req = key("moving-issuer", "cluster-key-00002");
  ASSERT_EQ(run_awaitable(context_, uses->consume(req, now_))->use, 1);  // learns the slot
  const std::uint16_t slot = redis_slot(redis_jti_key("dks", req.iss, req.jti));
  const std::size_t from = owner(slot);
  ASSERT_LT(from, 3u);
  const std::size_t to = (from + 1) % 3;
  move_slot(nodes_, ids_, slot, from, to, /*finish=*/true);
  EXPECT_EQ(holder(redis_jti_key("dks", req.iss, req.jti)), to) << "the key moved";
  auto grant = run_awaitable(context_, uses->consume(req, now_));  // MOVED, then the new node
  ASSERT_TRUE(grant) << to_string(grant.error());
  EXPECT_EQ(grant->use, 2) << "the state moved with the slot";
  EXPECT_EQ(run_awaitable(context_, uses->consume(req, now_))->use, 3);  // straight there now
}

TEST_F(OwnCluster, FollowsAnAskAndWaitsOutTryagainWhileItsSlotIsMigrating) {
  auto uses = store();
  const auto req = key("migrating-issuer", "cluster-key-00003");
  const std::uint16_t slot = redis_slot(redis_jti_key("dks", req.iss, req.jti));
  const std::size_t from = owner(slot);
  ASSERT_LT(from, 3u);
  const std::size_t to = (from + 2) % 3;
  move_slot(nodes_, ids_, slot, from, to, /*finish=*/false);
  // None of the issuer's keys is on `from`: it answers ASK, and the importing node takes a
  // command on one key after ASKING.
  auto page = run_awaitable(context_, uses->journal(req.iss, 0));
  ASSERT_TRUE(page) << to_string(page.error());
  EXPECT_TRUE(page->entries.empty());
  ASSERT_TRUE(run_awaitable(context_, uses->forget(req.iss, req.jti, 1)));
  // A script on three keys the importing node does not have yet answers TRYAGAIN until the
  // migration ends (here 300 ms later, from another thread): then MOVED, then the new node.
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::vector<RawRedis> own;
    for (const std::string& url : cluster_.node_urls()) own.emplace_back(url);
    for (RawRedis& node : own) {
      node.command({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_[to]});
    }
  });
  auto grant = run_awaitable(context_, uses->consume(req, now_));
  finisher.join();
  ASSERT_TRUE(grant) << to_string(grant.error());
  EXPECT_EQ(grant->use, 1);
  EXPECT_EQ(holder(redis_jti_key("dks", req.iss, req.jti)), to);
  EXPECT_EQ(run_awaitable(context_, uses->consume(req, now_))->use, 2);
}

TEST_F(OwnCluster, ForgetsANodeItCannotReachAndAsksTheEntryPointAgain) {
  auto uses = store();
  // An issuer whose slot lives on node 2 or 3, not on the entry point (node 1).
  std::string iss;
  std::uint16_t slot = 0;
  for (int i = 0; owner(slot) == 0 || iss.empty(); ++i) {
    iss = "failing-over-" + std::to_string(i);
    slot = redis_slot(redis_jti_key("dks", iss, "x"));
  }
  const auto req = key(iss, "cluster-key-00004");
  ASSERT_EQ(run_awaitable(context_, uses->consume(req, now_))->use, 1);  // learns the node
  const std::size_t gone = owner(slot);
  const std::size_t heir = gone == 1 ? 2 : 1;
  move_slot(nodes_, ids_, slot, gone, heir, /*finish=*/true);  // as a failover would
  try {
    nodes_[gone].command({"SHUTDOWN", "NOSAVE"});
  } catch (const std::runtime_error&) {
    // the node closes the connection instead of answering: the expected end
  }
  // The first call still goes to the lost node and fails closed; it forgets the node, so the
  // next asks the entry point, which answers MOVED to the heir.
  EXPECT_EQ(run_awaitable(context_, uses->consume(req, now_)).error(), Error::store_unavailable);
  auto grant = run_awaitable(context_, uses->consume(req, now_));
  ASSERT_TRUE(grant) << to_string(grant.error());
  EXPECT_EQ(grant->use, 2);
}

}  // namespace
}  // namespace dynaseal::store

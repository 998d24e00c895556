#include "store/memory_use_store.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <unordered_map>

namespace dynaseal::store {
namespace {

constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();

// Expired entries each operation drops from every shard it locks: more than the one entry an
// operation can add, so a busy shard never accumulates dead state between sweeps.
constexpr std::size_t kDropsPerOperation = 4;

// a + b for non-negative values, stopping at int64 max instead of overflowing.
std::int64_t add_clamped(std::int64_t a, std::int64_t b) {
  return a > kMaxInt - b ? kMaxInt : a + b;
}

// budget - spent - reserved, or 0 when nothing is left; no intermediate can overflow.
std::int64_t remaining(std::int64_t budget, std::int64_t spent, std::int64_t reserved) {
  if (spent >= budget) return 0;
  const std::int64_t left = budget - spent;
  return reserved >= left ? 0 : left - reserved;
}

// An entry's name: (iss, jti) for keys, (iss, sub) for subject revocations. Scoping by issuer
// keeps one backend from touching another's keys when both pick the same jti or sub.
struct IdView {
  std::string_view iss;
  std::string_view name;
};

struct Id {
  std::string iss;
  std::string name;
  operator IdView() const { return {iss, name}; }  // NOLINT: lookups compare views
};

// Transparent, so the request path looks entries up by views without building a key.
struct IdHash {
  using is_transparent = void;
  std::size_t operator()(IdView id) const {
    const std::size_t h = std::hash<std::string_view>{}(id.iss);
    return h ^ (std::hash<std::string_view>{}(id.name) + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2));
  }
};

struct IdEqual {
  using is_transparent = void;
  bool operator()(IdView a, IdView b) const { return a.iss == b.iss && a.name == b.name; }
};

struct KeyState {
  std::int64_t uses = 0;           // uses consumed
  std::int64_t reserved = 0;       // tokens granted and not settled yet
  std::int64_t spent = 0;          // tokens settled
  std::int64_t revoked_until = 0;  // the jti is revoked while now < revoked_until
  std::int64_t deadline = 0;       // dropped once now >= deadline; only ExpiringMap sets it
};

struct SubRevocation {
  std::int64_t revoked_at = 0;  // keys with iat <= revoked_at are revoked
  std::int64_t deadline = 0;    // the revocation's until
};

// A hash map whose entries die at a deadline, with an index ordered by deadline so that the
// expired entries are found without a scan. V has a `deadline` member, changed only here.
template <class V>
class ExpiringMap {
 public:
  using Node = std::pair<const Id, V>;

  // The entry named `id`, or nullptr when there is none or it expired (then it is dropped).
  Node* find(IdView id, std::int64_t now) {
    auto it = map_.find(id);
    if (it == map_.end()) return nullptr;
    if (it->second.deadline > now) return &*it;
    erase(it);
    return nullptr;
  }

  // Adds an entry the caller found absent. nullptr when memory runs out (nothing changed).
  Node* insert(IdView id, V value) {
    typename Map::iterator it;
    try {
      it = map_.emplace(Id{std::string(id.iss), std::string(id.name)}, value).first;
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    try {
      index_.insert(Slot{it->second.deadline, &it->first});
    } catch (const std::bad_alloc&) {
      map_.erase(it);
      return nullptr;
    }
    return &*it;
  }

  // Moves the deadline of `node` to `deadline` if that is later. Never allocates.
  void extend(Node& node, std::int64_t deadline) {
    if (deadline <= node.second.deadline) return;
    auto slot = index_.extract(Slot{node.second.deadline, &node.first});
    slot.value().deadline = deadline;
    index_.insert(std::move(slot));
    node.second.deadline = deadline;
  }

  // Drops up to `limit` entries whose deadline is <= now, earliest first; returns how many.
  std::size_t drop_expired(std::int64_t now, std::size_t limit) {
    std::size_t dropped = 0;
    while (dropped < limit && !index_.empty() && index_.begin()->deadline <= now) {
      erase(map_.find(*index_.begin()->id));
      ++dropped;
    }
    return dropped;
  }

  std::size_t size() const { return map_.size(); }

 private:
  struct Slot {
    std::int64_t deadline;
    const Id* id;  // the key inside the map's node: node addresses survive rehashing
  };
  struct SlotOrder {
    bool operator()(const Slot& a, const Slot& b) const {
      if (a.deadline != b.deadline) return a.deadline < b.deadline;
      return std::less<const Id*>{}(a.id, b.id);
    }
  };
  using Map = std::unordered_map<Id, V, IdHash, IdEqual>;

  void erase(typename Map::iterator it) {
    index_.erase(Slot{it->second.deadline, &it->first});
    map_.erase(it);
  }

  Map map_;
  std::set<Slot, SlotOrder> index_;
};

// A grant of the use after those recorded in `state`, or why there is none. Changes nothing.
Result<UseGrant> next_grant(const KeyState& state, const ConsumeRequest& req, std::int64_t now) {
  if (now < state.revoked_until) return Unexpected(Error::token_revoked);
  if (state.uses >= req.uses) return Unexpected(Error::uses_exhausted);
  std::int64_t granted = req.want_tokens;
  if (req.budget) {
    const std::int64_t left = remaining(*req.budget, state.spent, state.reserved);
    if (left < req.min_tokens) return Unexpected(Error::budget_exhausted);
    granted = std::min(granted, left);
  }
  return UseGrant{.use = state.uses + 1, .granted_tokens = granted};
}

bool valid_request(const ConsumeRequest& req) {
  if (req.uses < 1 || req.want_tokens < 1) return false;
  if (req.min_tokens < 1 || req.min_tokens > req.want_tokens) return false;
  return !req.budget || *req.budget >= 1;
}

// A finalizer (MurmurHash3 fmix64): shard choice and bucket choice inside a shard's map use
// the same hash, so the shard index takes well-mixed bits instead of the raw low ones.
std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

}  // namespace

struct MemoryUseStore::Shard {
  std::mutex mutex;
  std::int64_t clock = 0;  // the latest `now` seen: time in a shard never goes backwards
  ExpiringMap<KeyState> keys;
  ExpiringMap<SubRevocation> subs;

  std::int64_t advance(std::int64_t now) { return clock = std::max(clock, now); }
  std::size_t size() const { return keys.size() + subs.size(); }
  std::size_t drop_expired(std::int64_t now, std::size_t limit) {
    const std::size_t dropped = keys.drop_expired(now, limit);
    return dropped + subs.drop_expired(now, limit - dropped);
  }
  // Whether one more entry fits, after dropping what has expired. Live entries stay.
  bool has_room(std::int64_t now, std::size_t capacity) {
    if (size() < capacity) return true;
    drop_expired(now, 1);
    return size() < capacity;
  }
  // The key's entry, added (alive until `deadline`) when it has none; nullptr when the shard is
  // full or memory runs out.
  ExpiringMap<KeyState>::Node* key(IdView id, std::int64_t deadline, std::int64_t now,
                                   std::size_t capacity) {
    if (auto* node = keys.find(id, now)) return node;
    if (!has_room(now, capacity)) return nullptr;
    return keys.insert(id, KeyState{.deadline = deadline});
  }
};

MemoryUseStore::MemoryUseStore(MemoryUseStoreOptions options)
    : shard_count_(std::clamp<std::size_t>(options.shards, 1,
                                           std::max<std::size_t>(options.max_entries, 1))),
      shard_capacity_(options.max_entries / shard_count_),
      shards_(std::make_unique<Shard[]>(shard_count_)) {}

MemoryUseStore::~MemoryUseStore() = default;

std::size_t MemoryUseStore::shard_index(std::string_view iss, std::string_view name) const {
  return mix(IdHash{}(IdView{iss, name})) % shard_count_;
}

Result<UseGrant> MemoryUseStore::consume(const ConsumeRequest& req, std::int64_t now) {
  if (!valid_request(req)) return Unexpected(Error::internal);
  const std::size_t k = shard_index(req.iss, req.jti);
  const std::size_t s = shard_index(req.iss, req.sub);
  // Both shards for the whole check-and-count, lower index first. consume is the only
  // operation holding two locks, so all holders agree on the order and none can deadlock.
  std::unique_lock first(shards_[std::min(k, s)].mutex);
  std::unique_lock second(shards_[std::max(k, s)].mutex, std::defer_lock);
  if (k != s) second.lock();
  return consume_locked(shards_[k], shards_[s], req, now);
}

Result<UseGrant> MemoryUseStore::consume_locked(Shard& keys, Shard& subs, const ConsumeRequest& req,
                                                std::int64_t now) {
  const std::int64_t t = std::max({now, keys.clock, subs.clock});
  keys.clock = subs.clock = t;
  // The store outlives no key: past expires_at its state may be gone, so counting would
  // restart at zero. Refuse instead, whatever the caller's verifier said.
  if (t >= req.expires_at) return Unexpected(Error::token_expired);
  keys.drop_expired(t, kDropsPerOperation);
  subs.drop_expired(t, kDropsPerOperation);

  const auto* revocation = subs.subs.find({req.iss, req.sub}, t);
  if (revocation && req.iat <= revocation->second.revoked_at) {
    return Unexpected(Error::token_revoked);
  }
  auto* node = keys.keys.find({req.iss, req.jti}, t);
  auto grant = next_grant(node ? node->second : KeyState{}, req, t);
  if (!grant) return grant;
  if (!node) {
    if (!keys.has_room(t, shard_capacity_)) return Unexpected(Error::store_unavailable);
    node = keys.keys.insert({req.iss, req.jti}, KeyState{.deadline = req.expires_at});
    if (!node) return Unexpected(Error::store_unavailable);
  }
  node->second.uses = grant->use;
  node->second.reserved = add_clamped(node->second.reserved, grant->granted_tokens);
  keys.keys.extend(*node, req.expires_at);
  return grant;
}

Result<void> MemoryUseStore::settle(std::string_view iss, std::string_view jti,
                                    std::int64_t granted_tokens, std::int64_t actual_tokens,
                                    std::int64_t now) {
  if (granted_tokens < 0 || actual_tokens < 0) return Unexpected(Error::internal);
  Shard& shard = shards_[shard_index(iss, jti)];
  std::lock_guard lock(shard.mutex);
  const std::int64_t t = shard.advance(now);
  shard.drop_expired(t, kDropsPerOperation);
  auto* node = shard.keys.find({iss, jti}, t);
  if (!node) return {};  // expired and dropped: nothing left to account for
  KeyState& state = node->second;
  state.reserved -= std::min(granted_tokens, state.reserved);
  state.spent = add_clamped(state.spent, actual_tokens);
  return {};
}

Result<void> MemoryUseStore::revoke_jti(std::string_view iss, std::string_view jti,
                                        std::int64_t until, std::int64_t now) {
  Shard& shard = shards_[shard_index(iss, jti)];
  std::lock_guard lock(shard.mutex);
  const std::int64_t t = shard.advance(now);
  shard.drop_expired(t, kDropsPerOperation);
  if (until <= t) return {};  // lapsed already: nothing to remember
  auto* node = shard.key({iss, jti}, until, t, shard_capacity_);
  if (!node) return Unexpected(Error::store_unavailable);
  node->second.revoked_until = std::max(node->second.revoked_until, until);
  shard.keys.extend(*node, until);
  return {};
}

Result<void> MemoryUseStore::restore(std::string_view iss, std::string_view jti, std::int64_t uses,
                                     std::int64_t spent_tokens, std::int64_t until,
                                     std::int64_t now) {
  if (uses < 0 || spent_tokens < 0) return Unexpected(Error::internal);
  Shard& shard = shards_[shard_index(iss, jti)];
  std::lock_guard lock(shard.mutex);
  const std::int64_t t = shard.advance(now);
  shard.drop_expired(t, kDropsPerOperation);
  if (until <= t) return {};  // the key is dead: nothing to remember
  auto* node = shard.key({iss, jti}, until, t, shard_capacity_);
  if (!node) return Unexpected(Error::store_unavailable);
  node->second.uses = std::max(node->second.uses, uses);
  node->second.spent = std::max(node->second.spent, spent_tokens);
  shard.keys.extend(*node, until);
  return {};
}

Result<void> MemoryUseStore::revoke_sub(std::string_view iss, std::string_view sub,
                                        std::int64_t revoked_at, std::int64_t until,
                                        std::int64_t now) {
  Shard& shard = shards_[shard_index(iss, sub)];
  std::lock_guard lock(shard.mutex);
  const std::int64_t t = shard.advance(now);
  shard.drop_expired(t, kDropsPerOperation);
  if (until <= t) return {};  // lapsed already: nothing to remember
  auto* node = shard.subs.find({iss, sub}, t);
  if (!node) {
    if (!shard.has_room(t, shard_capacity_)) return Unexpected(Error::store_unavailable);
    SubRevocation fresh{.revoked_at = revoked_at, .deadline = until};
    node = shard.subs.insert({iss, sub}, fresh);
    if (!node) return Unexpected(Error::store_unavailable);
  }
  node->second.revoked_at = std::max(node->second.revoked_at, revoked_at);
  shard.subs.extend(*node, until);
  return {};
}

std::size_t MemoryUseStore::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].size();
  }
  return total;
}

std::size_t MemoryUseStore::sweep(std::int64_t now) {
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    dropped += shards_[i].drop_expired(shards_[i].advance(now), kAll);
  }
  return dropped;
}

}  // namespace dynaseal::store

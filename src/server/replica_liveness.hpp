// Replicas that share one outbox database (PostgreSQL, DESIGN §8) watch each other, so that a
// replica that dies and never comes back does not take its unfinished requests with it.
//
// Every `heartbeat` the replica records that it is alive (ServerStore::heartbeat). Then, once
// its own heartbeats have succeeded for a whole `replica_timeout` without a gap, it takes over
// the open records of every replica silent for longer than `replica_timeout`
// (ServerStore::recover_stale): they become "interrupted" events, delivered like any other.
//
// Why wait a whole timeout first: after a database outage every replica's last heartbeat is
// old, including those of replicas that are alive and still streaming. A replica that has just
// reconnected must give the others the time to heartbeat again before it judges them, or it
// would report their running requests as interrupted.
//
// Clocks: heartbeats are stamped with each replica's clock, so replica_timeout must exceed the
// clock skew between replicas by far (the default 30 s against NTP's milliseconds).
//
//   co_spawn(io, keep_alive(db, "host-a:8000", options, timer, stopping, on_recovered), detached);
//   ... timer.cancel();   // with stopping = true, on the same executor
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/config.hpp"
#include "server/db_worker.hpp"

namespace dynaseal::server {

// Runs on `timer`'s executor until `stopping` is true (read on that executor) or the timer is
// cancelled. `recovered(n)` runs after n > 0 records of silent replicas became pending (the
// dispatcher should look for work).
asio::awaitable<void> keep_alive(DbWorker& db, std::string replica, OutboxOptions options,
                                 asio::steady_timer& timer, const bool& stopping,
                                 std::function<void(std::int64_t)> recovered);

}  // namespace dynaseal::server

// The open log: how a request makes its outbox record durable before the engine sees it
// (DESIGN §5) without waiting for the outbox database. The request's own thread appends the
// record's Open (with its "interrupted" body) to a file, a copy into a shared mapping, and
// later its Finalize (the real body) the same way; the database gets the same writes through
// the DbWorker, committed in the background, and the log's copies are dropped once it has.
// After a crash, the next start replays what the log still holds into the database before it
// recovers open records (Outbox): a use taken just before a kill is reported as interrupted
// like any other, and a request that was answered just before it with its real usage.
//
// Durability is the database's own (SQLite in WAL mode with synchronous=NORMAL): a record is
// in the kernel's page cache when append returns, so it survives the process, not the machine.
// Neither the log nor the WAL is synced on every write.
//
// Files: DIR/<start ms>-<n>.log, one open segment per lane (lanes = worker threads, so the
// request path takes an uncontended lock). A segment is `segment_bytes` allocated at once
// (posix_fallocate) and mapped shared: an append is a copy into the mapping, with no system
// call, and the space is reserved so it cannot fail for a full disk. A lane starts a new
// segment when a record no longer fits; the zeros after the last record are not damage.
// A segment is retired once it is sealed and every record in it was committed: the Ticket of
// each append holds the segment, and the DbWorker callback that sees the commit drops it.
// A retired segment of the usual size is zeroed and kept mapped, under its old name, for a
// lane to rename and reuse (at most one per lane): making one costs about 0.2 ms and removing
// one about as much, zeroing and renaming a few µs. Zeroed first, so a crash at any point
// leaves in it at most frames the database had already committed, whose replay changes nothing
// (as for a segment not yet removed). Others are removed.
// A record that never reached the database (the server stopped while it refused writes) keeps
// its segment on disk for the next start.
//
// Frames: magic "DSOL", u32 payload length, 8-byte SipHash-2-4 of the payload (a checksum
// against torn or garbled writes, not a MAC), then the payload: u8 kind (1 Open, 2 Finalize),
// i64 now_ms, i64 use, then iss, event id, owner (empty for a Finalize) (u16 length each) and
// the body (u32 length), integers little endian. A reader skips damaged bytes up to the next
// frame that checks out, and counts them.
//
//   auto log = OpenLog::create(dir, {.lanes = 2});           // throws std::runtime_error
//   auto ticket = log->append(open);                          // on the request path
//   if (!ticket) refuse(ticket.error());                      // store_unavailable
//   db.write_retried(std::move(open), [t = *ticket](auto r) { if (r) t.keep(); });
//   ...
//   auto recovered = OpenLog::read(dir);                      // at start, before recover()
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/server_store.hpp"

namespace dynaseal::server {

struct OpenLogOptions {
  std::size_t lanes = 1;  // segments written at once (one per worker thread)
  // Each segment's size, allocated and faulted in at creation on the request's thread (about
  // 0.2 ms for 256 KiB; removing one costs about as much on the DbWorker's thread; a reused one
  // costs a rename and zeroing what was written): small enough not to stall a request for long
  // when one must be made, large enough to be rare (one per ~370 requests).
  std::size_t segment_bytes = 256u << 10;
};

class OpenLog {
 public:
  struct Segment;

  // One appended record until the database has it. Copyable (it lives in a DbWorker callback);
  // the segment goes once its last ticket does, unless keep() was called on one of them.
  class Ticket {
   public:
    explicit Ticket(std::shared_ptr<Segment> segment) : segment_(std::move(segment)) {}
    // The record did not reach the database: its segment stays on disk for the next start.
    void keep() const;

   private:
    std::shared_ptr<Segment> segment_;
  };

  // What a directory holds after a crash: the Opens and Finalizes in file and append order
  // (a request's come from one lane, so its Open precedes its Finalize), the files they came
  // from (to remove once they are committed), and the bytes skipped as damaged.
  struct Recovered {
    std::vector<store::OutboxWrite> writes;
    std::vector<std::filesystem::path> files;
    std::size_t damaged_bytes = 0;
  };

  // Creates DIR (mode 0700) if needed. Segments are created on first append. Throws
  // std::runtime_error when the directory cannot be made or is not a directory.
  static std::unique_ptr<OpenLog> create(std::filesystem::path dir, OpenLogOptions options = {});
  ~OpenLog();
  OpenLog(const OpenLog&) = delete;
  OpenLog& operator=(const OpenLog&) = delete;

  // Appends an Open or a Finalize. store_unavailable when a new segment cannot be created,
  // allocated or mapped (disk full): nothing was recorded. internal when a field is too long to
  // frame, or for another kind of write. Thread-safe.
  Result<Ticket> append(const store::OutboxWrite& write);

  // Every record in DIR's segments (none when DIR does not exist). store_unavailable when a
  // segment cannot be read.
  static Result<Recovered> read(const std::filesystem::path& dir);
  // Encodes and decodes one frame (exposed for tests).
  static void encode(const store::OutboxWrite& write, std::string& out);
  static Recovered decode(std::string_view bytes);

  const std::filesystem::path& dir() const { return dir_; }
  // Segments started so far, and how many of them reused a retired one (for tests).
  std::size_t segments_created() const { return created_.load(std::memory_order_relaxed); }
  std::size_t segments_reused() const;

 private:
  struct Lane;
  struct Spares;
  OpenLog(std::filesystem::path dir, OpenLogOptions options);
  Result<std::shared_ptr<Segment>> new_segment(std::size_t capacity);
  Lane& lane();

  std::filesystem::path dir_;
  OpenLogOptions options_;
  std::int64_t started_ms_;
  std::atomic<std::size_t> created_{0};
  std::shared_ptr<Spares> spares_;  // shared with the segments, which may outlive the log
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace dynaseal::server

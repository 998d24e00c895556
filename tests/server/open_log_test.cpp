#include "server/open_log.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace dynaseal::server {
namespace {

namespace fs = std::filesystem;

store::outbox::Open open_of(int i, std::string body = R"({"status":"interrupted"})") {
  return store::outbox::Open{.key = {"acme", "jti-" + std::to_string(i), i % 3 + 1},
                             .owner = "llm-1",
                             .interrupted_body = std::move(body),
                             .now_ms = 1'800'000'000'000 + i};
}

const store::outbox::Open& opened(const store::OutboxWrite& w) {
  return std::get<store::outbox::Open>(w);
}

std::vector<fs::path> segments(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void expect_same(const store::outbox::Open& a, const store::outbox::Open& b) {
  EXPECT_EQ(a.key.iss, b.key.iss);
  EXPECT_EQ(a.key.event_id, b.key.event_id);
  EXPECT_EQ(a.key.use, b.key.use);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.interrupted_body, b.interrupted_body);
  EXPECT_EQ(a.now_ms, b.now_ms);
}

TEST(OpenLog, AFrameDecodesToTheOpenItEncodes) {
  std::string bytes;
  const auto first = open_of(1);
  const auto second = open_of(2, std::string(70'000, 'x'));  // past a u16 length
  OpenLog::encode(first, bytes);
  OpenLog::encode(second, bytes);
  auto r = OpenLog::decode(bytes);
  ASSERT_EQ(r.writes.size(), 2u);
  expect_same(opened(r.writes[0]), first);
  expect_same(opened(r.writes[1]), second);
  EXPECT_EQ(r.damaged_bytes, 0u);
  // A segment is allocated whole: zeros after the last frame are room, not damage.
  r = OpenLog::decode(bytes + std::string(5000, '\0'));
  EXPECT_EQ(r.writes.size(), 2u);
  EXPECT_EQ(r.damaged_bytes, 0u);
  r = OpenLog::decode(std::string(100, '\0') + bytes);
  EXPECT_EQ(r.writes.size(), 2u);
  EXPECT_EQ(r.damaged_bytes, 100u) << "zeros before a frame are";
}

TEST(OpenLog, CarriesFinalizesToo) {
  std::string bytes;
  const store::outbox::Finalize fin{
      .key = {"acme", "jti-7", 2}, .body = R"({"status":"ok"})", .now_ms = 1'800'000'000'123};
  OpenLog::encode(open_of(7), bytes);
  OpenLog::encode(fin, bytes);
  OpenLog::encode(store::outbox::Delivered{.id = 1, .now_ms = 1, .http_status = 200}, bytes);
  auto r = OpenLog::decode(bytes);
  ASSERT_EQ(r.writes.size(), 2u) << "Delivered is not a record of the log";
  const auto& back = std::get<store::outbox::Finalize>(r.writes[1]);
  EXPECT_EQ(back.key.iss, "acme");
  EXPECT_EQ(back.key.event_id, "jti-7");
  EXPECT_EQ(back.key.use, 2);
  EXPECT_EQ(back.body, fin.body);
  EXPECT_EQ(back.now_ms, fin.now_ms);
  // An Open without an owner, or a Finalize with one, is no record.
  auto ownerless = open_of(1);
  ownerless.owner.clear();
  std::string bad;
  OpenLog::encode(ownerless, bad);
  EXPECT_TRUE(OpenLog::decode(bad).writes.empty());
}

TEST(OpenLog, RefusesToFrameWhatItCouldNotReadBack) {
  std::string bytes;
  auto huge = open_of(1, std::string(2u << 20, 'x'));
  OpenLog::encode(huge, bytes);
  EXPECT_TRUE(bytes.empty());
  auto long_iss = open_of(1);
  long_iss.key.iss.assign(70'000, 'i');
  OpenLog::encode(long_iss, bytes);
  EXPECT_TRUE(bytes.empty());

  testing::TempDir dir;
  auto log = OpenLog::create(dir.path() / "log");
  auto ticket = log->append(huge);
  ASSERT_FALSE(ticket);
  EXPECT_EQ(ticket.error(), Error::internal);
}

TEST(OpenLog, ATornTailLosesOnlyTheFrameItCut) {
  std::string bytes;
  for (int i = 0; i < 3; ++i) OpenLog::encode(open_of(i), bytes);
  for (std::size_t cut = 1; cut < 40; ++cut) {
    auto r = OpenLog::decode(std::string_view(bytes).substr(0, bytes.size() - cut));
    ASSERT_EQ(r.writes.size(), 2u) << cut;
    EXPECT_EQ(opened(r.writes[1]).key.event_id, "jti-1");
    EXPECT_GT(r.damaged_bytes, 0u);
  }
}

TEST(OpenLog, ADamagedFrameIsSkippedAndTheFramesAfterItAreKept) {
  std::string one, two, three;
  OpenLog::encode(open_of(1), one);
  OpenLog::encode(open_of(2), two);
  OpenLog::encode(open_of(3), three);
  // Every single-byte change in the middle frame: header, checksum or payload.
  for (std::size_t at = 0; at < two.size(); ++at) {
    std::string damaged = two;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
    auto r = OpenLog::decode(one + damaged + three);
    ASSERT_EQ(r.writes.size(), 2u) << at;
    EXPECT_EQ(opened(r.writes[0]).key.event_id, "jti-1");
    EXPECT_EQ(opened(r.writes[1]).key.event_id, "jti-3");
    EXPECT_EQ(r.damaged_bytes, two.size()) << at;
  }
  // Garbage between frames, including a false "DSOL".
  auto r = OpenLog::decode(one + "DSOL\xff\xff garbage" + three);
  ASSERT_EQ(r.writes.size(), 2u);
  EXPECT_EQ(r.damaged_bytes, 14u);
}

TEST(OpenLog, FramesThatCheckOutButMakeNoSenseAreSkipped) {
  // A valid checksum over a payload that is no record: use 0, no iss, no event id.
  std::vector<store::outbox::Open> bad(3, open_of(1));
  bad[0].key.use = 0;
  bad[1].key.iss.clear();
  bad[2].key.event_id.clear();
  for (const auto& o : bad) {
    std::string bytes;
    OpenLog::encode(o, bytes);
    auto r = OpenLog::decode(bytes);
    EXPECT_TRUE(r.writes.empty());
    EXPECT_EQ(r.damaged_bytes, bytes.size());
  }
}

TEST(OpenLog, AppendedRecordsAreReadBackInOrderFromEveryLane) {
  testing::TempDir dir;
  auto log = OpenLog::create(dir.path() / "log", {.lanes = 4});
  std::vector<OpenLog::Ticket> tickets;
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto ticket = log->append(open_of(t * 1000 + i));
        ASSERT_TRUE(ticket);
        std::lock_guard lock(mutex);
        tickets.push_back(*ticket);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto r = OpenLog::read(dir.path() / "log");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->writes.size(), 200u);
  EXPECT_EQ(r->damaged_bytes, 0u);
  EXPECT_GE(r->files.size(), 1u);
  EXPECT_LE(r->files.size(), 4u);
  // Within each thread's lane, append order.
  std::map<int, int> last;
  for (const auto& w : r->writes) {
    const int n = std::stoi(opened(w).key.event_id.substr(4));
    auto [it, fresh] = last.try_emplace(n / 1000, n);
    if (!fresh) {
      EXPECT_GT(n, it->second);
      it->second = n;
    }
  }
}

TEST(OpenLog, ASegmentGoesWhenItIsSealedAndItsLastTicketIsDropped) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "log";
  auto log = OpenLog::create(path, {.lanes = 1, .segment_bytes = 300});
  std::vector<std::optional<OpenLog::Ticket>> tickets;
  for (int i = 0; i < 6; ++i) {
    auto t = log->append(open_of(i, std::string(400, 'b')));  // one frame fills a segment
    ASSERT_TRUE(t);
    tickets.emplace_back(*t);
  }
  EXPECT_EQ(log->segments_created(), 6u);
  EXPECT_EQ(segments(path).size(), 6u) << "every record still waits for the database";
  tickets[0].reset();
  tickets[2].reset();
  EXPECT_EQ(segments(path).size(), 4u);
  tickets[5].reset();
  EXPECT_EQ(segments(path).size(), 4u) << "the lane's current segment stays while it is open";
  tickets[1]->keep();  // never committed
  tickets[1].reset();
  EXPECT_EQ(segments(path).size(), 4u) << "kept for the next start";
  auto r = OpenLog::read(path);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->writes.size(), 4u);
  EXPECT_EQ(opened(r->writes[0]).key.event_id, "jti-1");
  EXPECT_EQ(opened(r->writes[1]).key.event_id, "jti-3");
  EXPECT_EQ(opened(r->writes[3]).key.event_id, "jti-5");
  log.reset();
  tickets.clear();
  EXPECT_EQ(segments(path).size(), 1u) << "only the kept one";
}

TEST(OpenLog, ARetiredSegmentIsZeroedThenRenamedAndReused) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "log";
  auto log = OpenLog::create(path, {.lanes = 1, .segment_bytes = 1024});
  std::string one;
  OpenLog::encode(open_of(0), one);
  const int per_segment = static_cast<int>(1024 / one.size());
  std::vector<std::optional<OpenLog::Ticket>> tickets;
  int next = 0;
  auto append = [&] {
    auto t = log->append(open_of(next++));
    ASSERT_TRUE(t);
    tickets.emplace_back(*t);
  };
  for (int i = 0; i < 2 * per_segment + 1; ++i) append();  // two sealed segments, a third open
  ASSERT_EQ(log->segments_created(), 3u);
  const auto before = segments(path);
  ASSERT_EQ(before.size(), 3u);

  for (int i = 0; i < per_segment; ++i) tickets[static_cast<std::size_t>(i)].reset();
  EXPECT_EQ(segments(path), before) << "kept for reuse, under its old name";
  const std::string first = slurp(before[0]);
  EXPECT_EQ(first.size(), 1024u);
  EXPECT_EQ(first.find_first_not_of('\0'), std::string::npos) << "zeroed before it can be reused";
  auto r = OpenLog::read(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->writes.size(), static_cast<std::size_t>(per_segment + 1)) << "nothing stale";
  EXPECT_EQ(opened(r->writes[0]).key.event_id, "jti-" + std::to_string(per_segment));

  // Only one spare per lane: the second retired segment is removed.
  for (int i = per_segment; i < 2 * per_segment; ++i) tickets[static_cast<std::size_t>(i)].reset();
  EXPECT_EQ(segments(path).size(), 2u);

  while (log->segments_created() < 4) append();  // the open segment fills: the spare is taken
  EXPECT_EQ(log->segments_reused(), 1u);
  const auto after = segments(path);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_FALSE(fs::exists(before[0])) << "renamed";
  r = OpenLog::read(path);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->writes.size(), static_cast<std::size_t>(next - 2 * per_segment));
  EXPECT_EQ(opened(r->writes.back()).key.event_id, "jti-" + std::to_string(next - 1));

  tickets.clear();
  log.reset();
  EXPECT_TRUE(segments(path).empty()) << "spares go with the log";
}

TEST(OpenLog, SegmentsAreReadInCreationOrderAcrossRuns) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "log";
  fs::create_directories(path);
  std::string a, b, c;
  OpenLog::encode(open_of(1), a);
  OpenLog::encode(open_of(2), b);
  OpenLog::encode(open_of(3), c);
  spit(path / "900-10.log", c);  // numeric, not lexical, order
  spit(path / "900-9.log", b);
  spit(path / "800-0.log", a);
  spit(path / "notes.txt", "not a segment");
  auto r = OpenLog::read(path);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->writes.size(), 3u);
  EXPECT_EQ(opened(r->writes[0]).key.event_id, "jti-1");
  EXPECT_EQ(opened(r->writes[1]).key.event_id, "jti-2");
  EXPECT_EQ(opened(r->writes[2]).key.event_id, "jti-3");
  EXPECT_EQ(r->files.size(), 3u);

  auto missing = OpenLog::read(dir.path() / "none");
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->writes.empty());
  EXPECT_TRUE(missing->files.empty());
}

TEST(OpenLog, AnAppendThatCannotBeWrittenIsRefused) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "log";
  auto log = OpenLog::create(path, {.lanes = 1, .segment_bytes = 10});
  auto first = log->append(open_of(1));
  ASSERT_TRUE(first);
  fs::remove_all(path);  // the next segment cannot be created
  auto second = log->append(open_of(2));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), Error::store_unavailable);
  spit(dir.path() / "file", "x");
  EXPECT_THROW(OpenLog::create(dir.path() / "file" / "log"), std::runtime_error)
      << "a parent that is a file";
}

TEST(OpenLog, ADirectoryThatIsAFileIsRefusedAtStart) {
  testing::TempDir dir;
  spit(dir.path() / "log", "x");
  EXPECT_THROW(OpenLog::create(dir.path() / "log"), std::runtime_error);
}

}  // namespace
}  // namespace dynaseal::server

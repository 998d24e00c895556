#include "server/open_log.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>

namespace dynaseal::server {
namespace {

namespace fs = std::filesystem;

#ifdef MADV_POPULATE_WRITE
constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kPopulateWrite = 23;  // Linux 5.14; older kernels refuse it harmlessly
#endif
constexpr std::string_view kMagic = "DSOL";
// The first payload byte: what the record is (and the format's version).
constexpr std::uint8_t kOpen = 1;
constexpr std::uint8_t kFinalize = 2;
constexpr std::size_t kHeader = 4 + 4 + crypto_shorthash_BYTES;
constexpr std::size_t kMaxPayload = 1u << 20;
constexpr std::size_t kMaxShort = std::numeric_limits<std::uint16_t>::max();
// The checksum's key: fixed, since it only detects damage.
constexpr std::array<unsigned char, crypto_shorthash_KEYBYTES> kChecksumKey{};

template <class T>
void put(std::string& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xff));
  }
}

template <class T>
T get(std::string_view bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return static_cast<T>(v);
}

std::array<unsigned char, crypto_shorthash_BYTES> checksum(std::string_view payload) {
  std::array<unsigned char, crypto_shorthash_BYTES> sum{};
  crypto_shorthash(sum.data(), reinterpret_cast<const unsigned char*>(payload.data()),
                   payload.size(), kChecksumKey.data());
  return sum;
}

// Reads a payload field by field; any read past the end makes it invalid.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view p) : p_(p) {}
  template <class T>
  T number() {
    if (!ok_ || p_.size() - at_ < sizeof(T)) return fail<T>();
    T v = get<T>(p_, at_);
    at_ += sizeof(T);
    return v;
  }
  template <class Len>
  std::string text() {
    const auto n = static_cast<std::size_t>(number<Len>());
    if (!ok_ || p_.size() - at_ < n) return fail<std::string>();
    std::string s(p_.substr(at_, n));
    at_ += n;
    return s;
  }
  bool complete() const { return ok_ && at_ == p_.size(); }

 private:
  template <class T>
  T fail() {
    ok_ = false;
    return T{};
  }
  std::string_view p_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

// A record's fields: an Open (owner, interrupted body) or a Finalize (no owner, final body).
struct Fields {
  std::uint8_t kind = 0;
  std::int64_t now_ms = 0;
  const store::OutboxKey* key = nullptr;
  const std::string* owner = nullptr;
  const std::string* body = nullptr;
};

std::optional<Fields> fields_of(const store::OutboxWrite& w) {
  static const std::string kNoOwner;
  if (const auto* open = std::get_if<store::outbox::Open>(&w)) {
    return Fields{kOpen, open->now_ms, &open->key, &open->owner, &open->interrupted_body};
  }
  if (const auto* fin = std::get_if<store::outbox::Finalize>(&w)) {
    return Fields{kFinalize, fin->now_ms, &fin->key, &kNoOwner, &fin->body};
  }
  return std::nullopt;
}

std::optional<store::OutboxWrite> parse_payload(std::string_view payload) {
  PayloadReader r(payload);
  const auto kind = r.number<std::uint8_t>();
  const auto now_ms = r.number<std::int64_t>();
  store::OutboxKey key;
  key.use = r.number<std::int64_t>();
  key.iss = r.text<std::uint16_t>();
  key.event_id = r.text<std::uint16_t>();
  std::string owner = r.text<std::uint16_t>();
  std::string body = r.text<std::uint32_t>();
  if (!r.complete() || key.use < 1 || key.iss.empty() || key.event_id.empty()) {
    return std::nullopt;
  }
  if (kind == kOpen && !owner.empty()) {
    return store::outbox::Open{std::move(key), std::move(owner), std::move(body), now_ms};
  }
  if (kind == kFinalize && owner.empty()) {
    return store::outbox::Finalize{std::move(key), std::move(body), now_ms};
  }
  return std::nullopt;
}

// The length of the frame at the start of `bytes` if it is whole and checks out, else 0.
std::size_t valid_frame(std::string_view bytes, store::OutboxWrite& out) {
  if (bytes.size() < kHeader || bytes.substr(0, 4) != kMagic) return 0;
  const auto length = static_cast<std::size_t>(get<std::uint32_t>(bytes, 4));
  if (length > kMaxPayload || bytes.size() - kHeader < length) return 0;
  const std::string_view payload = bytes.substr(kHeader, length);
  const auto sum = checksum(payload);
  if (std::memcmp(sum.data(), bytes.data() + 8, sum.size()) != 0) return 0;
  auto write = parse_payload(payload);
  if (!write) return 0;
  out = std::move(*write);
  return kHeader + length;
}

}  // namespace

// Retired segments of the usual size, zeroed and still mapped, waiting for a lane to reuse.
struct OpenLog::Spares {
  struct Spare {
    fs::path path;
    char* map = nullptr;
    std::size_t capacity = 0;
  };
  std::mutex mutex;
  std::size_t limit = 0;
  std::vector<Spare> list;
  std::atomic<std::size_t> reused{0};

  ~Spares() {
    for (Spare& s : list) drop(s);
  }
  static void drop(Spare& s) {
    ::munmap(s.map, s.capacity);
    std::error_code ec;
    fs::remove(s.path, ec);
    if (ec) spdlog::warn("open log: cannot remove {}: {}", s.path.string(), ec.message());
  }
  // Takes a retired segment whose first `used` bytes were written; false when there is no
  // room (the caller removes it). Zeroed before it can be found.
  bool offer(const fs::path& path, char* map, std::size_t capacity, std::size_t used) {
    {
      std::lock_guard lock(mutex);
      if (list.size() >= limit) return false;
    }
    std::memset(map, 0, used);  // the rest is zeros already
    std::lock_guard lock(mutex);
    if (list.size() >= limit) return false;
    list.push_back({path, map, capacity});
    return true;
  }
  std::optional<Spare> take() {
    std::lock_guard lock(mutex);
    if (list.empty()) return std::nullopt;
    Spare s = std::move(list.back());
    list.pop_back();
    return s;
  }
};

struct OpenLog::Segment {
  fs::path path;
  char* map = nullptr;  // the whole file, shared: a store is in the page cache at once
  std::size_t capacity = 0;
  std::size_t bytes = 0;
  std::atomic<bool> keep{false};
  std::shared_ptr<Spares> spares;  // where it goes when retired; none: removed

  ~Segment() {
    if (keep.load(std::memory_order_relaxed)) {
      if (map != nullptr) ::munmap(map, capacity);
      spdlog::warn("open log: keeping {}: it holds records the database does not have yet",
                   path.string());
      return;
    }
    if (map != nullptr && spares && spares->offer(path, map, capacity, bytes)) return;
    if (map != nullptr) ::munmap(map, capacity);
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) spdlog::warn("open log: cannot remove {}: {}", path.string(), ec.message());
  }
};

struct OpenLog::Lane {
  std::mutex mutex;
  std::shared_ptr<Segment> segment;  // the one appended to; sealed when replaced
  std::string frame;                 // reused buffer
};

void OpenLog::Ticket::keep() const { segment_->keep.store(true, std::memory_order_relaxed); }

OpenLog::OpenLog(fs::path dir, OpenLogOptions options)
    : dir_(std::move(dir)),
      options_(options),
      started_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()),
      spares_(std::make_shared<Spares>()) {
  options_.lanes = std::max<std::size_t>(options_.lanes, 1);
  spares_->limit = options_.lanes;
  for (std::size_t i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
}

OpenLog::~OpenLog() = default;

std::size_t OpenLog::segments_reused() const {
  return spares_->reused.load(std::memory_order_relaxed);
}

std::unique_ptr<OpenLog> OpenLog::create(fs::path dir, OpenLogOptions options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw std::runtime_error("open log: cannot create directory " + dir.string() + ": " +
                             (ec ? ec.message() : "not a directory"));
  }
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return std::unique_ptr<OpenLog>(new OpenLog(std::move(dir), options));
}

OpenLog::Lane& OpenLog::lane() {
  // Each thread keeps one lane of every log: worker threads do not share a lock.
  static std::atomic<std::size_t> next_thread{0};
  thread_local const std::size_t thread_index = next_thread.fetch_add(1);
  return *lanes_[thread_index % lanes_.size()];
}

// A segment is allocated whole (so that a store into the mapping can never meet a full disk,
// which would be a SIGBUS) and mapped shared: appending is a copy into the page cache, which
// survives the process like a write(2) would, without a system call.
Result<std::shared_ptr<OpenLog::Segment>> OpenLog::new_segment(std::size_t capacity) {
  const std::size_t n = created_.fetch_add(1, std::memory_order_relaxed);
  auto segment = std::make_shared<Segment>();
  segment->path = dir_ / (std::to_string(started_ms_) + "-" + std::to_string(n) + ".log");
  if (capacity == options_.segment_bytes) {
    segment->spares = spares_;
    while (auto spare = spares_->take()) {
      if (::rename(spare->path.c_str(), segment->path.c_str()) != 0) {
        spdlog::warn("open log: cannot rename {}: {}", spare->path.string(), std::strerror(errno));
        Spares::drop(*spare);
        continue;
      }
      segment->map = spare->map;
      segment->capacity = spare->capacity;
      spares_->reused.fetch_add(1, std::memory_order_relaxed);
      return segment;
    }
  }
  segment->keep = true;  // until it is ours whole
  auto fail = [&](const char* what, int error) {
    spdlog::error("open log: cannot {} {}: {}", what, segment->path.string(), std::strerror(error));
    return Unexpected(Error::store_unavailable);
  };
  const int fd =
      ::open(segment->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (fd < 0) return fail("create", errno);
  segment->keep = false;
  const auto length = static_cast<off_t>(capacity);
  if (const int error = ::posix_fallocate(fd, 0, length); error != 0) {
    ::close(fd);
    return fail("allocate", error);
  }
  void* map = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_error = errno;
  ::close(fd);  // the mapping keeps the file
  if (map == MAP_FAILED) return fail("map", map_error);
  segment->map = static_cast<char*>(map);
  segment->capacity = capacity;
  // Fault every page in now, writable, rather than one by one on the request path (the first
  // write fault of a fresh mapping alone takes about 0.1 ms). Before Linux 5.14 this is EINVAL
  // and the pages fault in as they are written.
  (void)::madvise(map, capacity, kPopulateWrite);
  return segment;
}

Result<OpenLog::Ticket> OpenLog::append(const store::OutboxWrite& write) {
  Lane& l = lane();
  std::lock_guard lock(l.mutex);
  l.frame.clear();
  encode(write, l.frame);
  if (l.frame.empty()) return Unexpected(Error::internal);
  if (!l.segment || l.segment->capacity - l.segment->bytes < l.frame.size()) {
    auto fresh = new_segment(std::max(options_.segment_bytes, l.frame.size()));
    if (!fresh) return Unexpected(fresh.error());
    l.segment = std::move(*fresh);  // the old one goes with its last ticket
  }
  Segment& s = *l.segment;
  std::memcpy(s.map + s.bytes, l.frame.data(), l.frame.size());
  s.bytes += l.frame.size();
  return Ticket(l.segment);
}

void OpenLog::encode(const store::OutboxWrite& write, std::string& out) {
  const auto f = fields_of(write);
  if (!f) return;
  const store::OutboxKey& k = *f->key;
  if (k.iss.size() > kMaxShort || k.event_id.size() > kMaxShort || f->owner->size() > kMaxShort) {
    return;
  }
  const std::size_t payload =
      1 + 8 + 8 + 3 * 2 + 4 + k.iss.size() + k.event_id.size() + f->owner->size() + f->body->size();
  if (payload > kMaxPayload) return;
  const std::size_t start = out.size();
  out.reserve(start + kHeader + payload);
  out.append(kMagic);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(payload));
  out.append(crypto_shorthash_BYTES, '\0');  // the checksum, below
  put<std::uint8_t>(out, f->kind);
  put<std::int64_t>(out, f->now_ms);
  put<std::int64_t>(out, k.use);
  for (const std::string* s : {&k.iss, &k.event_id, f->owner}) {
    put<std::uint16_t>(out, static_cast<std::uint16_t>(s->size()));
    out.append(*s);
  }
  put<std::uint32_t>(out, static_cast<std::uint32_t>(f->body->size()));
  out.append(*f->body);
  const auto sum = checksum(std::string_view(out).substr(start + kHeader));
  std::memcpy(out.data() + start + 8, sum.data(), sum.size());
}

OpenLog::Recovered OpenLog::decode(std::string_view bytes) {
  Recovered r;
  std::size_t at = 0;
  while (at < bytes.size()) {
    // A segment is allocated whole: the zeros after its last frame are room, not damage.
    if (bytes.find_first_not_of('\0', at) == std::string_view::npos) break;
    store::OutboxWrite write;
    if (const std::size_t n = valid_frame(bytes.substr(at), write); n > 0) {
      r.writes.push_back(std::move(write));
      at += n;
      continue;
    }
    // Damaged: skip to the next frame that checks out (or to the end).
    std::size_t next = bytes.find(kMagic, at + 1);
    while (next != std::string_view::npos && valid_frame(bytes.substr(next), write) == 0) {
      next = bytes.find(kMagic, next + 1);
    }
    const std::size_t end = next == std::string_view::npos ? bytes.size() : next;
    r.damaged_bytes += end - at;
    at = end;
  }
  return r;
}

Result<OpenLog::Recovered> OpenLog::read(const fs::path& dir) {
  Recovered all;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return all;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".log") files.push_back(it->path());
  }
  if (ec) {
    spdlog::error("open log: cannot list {}: {}", dir.string(), ec.message());
    return Unexpected(Error::store_unavailable);
  }
  // Creation order: <start ms>-<n>, compared as numbers.
  auto order = [](const fs::path& p) {
    const std::string stem = p.stem().string();
    const auto dash = stem.find('-');
    auto number = [](std::string_view s) {
      std::uint64_t v = 0;
      for (char c : s) {
        if (c < '0' || c > '9' || v > std::numeric_limits<std::uint64_t>::max() / 10 - 1) {
          return std::numeric_limits<std::uint64_t>::max();
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      return v;
    };
    if (dash == std::string::npos) return std::pair{number(stem), std::uint64_t{0}};
    return std::pair{number(std::string_view(stem).substr(0, dash)),
                     number(std::string_view(stem).substr(dash + 1))};
  };
  std::sort(files.begin(), files.end(), [&](const fs::path& a, const fs::path& b) {
    return std::pair{order(a), a.string()} < std::pair{order(b), b.string()};
  });
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      spdlog::error("open log: cannot read {}", file.string());
      return Unexpected(Error::store_unavailable);
    }
    Recovered one = decode(bytes);
    if (one.damaged_bytes > 0) {
      spdlog::warn("open log: {}: skipped {} damaged bytes", file.string(), one.damaged_bytes);
    }
    for (auto& w : one.writes) all.writes.push_back(std::move(w));
    all.damaged_bytes += one.damaged_bytes;
    all.files.push_back(file);
  }
  return all;
}

}  // namespace dynaseal::server

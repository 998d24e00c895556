#include "store/redis_connection.hpp"

#include <algorithm>
#include <string_view>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

namespace dynaseal::store {
namespace {

constexpr std::size_t kMaxArgs = 16;

// Appends the RESP encoding of `args` to `out`; false when there are too many or hiredis fails.
bool encode(std::string& out, std::span<const std::string> args) {
  if (args.empty() || args.size() > kMaxArgs) return false;
  std::array<const char*, kMaxArgs> argv{};
  std::array<std::size_t, kMaxArgs> lengths{};
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lengths[i] = args[i].size();
  }
  char* command = nullptr;
  const int size =
      redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (size < 0 || command == nullptr) return false;
  out.append(command, static_cast<std::size_t>(size));
  redisFreeCommand(command);
  return true;
}

std::string_view text_of(const redisReply& reply) {
  if (reply.str == nullptr) return {};
  return {reply.str, reply.len};
}

Result<RedisReply> unavailable() { return Unexpected(Error::store_unavailable); }

}  // namespace

void RedisReplyFree::operator()(redisReply* reply) const { freeReplyObject(reply); }

RedisConnection::RedisConnection(asio::any_io_executor executor,
                                 std::shared_ptr<RedisShared> shared)
    : RedisConnection(executor, shared, shared->options.url.host, shared->options.url.port) {}

RedisConnection::RedisConnection(asio::any_io_executor executor,
                                 std::shared_ptr<RedisShared> shared, std::string host,
                                 std::uint16_t port)
    : executor_(executor),
      shared_(std::move(shared)),
      host_(std::move(host)),
      port_(port),
      socket_(executor),
      resolver_(executor),
      timer_(executor),
      backoff_(shared_->options.min_backoff),
      reader_(redisReaderCreate()) {}

RedisConnection::~RedisConnection() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

bool RedisConnection::available() const {
  return state_ != State::closed || Clock::now() >= retry_at_;
}

asio::awaitable<Result<RedisReply>> RedisConnection::call(std::span<const std::string> args,
                                                          Clock::time_point deadline, bool asking) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<RedisReply>)>(
      [self = shared_from_this(), args, deadline, asking](auto handler) {
        self->start(args, deadline, asking, Done(std::move(handler)));
      },
      asio::use_awaitable);
}

void RedisConnection::start(std::span<const std::string> args, Clock::time_point deadline,
                            bool asking, Done done) {
  if (state_ == State::closed) {
    if (Clock::now() < retry_at_ || reader_ == nullptr) {
      complete_later(std::move(done), unavailable());
      return;
    }
    connect();
  }
  const std::size_t mark = out_.size();
  if (asking) {
    static const std::string kAsking[] = {"ASKING"};
    encode(out_, kAsking);
  }
  if (!encode(out_, args)) {
    out_.resize(mark);
    complete_later(std::move(done), Unexpected(Error::internal));
    return;
  }
  if (asking) pending_.push_back(Pending{Done([](Result<RedisReply>) {}), deadline});
  pending_.push_back(Pending{std::move(done), deadline});
  watch(deadline);
  write_more();
}

void RedisConnection::complete_later(Done done, Result<RedisReply> result) {
  asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void RedisConnection::connect() {
  const RedisUrl& url = shared_->options.url;
  state_ = State::connecting;
  hello_.clear();
  handshake_left_ = 0;
  if (url.password) {
    const std::string auth[] = {"AUTH", *url.password};
    handshake_left_ += encode(hello_, auth) ? 1 : 0;
  }
  if (url.db != 0) {
    const std::string select[] = {"SELECT", std::to_string(url.db)};
    handshake_left_ += encode(hello_, select) ? 1 : 0;
  }
  const Clock::time_point deadline = Clock::now() + shared_->options.timeout;
  for (std::size_t i = 0; i < handshake_left_; ++i) pending_.push_back(Pending{{}, deadline});
  watch(deadline);

  auto self = shared_from_this();
  const std::uint64_t epoch = epoch_;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host_, ec);
  if (!ec) {
    socket_.async_connect({address, port_}, [self, epoch](const boost::system::error_code& e) {
      self->on_connected(epoch, e);
    });
    return;
  }
  resolver_.async_resolve(host_, std::to_string(port_),
                          [self, epoch](const boost::system::error_code& e,
                                        const asio::ip::tcp::resolver::results_type& found) {
                            if (epoch != self->epoch_) return;
                            if (e) return self->fail("cannot resolve the host: " + e.message());
                            asio::async_connect(self->socket_, found,
                                                [self, epoch](const boost::system::error_code& e2,
                                                              const asio::ip::tcp::endpoint&) {
                                                  self->on_connected(epoch, e2);
                                                });
                          });
}

void RedisConnection::on_connected(std::uint64_t epoch, const boost::system::error_code& ec) {
  if (epoch != epoch_) return;
  if (ec) return fail("cannot connect: " + ec.message());
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (handshake_left_ == 0) {
    state_ = State::ready;
    shared_->set_healthy(true);
    backoff_ = shared_->options.min_backoff;
    write_more();
  } else {
    // AUTH and SELECT alone; the calls' commands wait in out_ until both answered OK.
    state_ = State::handshake;
    writing_.swap(hello_);
    write_busy_ = true;
    asio::async_write(
        socket_, asio::buffer(writing_),
        [self = shared_from_this(), epoch](const boost::system::error_code& e, std::size_t) {
          if (epoch != self->epoch_) return;
          if (e) return self->fail("write: " + e.message());
          self->write_busy_ = false;
          self->writing_.clear();
          self->write_more();
        });
  }
  read_more();
}

void RedisConnection::write_more() {
  if (state_ != State::ready || write_busy_ || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_busy_ = true;
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& e, std::size_t) {
        if (epoch != self->epoch_) return;
        if (e) return self->fail("write: " + e.message());
        self->write_busy_ = false;
        self->writing_.clear();
        self->write_more();
      });
}

void RedisConnection::read_more() {
  if (read_busy_) return;
  read_busy_ = true;
  socket_.async_read_some(asio::buffer(in_),
                          [self = shared_from_this(), epoch = epoch_](
                              const boost::system::error_code& e, std::size_t n) {
                            if (epoch != self->epoch_) return;
                            self->read_busy_ = false;
                            self->on_read(e, n);
                          });
}

void RedisConnection::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (ec == asio::error::eof) return fail("Redis closed the connection");
  if (ec) return fail("read: " + ec.message());
  if (redisReaderFeed(reader_, in_.data(), n) != REDIS_OK) return fail("out of memory");
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      return fail(std::string("not a RESP reply: ") + reader_->errstr);
    }
    if (reply == nullptr) break;
    if (!on_reply(RedisReply(static_cast<redisReply*>(reply)))) return;
  }
  read_more();
}

bool RedisConnection::on_reply(RedisReply reply) {
  if (pending_.empty()) {
    fail("a reply to no command");
    return false;
  }
  Pending next = std::move(pending_.front());
  pending_.pop_front();
  if (!next.done) {  // AUTH or SELECT
    if (reply->type != REDIS_REPLY_STATUS || text_of(*reply) != "OK") {
      fail("AUTH or SELECT refused: " + std::string(text_of(*reply)));
      return false;
    }
    if (--handshake_left_ == 0) {
      state_ = State::ready;
      shared_->set_healthy(true);
      backoff_ = shared_->options.min_backoff;
      write_more();
    }
    return true;
  }
  if (reported_down_) {
    spdlog::info("redis {}: answering again", shared_->options.url.display());
    reported_down_ = false;
  }
  // On this thread, the awaiting coroutine resumes right here; it may queue more calls, which
  // only append to pending_ and out_.
  const std::uint64_t epoch = epoch_;
  next.done(std::move(reply));
  return epoch == epoch_;
}

void RedisConnection::watch(Clock::time_point deadline) {
  if (timer_armed_ && deadline >= timer_at_) return;
  timer_armed_ = true;
  timer_at_ = deadline;
  timer_.expires_at(deadline);  // cancels an earlier wait: it completes as operation_aborted
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e == asio::error::operation_aborted) return;
    self->on_timer();
  });
}

void RedisConnection::on_timer() {
  timer_armed_ = false;
  if (pending_.empty()) return;
  auto earliest = Clock::time_point::max();
  for (const Pending& p : pending_) earliest = std::min(earliest, p.deadline);
  if (earliest <= Clock::now()) {
    return fail("no reply within " + std::to_string(shared_->options.timeout.count()) + " ms");
  }
  watch(earliest);
}

void RedisConnection::close() {
  fail("closed", false);
  timer_.cancel();
}

void RedisConnection::fail(std::string_view why, bool back_off) {
  ++epoch_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  state_ = State::closed;
  hello_.clear();
  out_.clear();
  writing_.clear();
  write_busy_ = read_busy_ = false;
  handshake_left_ = 0;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreate();  // a fresh parser: the old one may hold half a reply
  if (back_off) {
    retry_at_ = Clock::now() + backoff_;
    const auto wait = backoff_;
    backoff_ = std::min(backoff_ * 2, shared_->options.max_backoff);
    shared_->set_healthy(false);
    const std::string where = shared_->options.url.display();
    if (!reported_down_) {
      spdlog::warn("redis {}: {}; failing calls, reconnecting in {} ms", where, why, wait.count());
    } else {
      spdlog::debug("redis {}: {}; reconnecting in {} ms", where, why, wait.count());
    }
    reported_down_ = true;
  }
  // Posted, not run here: the connection is consistent again before any caller resumes.
  std::deque<Pending> failed;
  failed.swap(pending_);
  for (Pending& p : failed) {
    if (p.done) complete_later(std::move(p.done), unavailable());
  }
}

}  // namespace dynaseal::store

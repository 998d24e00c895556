// Runs one awaitable to completion on an io_context, from a plain test body.
//
//   asio::io_context context;
//   auto grant = run_awaitable(context, store.consume(request, now));
#pragma once

#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace dynaseal::testing {

// Runs handlers of `context` one at a time until `op` completes (the context may hold other
// work, e.g. a Redis connection's pending read, so it is never run until it runs out).
template <class T>
T run_awaitable(boost::asio::io_context& context, boost::asio::awaitable<T> op) {
  std::optional<T> result;
  std::exception_ptr failure;
  boost::asio::co_spawn(context, std::move(op), [&](std::exception_ptr e, T value) {
    failure = e;
    if (!e) result.emplace(std::move(value));
  });
  while (!result && !failure) {
    if (context.stopped()) context.restart();
    if (context.run_one() == 0) throw std::logic_error("the io_context ran out of work");
  }
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

}  // namespace dynaseal::testing

// Coroutines: Task<T>, the awaitable every asynchronous call of the gateway returns, and OffLoop,
// which runs blocking or CPU-heavy work on a thread pool and resumes the calling coroutine on its
// own executor with the result, so an I/O thread keeps serving other connections meanwhile.
//
//   Status st = co_await OffLoop(pool, [&] { return store.Checkpoint(...); });
//
// `fn` may capture the caller's locals by reference: the caller stays suspended until it returns.
// An exception thrown by `fn` is rethrown in the caller.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <type_traits>
#include <utility>

namespace layer {

template <typename T>
using Task = boost::asio::awaitable<T>;

template <typename Fn>
Task<std::invoke_result_t<Fn&>> OffLoop(boost::asio::thread_pool& pool, Fn fn) {
  using R = std::invoke_result_t<Fn&>;
  static_assert(!std::is_void_v<R>, "OffLoop needs a result");
  // co_spawn needs a default-constructible result; Status and Result<T> are not.
  std::optional<R> out = co_await boost::asio::co_spawn(
      pool.get_executor(), [&fn]() -> Task<std::optional<R>> { co_return fn(); },
      boost::asio::use_awaitable);
  co_return std::move(*out);
}

}  // namespace layer

// The allocator of every Request's and Response's header fields (http/message.h).
//
// Beast allocates each header field as its own block (name, value and the links of its list and
// set, typically 60-200 bytes), so a proxied request allocates and frees a dozen or more small
// blocks: the client's request, the request sent upstream, the upstream's answer and the answer
// relayed to the client. With glibc's malloc, more than 7 frees of one size class per thread in a
// row leave its per-thread cache for the arena's slower lists. FieldAllocator keeps freed blocks
// of up to 512 bytes in per-thread free lists by size class (64, 128, 256, 512 bytes) instead,
// so a field costs a pop and a push; larger blocks go to operator new and delete.
//
// Thread safety: the allocator is stateless; each thread has its own free lists. A block may be
// freed on another thread than the one that allocated it (a message handed between threads): it
// joins the freeing thread's list, whose length is capped (kMaxFree per class), the surplus going
// back to operator delete. A thread's lists are released when it exits. Sanitizer builds use
// operator new and delete directly, so that they check every block.
#pragma once

#include <cstddef>
#include <new>

#include "common/sanitizers.h"

namespace layer::http {

namespace field_pool {

inline constexpr bool kEnabled = !kSanitizerBuild;

inline constexpr size_t kClasses = 4;     // 64, 128, 256, 512 bytes
inline constexpr size_t kMaxBlock = 512;  // larger blocks are not pooled
inline constexpr size_t kMaxFree = 256;   // blocks kept per class per thread

// The size class of a block of `bytes` (<= kMaxBlock).
inline size_t ClassOf(size_t bytes) {
  return bytes <= 64 ? 0 : bytes <= 128 ? 1 : bytes <= 256 ? 2 : 3;
}
inline size_t ClassBytes(size_t c) { return size_t{64} << c; }

struct FreeBlock {
  FreeBlock* next;
};

// One thread's free lists. Trivially constructible; its destructor returns the blocks and marks
// the lists closed, so a block freed later during the thread's exit goes to operator delete.
struct Lists {
  FreeBlock* head[kClasses] = {};
  size_t count[kClasses] = {};
  bool closed = false;
  ~Lists() {
    closed = true;
    for (size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = head[c]) {
        head[c] = b->next;
        ::operator delete(b);
      }
      count[c] = 0;
    }
  }
};

inline Lists& ThreadLists() {
  thread_local Lists lists;
  return lists;
}

inline void* Allocate(size_t bytes) {
  if (!kEnabled || bytes > kMaxBlock) return ::operator new(bytes);
  const size_t c = ClassOf(bytes);
  Lists& l = ThreadLists();
  if (FreeBlock* b = l.head[c]) {
    l.head[c] = b->next;
    --l.count[c];
    return b;
  }
  return ::operator new(ClassBytes(c));
}

inline void Free(void* p, size_t bytes) noexcept {
  if (!kEnabled || bytes > kMaxBlock) {
    ::operator delete(p);
    return;
  }
  const size_t c = ClassOf(bytes);
  Lists& l = ThreadLists();
  if (l.closed || l.count[c] >= kMaxFree) {
    ::operator delete(p);
    return;
  }
  FreeBlock* b = static_cast<FreeBlock*>(p);
  b->next = l.head[c];
  l.head[c] = b;
  ++l.count[c];
}

}  // namespace field_pool

template <typename T>
struct FieldAllocator {
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "blocks come from operator new");

  FieldAllocator() noexcept = default;
  template <typename U>
  FieldAllocator(const FieldAllocator<U>&) noexcept {}

  T* allocate(size_t n) { return static_cast<T*>(field_pool::Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { field_pool::Free(p, n * sizeof(T)); }

  template <typename U>
  bool operator==(const FieldAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const FieldAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace layer::http

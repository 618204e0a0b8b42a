// Whether this build runs under a sanitizer (ASan, TSan or MSan; GCC's or clang's spelling). Code
// that replaces or tunes the allocator steps aside then: the sanitizer's allocator must see every
// block (http/field_allocator.h, common/malloc_cache.h).
#pragma once

namespace layer {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace layer

#include "common/thread.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

namespace layer {
namespace {

// The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc 2.36 has no wrapper.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

}  // namespace

void NameCurrentThread(std::string_view name) {
  std::string n(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), n.c_str());
}

bool SetCurrentThreadSlice(std::chrono::microseconds slice) {
  if (slice.count() <= 0) return true;
  return SetThreadSlice(0, slice);
}

bool SetThreadSlice(pid_t tid, std::chrono::microseconds slice) {
#ifdef SYS_sched_setattr
  SchedAttr attr{};
  attr.size = sizeof(attr);
  if (syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0) != 0) return false;
  if (attr.sched_policy != SCHED_OTHER) return true;  // only the fair class has slices
  attr.size = sizeof(attr);
  attr.sched_flags = 0;
  // Zero asks for the kernel's default slice.
  attr.sched_runtime = slice.count() <= 0
                           ? 0
                           : static_cast<uint64_t>(
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(slice)
                                     .count());
  return syscall(SYS_sched_setattr, tid, &attr, 0) == 0;
#else
  (void)tid;
  (void)slice;
  return true;
#endif
}

pid_t CurrentThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int PinCurrentThread(int index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  const int n = CPU_COUNT(&allowed);
  if (n <= 0 || index < 0) return -1;
  int want = index % n;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (want-- > 0) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0 ? cpu : -1;
  }
  return -1;
}

bool PerThreadSlicesSupported() {
  utsname u{};
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return (major > 6 || (major == 6 && minor >= 12)) && CurrentThreadSlice().count() > 0;
}

namespace {

std::chrono::nanoseconds SliceIn(const std::string& sched_file) {
  std::ifstream in(sched_file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("se.slice", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    return std::chrono::nanoseconds(std::strtoll(line.c_str() + colon + 1, nullptr, 10));
  }
  return std::chrono::nanoseconds(-1);
}

}  // namespace

std::chrono::nanoseconds CurrentThreadSlice() { return SliceIn("/proc/thread-self/sched"); }

std::chrono::nanoseconds ThreadSlice(pid_t tid) {
  return SliceIn("/proc/self/task/" + std::to_string(tid) + "/sched");
}

RequestSlices::RequestSlices(std::chrono::microseconds slice) : slice_(slice) {}

void RequestSlices::ApplyLocked(pid_t tid) const {
  if (slice_.count() <= 0) return;
  (void)SetThreadSlice(tid, busy_ > 0 ? slice_ : std::chrono::microseconds(0));
}

RequestSlices::Enrollment RequestSlices::EnrollCurrentThread() {
  const pid_t tid = CurrentThreadId();
  std::lock_guard lock(mu_);
  tids_.push_back(tid);
  if (busy_ > 0) ApplyLocked(tid);
  return Enrollment(this, tid);
}

void RequestSlices::Leave(pid_t tid) {
  std::lock_guard lock(mu_);
  for (auto it = tids_.begin(); it != tids_.end(); ++it) {
    if (*it == tid) {
      tids_.erase(it);
      break;
    }
  }
}

RequestSlices::BackgroundWork RequestSlices::Background() {
  std::lock_guard lock(mu_);
  if (busy_++ == 0) {
    for (pid_t tid : tids_) ApplyLocked(tid);
  }
  return BackgroundWork(this);
}

void RequestSlices::Release() {
  std::lock_guard lock(mu_);
  if (--busy_ == 0) {
    for (pid_t tid : tids_) ApplyLocked(tid);
  }
}

bool RequestSlices::short_now() const {
  std::lock_guard lock(mu_);
  return busy_ > 0 && slice_.count() > 0;
}

size_t RequestSlices::enrolled() const {
  std::lock_guard lock(mu_);
  return tids_.size();
}

RequestSlices::Enrollment::Enrollment(Enrollment&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), tid_(o.tid_) {}

RequestSlices::Enrollment& RequestSlices::Enrollment::operator=(Enrollment&& o) noexcept {
  if (this != &o) {
    if (owner_) owner_->Leave(tid_);
    owner_ = std::exchange(o.owner_, nullptr);
    tid_ = o.tid_;
  }
  return *this;
}

RequestSlices::Enrollment::~Enrollment() {
  if (owner_) owner_->Leave(tid_);
}

RequestSlices::BackgroundWork::BackgroundWork(BackgroundWork&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)) {}

RequestSlices::BackgroundWork& RequestSlices::BackgroundWork::operator=(
    BackgroundWork&& o) noexcept {
  if (this != &o) {
    if (owner_) owner_->Release();
    owner_ = std::exchange(o.owner_, nullptr);
  }
  return *this;
}

RequestSlices::BackgroundWork::~BackgroundWork() {
  if (owner_) owner_->Release();
}

}  // namespace layer

// Worker threads for pool.h: chunks are claimed from a generation-tagged counter, and the caller waits for
// the chunks, not the workers, so a descheduled worker delays nothing. Idle workers spin briefly, then sleep.
#include "pool.h"

#ifdef __linux__
#include <sched.h>
#endif

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace {

const int kSpins = 3000;  // pause instructions before sleeping: tens of microseconds (ops come back to back)
const uint64_t kItemBits = 40;  // claim = generation << kItemBits | next item
const uint64_t kItemMask = (1ull << kItemBits) - 1;

void pause() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

struct Job {
  std::atomic<TaskFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<long> n{0}, grain{1};
  std::atomic<uint64_t> claim{0};
  std::atomic<long> done{0};  // items finished
};

struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
};

struct State {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable start_cv, done_cv;
  std::atomic<uint64_t> generation{0};  // of the latest job, kept below 2^24
  std::atomic<bool> stopping{false};
  Job job;
  std::vector<Scratch> scratch1, scratch2;
};

// Never destroyed: at exit() (process.exit) the destructor of a condition variable that workers
// wait on would block forever.
State& st = *new State;

// Runs chunks of job `gen` until none is left (or a newer job has replaced it).
void work(int tid, uint64_t gen) {
  Job& job = st.job;
  for (;;) {
    uint64_t c = job.claim.load(std::memory_order_acquire);
    if (c >> kItemBits != gen) return;
    long b = (long)(c & kItemMask), n = job.n.load(std::memory_order_relaxed), grain = job.grain.load(std::memory_order_relaxed);
    if (b >= n) return;
    // A successful claim proves the fields read above belong to job `gen`: it cannot end while items are unclaimed.
    TaskFn fn = job.fn.load(std::memory_order_relaxed);
    void* ctx = job.ctx.load(std::memory_order_relaxed);
    if (!job.claim.compare_exchange_weak(c, c + grain, std::memory_order_acq_rel)) continue;
    long e = b + grain < n ? b + grain : n;
    fn(ctx, b, e, tid);
    if (job.done.fetch_add(e - b, std::memory_order_acq_rel) + (e - b) == n) {
      std::lock_guard<std::mutex> lk(st.mu);
      st.done_cv.notify_one();
    }
  }
}

void worker_main(int tid) {
  uint64_t seen = st.generation.load();
  for (;;) {
    for (int i = 0; i < kSpins && st.generation.load(std::memory_order_acquire) == seen && !st.stopping; i++) pause();
    if (st.generation.load(std::memory_order_acquire) == seen && !st.stopping) {
      std::unique_lock<std::mutex> lk(st.mu);
      st.start_cv.wait(lk, [&] { return st.generation != seen || st.stopping; });
    }
    if (st.stopping) return;
    seen = st.generation.load(std::memory_order_acquire);
    work(tid, seen);
  }
}

int cpus_available() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? (int)n : 1;
}

float* grow(std::vector<Scratch>& pool, int tid, size_t n) {
  Scratch& s = pool[tid];
  if (s.cap < n) {
    free(s.p);
    size_t bytes = (n * sizeof(float) + 127) / 128 * 128;
    s.p = (float*)aligned_alloc(128, bytes);
    s.cap = s.p ? n : 0;
  }
  return s.p;
}

}  // namespace

void pool_stop() {
  {
    std::lock_guard<std::mutex> lk(st.mu);
    st.stopping = true;
  }
  st.start_cv.notify_all();
  for (auto& w : st.workers) w.join();
  st.workers.clear();
  st.stopping = false;
}

void pool_set_threads(int n) {
  if (n <= 0) n = cpus_available();
  pool_stop();
  for (auto* pool : {&st.scratch1, &st.scratch2}) {
    for (auto& s : *pool) free(s.p);
    pool->assign(n, Scratch{});
  }
  for (int t = 1; t < n; t++) st.workers.emplace_back(worker_main, t);
}

int pool_threads() { return (int)st.workers.size() + 1; }

long pool_grain(long n, long work) {
  long g = n / (pool_threads() * 4);
  long least = (kMinTaskWork + work - 1) / (work > 0 ? work : 1);
  return g > least ? g : least;
}

void pool_run(long n, long grain, TaskFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (st.workers.empty() || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  Job& job = st.job;
  uint64_t gen = (st.generation.load() + 1) & 0xffffff;
  job.fn.store(fn, std::memory_order_relaxed);
  job.ctx.store(ctx, std::memory_order_relaxed);
  job.n.store(n, std::memory_order_relaxed);
  job.grain.store(grain, std::memory_order_relaxed);
  job.done.store(0, std::memory_order_relaxed);
  job.claim.store(gen << kItemBits, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(st.mu);
    st.generation.store(gen, std::memory_order_release);
  }
  st.start_cv.notify_all();
  work(0, gen);
  for (int i = 0; i < kSpins && job.done.load(std::memory_order_acquire) != n; i++) pause();
  std::unique_lock<std::mutex> lk(st.mu);
  st.done_cv.wait(lk, [&] { return job.done.load(std::memory_order_acquire) == n; });
}

float* pool_scratch(int tid, size_t n) { return grow(st.scratch1, tid, n); }
float* pool_scratch2(int tid, size_t n) { return grow(st.scratch2, tid, n); }

// Worker threads for pool.h: chunks come from an atomic counter; between loops workers spin for tens of
// microseconds (ops come back to back), then sleep on a condition variable. The caller works too.
#include "pool.h"

#ifdef __linux__
#include <sched.h>
#endif

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Job {
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  long n = 0;
  long grain = 1;
  std::atomic<long> next{0};
};

struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
};

const int kSpins = 3000;  // pause instructions before sleeping: tens of microseconds

static inline void pause() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

struct State {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable start_cv, done_cv;
  std::atomic<unsigned long> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stopping{false};
  Job job;
  std::vector<Scratch> scratch1, scratch2;
};

// Never destroyed: at exit() (process.exit) the destructor of a condition variable that workers
// wait on would block forever.
State& st = *new State;

void work(int tid) {
  Job& job = st.job;
  for (;;) {
    long b = job.next.fetch_add(job.grain, std::memory_order_relaxed);
    if (b >= job.n) return;
    long e = b + job.grain < job.n ? b + job.grain : job.n;
    job.fn(job.ctx, b, e, tid);
  }
}

void worker_main(int tid) {
  unsigned long seen = 0;
  for (;;) {
    for (int i = 0; i < kSpins && st.generation.load(std::memory_order_acquire) == seen && !st.stopping; i++) pause();
    if (st.generation.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lk(st.mu);
      st.start_cv.wait(lk, [&] { return st.generation != seen || st.stopping; });
    }
    if (st.stopping) return;
    seen = st.generation;
    work(tid);
    if (st.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(st.mu);
      st.done_cv.notify_one();
    }
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
  st.job.fn = fn;
  st.job.ctx = ctx;
  st.job.n = n;
  st.job.grain = grain;
  st.job.next.store(0, std::memory_order_relaxed);
  st.pending.store((int)st.workers.size(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(st.mu);
    st.generation.fetch_add(1, std::memory_order_release);
  }
  st.start_cv.notify_all();
  work(0);
  for (int i = 0; i < kSpins && st.pending.load(std::memory_order_acquire) != 0; i++) pause();
  std::unique_lock<std::mutex> lk(st.mu);
  st.done_cv.wait(lk, [] { return st.pending.load(std::memory_order_acquire) == 0; });
}

float* pool_scratch(int tid, size_t n) { return grow(st.scratch1, tid, n); }
float* pool_scratch2(int tid, size_t n) { return grow(st.scratch2, tid, n); }

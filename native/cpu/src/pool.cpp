// Worker threads for pool.h. Why it is correct, in three rules:
// 1. A job's fields are written and read only under `mu`: a worker copies them, with the job's generation,
//    into a snapshot, so it never mixes two jobs' fields.
// 2. Chunks are claimed from one 64-bit counter that only grows (by compare-exchange, one chunk at a time) and
//    never wraps: job G owns the counter values [base, base + chunks), and job G+1 starts at G's end. A claim
//    succeeds only on a value its snapshot owns, so a worker woken late for an old job can never claim a new
//    job's chunk (no value repeats, no ABA), and a failed claim changes nothing.
// 3. Completion is counted per job in chunks. The caller returns only when all of its job's chunks ran, after
//    which no claim of that job can succeed; so it never waits for a worker that holds no chunk, and `done`
//    may be reset for the next job.
// Idle workers spin briefly (ops come back to back), then sleep on `start_cv`.
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

const int kSpins = 3000;  // pause instructions before sleeping: tens of microseconds

void pause() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

struct Job {
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  long n = 0, grain = 1;
  uint64_t base = 0, chunks = 0;  // the claim counter values this job owns: [base, base + chunks)
};

struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
};

struct State {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable start_cv, done_cv;
  Job job;                               // guarded by mu
  std::atomic<uint64_t> generation{0};   // written under mu; read without it to spin
  std::atomic<bool> stopping{false};     // written under mu
  std::atomic<uint64_t> claim{0};        // the next unclaimed chunk, over all jobs
  std::atomic<uint64_t> done{0};         // chunks of the current job that finished
  std::vector<Scratch> scratch1, scratch2;
};

// Never destroyed: at exit() (process.exit) the destructor of a condition variable that workers
// wait on would block forever.
State& st = *new State;

// Runs chunks of `job` until its last one is claimed.
void work(const Job& job, int tid) {
  uint64_t end = job.base + job.chunks;
  uint64_t c = st.claim.load(std::memory_order_relaxed);
  while (c < end) {  // c >= job.base: the snapshot was taken after the job was published
    if (!st.claim.compare_exchange_weak(c, c + 1, std::memory_order_relaxed)) continue;  // c reloaded
    long b = (long)(c - job.base) * job.grain;
    long e = b + job.grain < job.n ? b + job.grain : job.n;
    job.fn(job.ctx, b, e, tid);
    if (st.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks) {
      std::lock_guard<std::mutex> lk(st.mu);
      st.done_cv.notify_one();
    }
    c = st.claim.load(std::memory_order_relaxed);
  }
}

void worker_main(int tid, uint64_t seen) {
  for (;;) {
    for (int i = 0; i < kSpins && st.generation.load(std::memory_order_relaxed) == seen && !st.stopping; i++) pause();
    Job job;
    {
      std::unique_lock<std::mutex> lk(st.mu);
      st.start_cv.wait(lk, [&] { return st.generation.load() != seen || st.stopping; });
      if (st.stopping) return;
      seen = st.generation.load();
      job = st.job;
    }
    work(job, tid);
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
  for (int t = 1; t < n; t++) st.workers.emplace_back(worker_main, t, st.generation.load());
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
  Job job;
  {
    std::lock_guard<std::mutex> lk(st.mu);
    job = Job{fn, ctx, n, grain, st.claim.load(), (uint64_t)((n + grain - 1) / grain)};
    st.job = job;
    st.done.store(0);
    st.generation.store(st.generation.load() + 1);
  }
  st.start_cv.notify_all();
  work(job, 0);
  for (int i = 0; i < kSpins && st.done.load(std::memory_order_acquire) != job.chunks; i++) pause();
  std::unique_lock<std::mutex> lk(st.mu);
  st.done_cv.wait(lk, [&] { return st.done.load(std::memory_order_acquire) == job.chunks; });
}

float* pool_scratch(int tid, size_t n) { return grow(st.scratch1, tid, n); }
float* pool_scratch2(int tid, size_t n) { return grow(st.scratch2, tid, n); }

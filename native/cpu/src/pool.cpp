// Worker threads for pool.h: workers sleep on a condition variable between loops and take chunks
// from an atomic counter; the calling thread works too, then waits for the others.
#include "pool.h"

#include <sched.h>

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

std::vector<std::thread> workers;
std::mutex mu;
std::condition_variable start_cv, done_cv;
unsigned long generation = 0;
int pending = 0;
bool stopping = false;
Job job;

struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
};
std::vector<Scratch> scratch1, scratch2;

void work(int tid) {
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
    {
      std::unique_lock<std::mutex> lk(mu);
      start_cv.wait(lk, [&] { return generation != seen || stopping; });
      if (stopping) return;
      seen = generation;
    }
    work(tid);
    std::lock_guard<std::mutex> lk(mu);
    if (--pending == 0) done_cv.notify_one();
  }
}

void stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu);
    stopping = true;
  }
  start_cv.notify_all();
  for (auto& w : workers) w.join();
  workers.clear();
  stopping = false;
}

int cpus_available() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
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

void pool_set_threads(int n) {
  if (n <= 0) n = cpus_available();
  stop_workers();
  for (auto* pool : {&scratch1, &scratch2}) {
    for (auto& s : *pool) free(s.p);
    pool->assign(n, Scratch{});
  }
  for (int t = 1; t < n; t++) workers.emplace_back(worker_main, t);
}

void pool_stop() { stop_workers(); }

int pool_threads() { return (int)workers.size() + 1; }

long pool_grain(long n, long min_grain) {
  long g = n / (pool_threads() * 4);
  return g > min_grain ? g : min_grain;
}

void pool_run(long n, long grain, TaskFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (workers.empty() || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.grain = grain;
  job.next.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu);
    pending = (int)workers.size();
    generation++;
  }
  start_cv.notify_all();
  work(0);
  std::unique_lock<std::mutex> lk(mu);
  done_cv.wait(lk, [] { return pending == 0; });
}

float* pool_scratch(int tid, size_t n) { return grow(scratch1, tid, n); }
float* pool_scratch2(int tid, size_t n) { return grow(scratch2, tid, n); }

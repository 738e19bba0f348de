// Stress test of the thread pool alone (pool.cpp, no Node): jobs of wildly varying item counts and grains,
// back to back, each item of each job must run exactly once, and a watchdog fails a run that stops progressing.
//   pool-stress SECONDS THREADS...   e.g. pool-stress 2 2 5   (2 s with 2 threads, then 2 s with 5)
// Prints "ok: N jobs ..." and exits 0, or names the first bad item / the hang and exits 1.
#include "../src/pool.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

const long kMaxItems = 40000;
std::atomic<uint32_t> hits[kMaxItems];
std::atomic<long> jobs_done{0};
std::atomic<bool> finished{false};
std::atomic<int> max_tid{0};

struct Job {
  long n;
};

// Ends the process at once: the watchdog thread may not be joined, and a hung pool may not be stopped.
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "FAIL: %s\n", what);
  std::fflush(stderr);
  std::_Exit(1);
}

void count(void* ctx, long b, long e, int tid) {
  long n = static_cast<Job*>(ctx)->n;
  if (b < 0 || e > n || b >= e) {
    char what[100];
    std::snprintf(what, sizeof what, "chunk [%ld, %ld) of a job of %ld items", b, e, n);
    fail(what);
  }
  if (tid > max_tid.load()) max_tid.store(tid);
  // Not an atomic increment (that would cost the check most of its time): a chunk run twice at once may count
  // once, but the old pool's double runs came one after the other, and thread sanitizer sees overlaps.
  for (long i = b; i < e; i++) hits[i].store(hits[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

uint64_t rng = 0x9e3779b97f4a7c15ull;
uint64_t next() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

// Alternates tiny and large jobs (the pattern that exposed the old pool's race). Grain 1 for tiny jobs and a
// sixteenth of large ones, else a random grain; 40,000 items in one job of 32 (they cost the check milliseconds).
void job_shape(long job, long* n, long* grain) {
  static const long large[] = {64, 129, 300, 700, 4096};
  bool tiny = job % 2 == 0;
  *n = tiny ? 2 + (long)(next() % 7) : next() % 32 == 0 ? kMaxItems : large[next() % 5];
  *grain = tiny || next() % 16 == 0 ? 1 : 1 + (long)(next() % (*n / 8 + 1));
}

void watchdog() {
  long last = -1;
  auto since = std::chrono::steady_clock::now();
  while (!finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    long now = jobs_done.load();
    if (now != last) {
      last = now;
      since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - since > std::chrono::seconds(10)) {
      char what[100];
      std::snprintf(what, sizeof what, "hang: no job finished for 10 s after %ld jobs", now);
      fail(what);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::printf("usage: pool-stress SECONDS THREADS...\n");
    return 2;
  }
  double seconds = std::atof(argv[1]);
  std::thread dog(watchdog);
  for (int a = 2; a < argc; a++) {
    int threads = std::atoi(argv[a]);
    pool_set_threads(threads);
    max_tid = 0;
    long jobs = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      for (int k = 0; k < 256; k++, jobs++) {
        Job job;
        long grain;
        job_shape(jobs, &job.n, &grain);
        pool_run(job.n, grain, count, &job);
        for (long i = 0; i < kMaxItems; i++) {
          uint32_t h = hits[i].load(std::memory_order_relaxed);
          if (h != (i < job.n ? 1u : 0u)) {
            char what[160];
            std::snprintf(what, sizeof what, "item %ld of job %ld (n=%ld, grain=%ld, %d threads) ran %u times", i, jobs,
                          job.n, grain, threads, h);
            fail(what);
          }
          if (i >= job.n && i >= 64) break;  // items past n are checked up to 64 (late chunks land there too)
          hits[i].store(0, std::memory_order_relaxed);
        }
        jobs_done.fetch_add(1);
      }
    }
    std::printf("ok: %ld jobs with %d threads (highest thread id seen %d)\n", jobs, threads, max_tid.load());
  }
  finished = true;
  dog.join();
  pool_stop();
  return 0;
}

// The addon's worker threads: one parallel loop at a time, issued by the (single) JavaScript thread,
// plus per-thread scratch memory for kernels. Not a task scheduler.
#pragma once
#include <cstddef>

// fn(ctx, begin, end, tid) runs on chunks of [0, n); tid is 0 for the caller, 1.. for workers.
typedef void (*TaskFn)(void* ctx, long begin, long end, int tid);

void pool_run(long n, long grain, TaskFn fn, void* ctx);
int pool_threads();
void pool_set_threads(int n);  // n <= 0: one per CPU this process may run on
void pool_stop();  // joins the workers (before the process exits)

// A chunk size giving each thread about four chunks, but never below min_grain items.
long pool_grain(long n, long min_grain);

// 128-byte aligned scratch of at least n floats for thread tid (valid until its next call with tid).
float* pool_scratch(int tid, size_t n);
// A second buffer per thread, for kernels that need two independent ones.
float* pool_scratch2(int tid, size_t n);

// The addon's worker threads: one parallel loop at a time, issued by the (single) JavaScript thread,
// plus per-thread scratch memory for kernels. Not a task scheduler.
#pragma once
#include <cstddef>

// fn(ctx, begin, end, tid) runs on chunks of [0, n); tid is 0 for the caller, 1.. for workers.
// Only the JavaScript thread calls pool_run, and never from inside fn (the pool holds one job at a time).
typedef void (*TaskFn)(void* ctx, long begin, long end, int tid);

void pool_run(long n, long grain, TaskFn fn, void* ctx);
int pool_threads();
void pool_set_threads(int n);  // n <= 0: one per CPU this process may run on
void pool_stop();  // joins the workers (before the process exits)

// Items per chunk for n items of `work` elements each: about four chunks per thread, but at least
// kMinTaskWork elements per chunk, below which waking a worker costs more than it saves.
const long kMinTaskWork = 1 << 16;
long pool_grain(long n, long work);

// 128-byte aligned scratch of at least n floats for thread tid (valid until its next call with tid).
float* pool_scratch(int tid, size_t n);
// A second buffer per thread, for kernels that need two independent ones.
float* pool_scratch2(int tid, size_t n);

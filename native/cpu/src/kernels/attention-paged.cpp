// attentionPaged (backend.ts): a decode step's attention for every row at once, reading keys and values
// through each row's block table, so a row's scattered cache blocks are never gathered into a copy. One task per
// (row, run of adjacent heads): up to kQueries of the row's queries at a time share each block of cached keys
// (scores), then a softmax per head and query, then each block of values (weighted sums), two heads at once where
// they share a KV head (grouped-query attention); float32 and bf16 caches are read in place.
// Training attention is attention.cpp.
#include <cmath>
#include <cstring>

#include "../pool.h"
#include "half.h"
#include "kernels.h"
#include "simd.h"

namespace {

struct Paged {
  Act out, q, k, v;
  void* const* kc;  // chunk tables, all of dtype cache_dt
  void* const* vc;
  int cache_dt;
  const int32_t* rows;    // (R, 3): n0, Tq, Tk
  const int32_t* blocks;  // (R, maxBlocks)
  long maxBlocks, NH, NKV, HD, BT, BPC;
  float scale;
  long per, groups;  // heads per task, and tasks per row (the last may have fewer heads)
};

typedef int32_t I32x8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

// Eight elements of a float32 or bf16 cache from element i on, as float32 (bf16 by a 16-bit shift). The bf16 lanes
// are built one by one: GCC makes that one widening load (vpmovzxwd), where __builtin_convertvector takes five.
template <int DT>
static AI V8 cache8(const void* p, long i) {
  if (DT == F32) return load8((const float*)p + i);
  const uint16_t* h = (const uint16_t*)p + i;
  I32x8 w = I32x8{h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]} << 16;
  V8 v;
  memcpy(&v, &w, sizeof v);
  return v;
}

template <int DT>
static AI float cache1(const void* p, long i) {
  return DT == F32 ? ((const float*)p)[i] : bits_to_f32((uint32_t)((const uint16_t*)p)[i] << 16);
}

// The sums of four vectors' lanes, each ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)), by pairwise shuffles.
static AI V4 hsum8x4(V8 a, V8 b, V8 c, V8 d) {
  V8 ab = __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  V8 cd = __builtin_shufflevector(c, d, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(c, d, 1, 3, 9, 11, 5, 7, 13, 15);
  V8 s = __builtin_shufflevector(ab, cd, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(ab, cd, 1, 3, 9, 11, 5, 7, 13, 15);
  return __builtin_shufflevector(s, s, 0, 1, 2, 3) + __builtin_shufflevector(s, s, 4, 5, 6, 7);
}

// s[0, n) = softmax(s[0, n)): the max and the sum in eight lanes (lane l takes every j = l mod 8, in order), so that
// they vectorize.
static AI void softmax(float* s, long n) {
  const long whole = n / 8 * 8;
  V8 top = V8{} - INFINITY;
  for (long j = 0; j < whole; j += 8) {
    const V8 x = load8(s + j);
    top = top > x ? top : x;
  }
  float lanes[8];
  store8(lanes, top);
  for (long j = whole; j < n; j++) lanes[j % 8] = fmaxf_(lanes[j % 8], s[j]);
  float max = lanes[0];
  for (int l = 1; l < 8; l++) max = fmaxf_(max, lanes[l]);
  for (long j = 0; j < n; j++) s[j] = fexp(s[j] - max);
  V8 total = {};
  for (long j = 0; j < whole; j += 8) total += load8(s + j);
  store8(lanes, total);
  for (long j = whole; j < n; j++) lanes[j % 8] += s[j];
  const float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (long j = 0; j < n; j++) s[j] /= sum;
}

// Cached rows of one head: element (j, d) at p[off + j * stride + d], stored as dt (F32 or BF16).
struct HeadRows {
  const void* p;
  long off, stride;
  int dt;
};

// s[h][j] = scale * (q[h] . key j) for n keys and Q queries that share them (heads of one KV head): four keys at
// a time when HD allows (independent sums, so their latencies overlap; each key widened once for all Q), one at a
// time otherwise.
template <int DT, int Q>
static AI void scores(float* const* s, const float* const* q, const HeadRows& k, long n, long HD, float scale) {
  long j = 0;
  if (HD % 8 == 0) {
    for (; j + 4 <= n; j += 4) {
      const long o = k.off + j * k.stride;
      V8 acc[Q][4] = {};
      for (long d = 0; d < HD; d += 8) {
        const V8 k0 = cache8<DT>(k.p, o + d), k1 = cache8<DT>(k.p, o + k.stride + d);
        const V8 k2 = cache8<DT>(k.p, o + 2 * k.stride + d), k3 = cache8<DT>(k.p, o + 3 * k.stride + d);
#pragma GCC unroll 2
        for (int h = 0; h < Q; h++) {
          const V8 qv = load8(q[h] + d);
          acc[h][0] += qv * k0;
          acc[h][1] += qv * k1;
          acc[h][2] += qv * k2;
          acc[h][3] += qv * k3;
        }
      }
#pragma GCC unroll 2
      for (int h = 0; h < Q; h++) {
        V4 sums = hsum8x4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]) * scale;
        memcpy(s[h] + j, &sums, sizeof sums);
      }
    }
  }
  for (; j < n; j++)
    for (int h = 0; h < Q; h++) {
      float acc = 0;
      for (long d = 0; d < HD; d++) acc += q[h][d] * cache1<DT>(k.p, k.off + j * k.stride + d);
      s[h][j] = acc * scale;
    }
}

// Columns [d0, d0 + 8 * W) of o[h] += sum over j < n of p[h][j] * value row j, for Q heads sharing the values:
// the Q x W accumulators stay in registers across the rows (independent sums, so their latencies overlap), each
// value vector widened once for all Q.
template <int DT, int W, int Q>
static AI void weighted_cols(float* const* o, const float* const* p, const HeadRows& v, long n, long d0) {
  V8 acc[Q][W];
#pragma GCC unroll 8
  for (int h = 0; h < Q; h++)
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) acc[h][i] = load8(o[h] + d0 + 8 * i);
  for (long j = 0; j < n; j++) {
    const long row = v.off + j * v.stride + d0;
    V8 x[W];
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) x[i] = cache8<DT>(v.p, row + 8 * i);
#pragma GCC unroll 2
    for (int h = 0; h < Q; h++) {
      const V8 pj = V8{} + p[h][j];
#pragma GCC unroll 8
      for (int i = 0; i < W; i++) acc[h][i] += pj * x[i];
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < Q; h++)
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) store8(o[h] + d0 + 8 * i, acc[h][i]);
}

// o[h][0, HD) += sum over j < n of p[h][j] * value row j: one head 64 columns at a time, then 32, then 8; two
// heads 32 (the accumulators of 64 would not fit in 16 registers), then 8.
template <int DT, int Q>
static AI void weighted_sum(float* const* o, const float* const* p, const HeadRows& v, long n, long HD) {
  long d0 = 0;
  if (Q == 1)
    for (; d0 + 64 <= HD; d0 += 64) weighted_cols<DT, 8, Q>(o, p, v, n, d0);
  for (; d0 + 32 <= HD; d0 += 32) weighted_cols<DT, 4, Q>(o, p, v, n, d0);
  for (; d0 + 8 <= HD; d0 += 8) weighted_cols<DT, 1, Q>(o, p, v, n, d0);
  for (; d0 < HD; d0++)
    for (long j = 0; j < n; j++)
      for (int h = 0; h < Q; h++) o[h][d0] += p[h][j] * cache1<DT>(v.p, v.off + j * v.stride + d0);
}

// scores / weighted_sum for one head or a pair sharing a KV head, in the cache's dtype (F32 or BF16).
static AI void scores_of(int dt, bool pair, float* const* s, const float* const* q, const HeadRows& k, long n, long HD, float scale) {
  if (dt == BF16) pair ? scores<BF16, 2>(s, q, k, n, HD, scale) : scores<BF16, 1>(s, q, k, n, HD, scale);
  else pair ? scores<F32, 2>(s, q, k, n, HD, scale) : scores<F32, 1>(s, q, k, n, HD, scale);
}
static AI void weighted_sum_of(int dt, bool pair, float* const* o, const float* const* p, const HeadRows& v, long n, long HD) {
  if (dt == BF16) pair ? weighted_sum<BF16, 2>(o, p, v, n, HD) : weighted_sum<BF16, 1>(o, p, v, n, HD);
  else pair ? weighted_sum<F32, 2>(o, p, v, n, HD) : weighted_sum<F32, 1>(o, p, v, n, HD);
}

// Element offset of row r's block bi in its chunk, and that chunk's table
static AI const void* block_base(const Paged& a, void* const* chunks, long r, long bi, long* off) {
  long id = a.blocks[r * a.maxBlocks + bi];
  *off = (id % a.BPC) * a.BT * a.NKV * a.HD;
  return chunks[id / a.BPC];
}

// Head kh's slices of n cached rows from element `off` on: read in place from a float32 or bf16 cache, else (f16)
// widened into `tile` (n, HD).
static AI HeadRows head_rows(const Paged& a, const void* chunk, long off, long kh, long n, float* tile) {
  const long KD = a.NKV * a.HD;
  if (a.cache_dt == F32 || a.cache_dt == BF16) return HeadRows{chunk, off + kh * a.HD, KD, a.cache_dt};
  for (long j = 0; j < n; j++) widen(tile + j * a.HD, chunk, a.cache_dt, off + j * KD + kh * a.HD, a.HD);
  return HeadRows{tile, 0, a.HD, F32};
}

void write_rows(const Paged& a, long R) {
  const long KD = a.NKV * a.HD;
  float* row = pool_scratch(0, KD);
  for (long r = 0; r < R; r++) {
    long n0 = a.rows[3 * r], Tq = a.rows[3 * r + 1], Tk = a.rows[3 * r + 2];
    for (long i = 0; i < Tq; i++) {
      long t = Tk - Tq + i, off;
      const void* kb = block_base(a, a.kc, r, t / a.BT, &off);
      const void* vb = block_base(a, a.vc, r, t / a.BT, &off);
      off += (t % a.BT) * KD;
      widen(row, a.k.p, a.k.dt, (n0 + i) * KD, KD);
      narrow((void*)kb, a.cache_dt, off, row, KD);
      widen(row, a.v.p, a.v.dt, (n0 + i) * KD, KD);
      narrow((void*)vb, a.cache_dt, off, row, KD);
    }
  }
}

const long kQueries = 8;  // a row's queries that share each block of keys and values (a prefill chunk has many)

// One task: heads [h0, h1) of row r. A task's heads are adjacent in every cached key row, so together they read each
// row's span in one run (a whole 1.5 KB row when one task takes all heads), which the hardware prefetcher follows.
struct Task {
  long r, h0, h1;
};

static AI Task task_of(const Paged& a, long item) {
  long g = item % a.groups;
  return Task{item / a.groups, g * a.per, lmin(a.NH, (g + 1) * a.per)};
}

const long kAhead = 8;  // steps prefetched ahead of the run being read (the cache comes from DRAM: the weights
                        // streamed through since the last step)

// Row r's cached steps 0..last in time order: where the current one's row is (its chunk table and element offset
// there), each block looked up once (no divisions per step).
struct StepCursor {
  const Paged& a;
  void* const* chunks;
  long r, last, step = 0, block = 0, in_block = 0, off = 0;
  const void* chunk = nullptr;

  StepCursor(const Paged& a_, void* const* chunks_, long r_, long last_) : a(a_), chunks(chunks_), r(r_), last(last_) { enter(); }
  AI void enter() {
    if (step <= last) chunk = block_base(a, chunks, r, block, &off);
  }
  // n steps on, not past the end of the current block
  AI void advance(long n) {
    step += n, in_block += n, off += n * a.NKV * a.HD;
    if (in_block == a.BT) block++, in_block = 0, enter();
  }
};

// Walks row t.r's steps 0..last of `chunks` (keys or values) a block at a time, handing each block's steps to
// fn(j0, n, chunk, off): its first step, its length, its chunk table and element offset there. Every head and query
// of the task reads them in turn (against runs of 4 steps, decode attention at 1 and 8 rows took 22-28% less time
// in a C++ harness: 96 and 200 cached steps, tiny-english's heads, 2 Zen cores). The task's heads' span of step
// j + kAhead is prefetched as step j is read. Callers pass always_inline lambdas, so their bodies
// compile with attend_task's AVX2 clone rather than out of line for baseline x86.
template <class Fn>
static AI void each_run(const Paged& a, void* const* chunks, const Task& t, long last, Fn fn) {
  const long bytes = a.cache_dt == F32 ? 4 : 2, group = a.NH / a.NKV;
  const long first = t.h0 / group * a.HD * bytes, end = ((t.h1 - 1) / group + 1) * a.HD * bytes;  // the span's bytes in a row
  StepCursor run(a, chunks, t.r, last), ahead(a, chunks, t.r, last);
  auto prefetch_until = [&](long j) __attribute__((always_inline)) {
    for (; ahead.step < lmin(j, last + 1); ahead.advance(1))
      for (long b = first; b < end; b += 64) __builtin_prefetch((const char*)ahead.chunk + ahead.off * bytes + b);
  };
  prefetch_until(kAhead);
  while (run.step <= last) {
    const long n = lmin(a.BT - run.in_block, last + 1 - run.step);
    prefetch_until(run.step + kAhead + n);
    fn(run.step, n, run.chunk, run.off);
    run.advance(n);
  }
}

HOT void attend_task(void* c, long item0, long item1, int tid) {
  const Paged& a = *(const Paged*)c;
  const long HD = a.HD, group = a.NH / a.NKV;
  for (long item = item0; item < item1; item++) {
    const Task t = task_of(a, item);
    const long r = t.r, G = t.h1 - t.h0;
    const long n0 = a.rows[3 * r], Tq = a.rows[3 * r + 1], Tk = a.rows[3 * r + 2];
    // per (head, query): scores (Tk), the query and the output row (HD each); a 16-bit block widened (BT, HD)
    float* s = pool_scratch(tid, G * kQueries * (Tk + 2 * HD) + a.BT * HD);
    float* qs = s + G * kQueries * Tk;
    float* os = qs + G * kQueries * HD;
    float* tile = os + G * kQueries * HD;
    for (long i0 = 0; i0 < Tq; i0 += kQueries) {
      const long g = lmin(kQueries, Tq - i0), pos0 = Tk - Tq + i0, last = pos0 + g - 1;  // query qi sits at pos0 + qi
      auto at = [&](long hh, long qi) { return hh * kQueries + qi; };  // (head in task, query) slot
      for (long hh = 0; hh < G; hh++)
        for (long qi = 0; qi < g; qi++) widen(qs + at(hh, qi) * HD, a.q.p, a.q.dt, ((n0 + i0 + qi) * a.NH + t.h0 + hh) * HD, HD);
      // heads in pairs where two share a KV head: each cached key and value is widened once for both
      auto pair_at = [&](long hh) __attribute__((always_inline)) { return hh + 1 < G && (t.h0 + hh + 1) / group == (t.h0 + hh) / group; };
      each_run(a, a.kc, t, last, [&](long j0, long n, const void* chunk, long off) __attribute__((always_inline)) {  // for every head and query that sees it
        for (long hh = 0; hh < G; hh += pair_at(hh) ? 2 : 1) {
          const HeadRows keys = head_rows(a, chunk, off, (t.h0 + hh) / group, n, tile);
          for (long qi = 0; qi < g; qi++) {
            long seen = lmin(n, pos0 + qi + 1 - j0);
            if (seen <= 0) continue;
            float* sq[2] = {s + at(hh, qi) * Tk + j0, s + at(hh + 1, qi) * Tk + j0};
            const float* qv[2] = {qs + at(hh, qi) * HD, qs + at(hh + 1, qi) * HD};
            scores_of(keys.dt, pair_at(hh), sq, qv, keys, seen, HD, a.scale);
          }
        }
      });
      for (long hh = 0; hh < G; hh++)
        for (long qi = 0; qi < g; qi++) softmax(s + at(hh, qi) * Tk, pos0 + qi + 1);  // over the keys it sees
      for (long hh = 0; hh < G; hh++) memset(os + at(hh, 0) * HD, 0, g * HD * sizeof(float));  // the slots in use
      each_run(a, a.vc, t, last, [&](long j0, long n, const void* chunk, long off) __attribute__((always_inline)) {
        for (long hh = 0; hh < G; hh += pair_at(hh) ? 2 : 1) {
          const HeadRows values = head_rows(a, chunk, off, (t.h0 + hh) / group, n, tile);
          for (long qi = 0; qi < g; qi++) {
            long seen = lmin(n, pos0 + qi + 1 - j0);
            if (seen <= 0) continue;
            const float* p[2] = {s + at(hh, qi) * Tk + j0, s + at(hh + 1, qi) * Tk + j0};
            float* o[2] = {os + at(hh, qi) * HD, os + at(hh + 1, qi) * HD};
            weighted_sum_of(values.dt, pair_at(hh), o, p, values, seen, HD);
          }
        }
      });
      for (long hh = 0; hh < G; hh++)
        for (long qi = 0; qi < g; qi++) narrow(a.out.p, a.out.dt, ((n0 + i0 + qi) * a.NH + t.h0 + hh) * HD, os + at(hh, qi) * HD, HD);
    }
  }
}

}  // namespace

void k_attention_paged(Act out, Act q, Act k, Act v, void* const* kc, void* const* vc, int cache_dt, const int32_t* rows,
                       const int32_t* blocks, long R, long maxBlocks, long NH, long NKV, long HD, long BT, long BPC) {
  // enough tasks for the threads (four each), each as many adjacent heads as that leaves, rounded up to whole
  // groups of heads that share a KV head, so that their pairs form (tiny-english at 1 row: 8 tasks of one head became
  // 4 of two, and the step's attention took 25-30% less time in a C++ harness on 2 Zen cores)
  const long wanted = lmin(NH, lmax(1, (4 * pool_threads() + R - 1) / lmax(1, R))), group = NH / NKV;
  const long per = lmin(NH, ((NH + wanted - 1) / wanted + group - 1) / group * group);
  Paged a{out, q, k, v, kc, vc, cache_dt, rows, blocks, maxBlocks, NH, NKV, HD, BT, BPC, (float)(1.0 / std::sqrt((double)HD)),
          per, (NH + per - 1) / per};
  write_rows(a, R);  // a few rows of KD floats: not worth waking the workers
  pool_run(R * a.groups, 1, attend_task, &a);
}

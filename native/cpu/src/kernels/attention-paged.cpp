// attentionPaged (backend.ts): a decode step's attention for every row at once, reading keys and values
// through each row's block table, so a row's scattered cache blocks are never gathered into a copy. One task per
// (row, run of adjacent heads): up to kQueries of the row's queries at a time share each block of keys (scores), then
// a softmax per head and query, then each block of values (weighted sums). Training attention is attention.cpp.
#include <cmath>
#include <cstring>

#include "../pool.h"
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

typedef float V8 __attribute__((vector_size(32)));

static AI V8 load8(const float* p) {
  V8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static AI float hsum8(V8 v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

// s[j] = scale * (q . key j) for the n keys at k, `stride` floats apart: four keys at a time when HD allows
// (independent sums, so their latencies overlap), one at a time otherwise.
static AI void scores(float* s, const float* q, const float* k, long stride, long n, long HD, float scale) {
  long j = 0;
  if (HD % 8 == 0) {
    for (; j + 4 <= n; j += 4) {
      const float* kj = k + j * stride;
      V8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (long d = 0; d < HD; d += 8) {
        V8 qv = load8(q + d);
        a0 += qv * load8(kj + d);
        a1 += qv * load8(kj + stride + d);
        a2 += qv * load8(kj + 2 * stride + d);
        a3 += qv * load8(kj + 3 * stride + d);
      }
      s[j] = hsum8(a0) * scale, s[j + 1] = hsum8(a1) * scale, s[j + 2] = hsum8(a2) * scale, s[j + 3] = hsum8(a3) * scale;
    }
  }
  for (; j < n; j++) s[j] = dot_f(q, k + j * stride, HD) * scale;
}

// Element offset of row r's block bi in its chunk, and that chunk's table
static AI const void* block_base(const Paged& a, void* const* chunks, long r, long bi, long* off) {
  long id = a.blocks[r * a.maxBlocks + bi];
  *off = (id % a.BPC) * a.BT * a.NKV * a.HD;
  return chunks[id / a.BPC];
}

// The head-kh slices of n cached rows from element `off` on, as float32 rows `*stride` apart: the cache itself
// when it is f32, else widened into `tile` (n, HD).
static AI const float* head_rows(const Paged& a, const void* chunk, long off, long kh, long n, float* tile, long* stride) {
  const long KD = a.NKV * a.HD;
  if (a.cache_dt == F32) {
    *stride = KD;
    return (const float*)chunk + off + kh * a.HD;
  }
  for (long j = 0; j < n; j++) widen(tile + j * a.HD, chunk, a.cache_dt, off + j * KD + kh * a.HD, a.HD);
  *stride = a.HD;
  return tile;
}

// Prefetches row r's block bi (when it exists) for the key/value heads of query heads [h0, h1): between steps the
// weights stream through the caches and evict the cache blocks.
static AI void prefetch_block(const Paged& a, void* const* chunks, long r, long bi, long h0, long h1, long Tk) {
  if (bi * a.BT >= Tk) return;
  long off;
  const char* chunk = (const char*)block_base(a, chunks, r, bi, &off);
  const long bytes = a.cache_dt == F32 ? 4 : 2, KD = a.NKV * a.HD, group = a.NH / a.NKV;
  const long first = h0 / group * a.HD * bytes, end = ((h1 - 1) / group + 1) * a.HD * bytes;  // the span's bytes in a row
  for (long j = 0; j < lmin(a.BT, Tk - bi * a.BT); j++)
    for (long b = first; b < end; b += 64) __builtin_prefetch(chunk + (off + j * KD) * bytes + b);
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

// Prefetches the first two blocks each_block will walk (callers issue it early, to overlap other work).
static AI void prefetch_start(const Paged& a, void* const* chunks, const Task& t, long last) {
  for (long bi = 0; bi < 2; bi++) prefetch_block(a, chunks, t.r, bi, t.h0, t.h1, last + 1);
}

// Walks row t.r's blocks holding steps 0..last of `chunks` (keys or values), prefetching two blocks ahead of the one
// handed to fn(j0, n, chunk, off): its first step, its steps seen, its chunk table and offset there. Callers pass
// always_inline lambdas, so their bodies compile with attend_task's AVX2 clone rather than out of line for baseline x86.
template <class Fn>
static AI void each_block(const Paged& a, void* const* chunks, const Task& t, long last, Fn fn) {
  for (long j0 = 0; j0 <= last; j0 += a.BT) {
    prefetch_block(a, chunks, t.r, j0 / a.BT + 2, t.h0, t.h1, last + 1);
    long off;
    const void* chunk = block_base(a, chunks, t.r, j0 / a.BT, &off);
    fn(j0, lmin(a.BT, last + 1 - j0), chunk, off);
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
      long stride;
      prefetch_start(a, a.kc, t, last);
      for (long hh = 0; hh < G; hh++)
        for (long qi = 0; qi < g; qi++) widen(qs + at(hh, qi) * HD, a.q.p, a.q.dt, ((n0 + i0 + qi) * a.NH + t.h0 + hh) * HD, HD);
      each_block(a, a.kc, t, last, [&](long j0, long n, const void* chunk, long off) __attribute__((always_inline)) {  // for every head and query that sees it
        for (long hh = 0; hh < G; hh++) {
          const float* keys = head_rows(a, chunk, off, (t.h0 + hh) / group, n, tile, &stride);
          for (long qi = 0; qi < g; qi++) {
            long seen = lmin(n, pos0 + qi + 1 - j0);
            if (seen > 0) scores(s + at(hh, qi) * Tk + j0, qs + at(hh, qi) * HD, keys, stride, seen, HD, a.scale);
          }
        }
      });
      prefetch_start(a, a.vc, t, last);
      for (long hh = 0; hh < G; hh++)
        for (long qi = 0; qi < g; qi++) {  // softmax over keys 0..pos0 + qi, normalised in place
          float* sq = s + at(hh, qi) * Tk;
          float max = -INFINITY, sum = 0;
          for (long j = 0; j <= pos0 + qi; j++) max = fmaxf_(max, sq[j]);
          for (long j = 0; j <= pos0 + qi; j++) sum += (sq[j] = fexp(sq[j] - max));
          for (long j = 0; j <= pos0 + qi; j++) sq[j] /= sum;
        }
      for (long i = 0; i < G * kQueries * HD; i++) os[i] = 0;
      each_block(a, a.vc, t, last, [&](long j0, long n, const void* chunk, long off) __attribute__((always_inline)) {
        for (long hh = 0; hh < G; hh++) {
          const float* values = head_rows(a, chunk, off, (t.h0 + hh) / group, n, tile, &stride);
          for (long qi = 0; qi < g; qi++) {
            const float* p = s + at(hh, qi) * Tk + j0;
            float* o = os + at(hh, qi) * HD;
            for (long j = 0; j < lmin(n, pos0 + qi + 1 - j0); j++)
              for (long d = 0; d < HD; d++) o[d] += p[j] * values[j * stride + d];
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
  // enough tasks for the threads (four each), each as many adjacent heads as that leaves
  long wanted = lmin(NH, lmax(1, (4 * pool_threads() + R - 1) / lmax(1, R)));
  long per = (NH + wanted - 1) / wanted;
  Paged a{out, q, k, v, kc, vc, cache_dt, rows, blocks, maxBlocks, NH, NKV, HD, BT, BPC, (float)(1.0 / std::sqrt((double)HD)),
          per, (NH + per - 1) / per};
  write_rows(a, R);  // a few rows of KD floats: not worth waking the workers
  pool_run(R * a.groups, 1, attend_task, &a);
}

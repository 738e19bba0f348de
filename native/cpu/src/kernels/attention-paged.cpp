// attentionPaged (backend.ts): a decode step's attention for every row at once, reading keys and values
// through each row's block table, so a row's scattered cache blocks are never gathered into a copy. One task
// per (row, query head): for each of the row's queries, scores over its keys (a block of the table at a time),
// softmax, then the weighted sum of values. Sized for decode (a few queries per row, keys in the thousands);
// training attention is attention.cpp.
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

HOT void attend_task(void* c, long item0, long item1, int tid) {
  const Paged& a = *(const Paged*)c;
  const long HD = a.HD, group = a.NH / a.NKV;
  for (long item = item0; item < item1; item++) {
    long r = item / a.NH, h = item % a.NH, kh = h / group;
    long n0 = a.rows[3 * r], Tq = a.rows[3 * r + 1], Tk = a.rows[3 * r + 2];
    float* s = pool_scratch(tid, Tk + 2 * HD + a.BT * HD);  // scores (Tk), the query, the output row, a 16-bit block widened
    float* qrow = s + Tk;
    float* o = qrow + HD;
    float* tile = o + HD;
    for (long i = 0; i < Tq; i++) {
      long pos = Tk - Tq + i, qo = ((n0 + i) * a.NH + h) * HD, off, stride;
      widen(qrow, a.q.p, a.q.dt, qo, HD);
      float max = -INFINITY;
      for (long j0 = 0; j0 <= pos; j0 += a.BT) {  // one block of keys at a time
        long n = lmin(a.BT, pos + 1 - j0);
        const void* chunk = block_base(a, a.kc, r, j0 / a.BT, &off);
        const float* keys = head_rows(a, chunk, off, kh, n, tile, &stride);
        scores(s + j0, qrow, keys, stride, n, HD, a.scale);
        for (long j = j0; j < j0 + n; j++) max = fmaxf_(max, s[j]);
      }
      float sum = 0;
      for (long j = 0; j <= pos; j++) sum += (s[j] = fexp(s[j] - max));
      for (long d = 0; d < HD; d++) o[d] = 0;
      for (long j0 = 0; j0 <= pos; j0 += a.BT) {
        long n = lmin(a.BT, pos + 1 - j0);
        const void* chunk = block_base(a, a.vc, r, j0 / a.BT, &off);
        const float* values = head_rows(a, chunk, off, kh, n, tile, &stride);
        for (long j = 0; j < n; j++) {
          const float p = s[j0 + j] / sum, *vrow = values + j * stride;
          for (long d = 0; d < HD; d++) o[d] += p * vrow[d];
        }
      }
      narrow(a.out.p, a.out.dt, qo, o, HD);
    }
  }
}

}  // namespace

void k_attention_paged(Act out, Act q, Act k, Act v, void* const* kc, void* const* vc, int cache_dt, const int32_t* rows,
                       const int32_t* blocks, long R, long maxBlocks, long NH, long NKV, long HD, long BT, long BPC) {
  Paged a{out, q, k, v, kc, vc, cache_dt, rows, blocks, maxBlocks, NH, NKV, HD, BT, BPC, (float)(1.0 / std::sqrt((double)HD))};
  write_rows(a, R);  // a few rows of KD floats: not worth waking the workers
  pool_run(R * NH, 1, attend_task, &a);
}

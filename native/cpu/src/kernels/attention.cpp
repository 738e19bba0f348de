// Fused causal attention (GQA, key padding, packed segments) the flash-attention way: scores exist one (query block, key
// tile) at a time, softmax is online, the backward recomputes probabilities from the log-sum-exp.

// Layouts: q (B, Tq, NH, HD), k/v (B, Tkv, NKV, HD). A query with no allowed key attends uniformly to all
// Tk keys (HF eager's fully masked row), lse = NaN. q, k, v, out and the gradients may be 16-bit (Act): rows are
// widened as they are loaded into the float32 tiles and rounded once as results are stored.
// Segments (B, Tkv), contiguous runs: a query sees the keys from the start of its run on (the block-diagonal
// causal mask); key tiles wholly before a query block's first run are skipped.
#include <cmath>

#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

const long BQ = 32;  // query rows per block
const long BK = 64;  // keys per tile (a multiple of 16)

// C (m, n) (+)= A (m, k) B (k, n), R rows by 16 columns of C in registers; n is a multiple of 16
// (tiles are padded). transA: A is stored (k, m), i.e. C += A^T B.
template <int R, bool transA>
static AI void mm_rows(float* __restrict C, long ldc, const float* __restrict A, long lda, const float* __restrict B, long ldb,
                       long i0, long n, long k, bool add) {
  for (long j = 0; j < n; j += 16) {
    V8 c0[R], c1[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      c0[r] = add ? load8(C + (i0 + r) * ldc + j) : V8{};
      c1[r] = add ? load8(C + (i0 + r) * ldc + j + 8) : V8{};
    }
    for (long kk = 0; kk < k; kk++) {
      V8 b0 = load8(B + kk * ldb + j), b1 = load8(B + kk * ldb + j + 8);
#pragma GCC unroll 16
      for (int r = 0; r < R; r++) {
        float av = transA ? A[kk * lda + i0 + r] : A[(i0 + r) * lda + kk];
        c0[r] += av * b0;
        c1[r] += av * b1;
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      store8(C + (i0 + r) * ldc + j, c0[r]);
      store8(C + (i0 + r) * ldc + j + 8, c1[r]);
    }
  }
}

template <bool transA>
static AI void mm(float* C, long ldc, const float* A, long lda, const float* B, long ldb, long m, long n, long k, bool add) {
  long i = 0;
  for (; i + 4 <= m; i += 4) mm_rows<4, transA>(C, ldc, A, lda, B, ldb, i, n, k, add);
  for (; i < m; i++) mm_rows<1, transA>(C, ldc, A, lda, B, ldb, i, n, k, add);
}

struct Attn {
  Act out;
  float* lse;
  Act dq, dk, dv, q, k, v, dout;
  const int32_t* mask;
  const int32_t* seg;
  long B, Tq, Tk, Tkv, NH, NKV, HD, HDp, qblocks;
  float scale;
};

// dst (rows, HDp) = rows t0.. of head h of x (B, T, H, HD), zero-padded to HDp columns
static AI void load_rows(float* __restrict dst, Act x, long T, long H, long HD, long HDp, long b, long h, long t0, long rows) {
  for (long r = 0; r < rows; r++) {
    widen(dst + r * HDp, x.p, x.dt, ((b * T + t0 + r) * H + h) * HD, HD);
    for (long d = HD; d < HDp; d++) dst[r * HDp + d] = 0;
  }
}

// dstT (HD, BK) = the same rows transposed, zero past `rows`; row (HD) is scratch
static AI void load_rows_t(float* __restrict dstT, Act x, long T, long H, long HD, long b, long h, long t0, long rows,
                           float* __restrict row) {
  for (long r = 0; r < rows; r++) {
    widen(row, x.p, x.dt, ((b * T + t0 + r) * H + h) * HD, HD);
    for (long d = 0; d < HD; d++) dstT[d * BK + r] = row[d];
  }
  for (long d = 0; rows < BK && d < HD; d++)
    for (long r = rows; r < BK; r++) dstT[d * BK + r] = 0;
}

static AI bool key_allowed(const Attn& a, long b, long j) { return !a.mask || a.mask[b * a.Tkv + j] != 0; }

// lo[i] = the first key query position pos0 + i may see (the start of its segment; 0 without segments)
static AI void segment_starts(long* lo, const Attn& a, long b, long pos0, long nq) {
  if (!a.seg) {
    for (long i = 0; i < nq; i++) lo[i] = 0;
    return;
  }
  const int32_t* s = a.seg + b * a.Tkv;
  long start = pos0;
  while (start > 0 && s[start - 1] == s[pos0]) start--;
  for (long i = 0; i < nq; i++) {
    long p = pos0 + i;
    if (i > 0 && s[p] != s[p - 1]) start = p;
    lo[i] = start;
  }
}

// One task: a block of BQ query rows of one (batch, head), over every key tile they can see.
HOT void forward_task(void* c, long item0, long item1, int tid) {
  const Attn& a = *(const Attn*)c;
  const long HD = a.HD, HDp = a.HDp;
  float* Qs = pool_scratch(tid, BQ * HDp * 2 + HD * BK + BK * HDp + BQ * BK + 3 * BQ + BK + 2 * HDp);
  float* O = Qs + BQ * HDp;
  float* Kt = O + BQ * HDp;
  float* Vs = Kt + HD * BK;
  float* S = Vs + BK * HDp;
  float* M = S + BQ * BK;
  float* L = M + BQ;
  float* corr = L + BQ;
  float* allowed = corr + BQ;
  float* row = allowed + BK;  // (HDp) for loading, (HDp) for a uniform row's sum
  for (long item = item0; item < item1; item++) {
    long b = item / (a.NH * a.qblocks), h = (item / a.qblocks) % a.NH, i0 = (item % a.qblocks) * BQ;
    long nq = lmin(BQ, a.Tq - i0), kh = h / (a.NH / a.NKV);
    long pos0 = a.Tk - a.Tq + i0;  // key position of the block's first query
    long lo[BQ];
    segment_starts(lo, a, b, pos0, nq);
    load_rows(Qs, a.q, a.Tq, a.NH, HD, HDp, b, h, i0, nq);
    for (long i = 0; i < nq * HDp; i++) O[i] = 0;
    for (long i = 0; i < nq; i++) M[i] = -INFINITY, L[i] = 0;
    for (long j0 = lo[0] / BK * BK; j0 <= pos0 + nq - 1; j0 += BK) {
      long nk = lmin(BK, pos0 + nq - j0);
      load_rows_t(Kt, a.k, a.Tkv, a.NKV, HD, b, kh, j0, nk, row);
      load_rows(Vs, a.v, a.Tkv, a.NKV, HD, HDp, b, kh, j0, nk);
      for (long jj = 0; jj < nk; jj++) allowed[jj] = key_allowed(a, b, j0 + jj) ? 1.f : 0.f;
      mm<false>(S, BK, Qs, HDp, Kt, BK, nq, BK, HD, false);
      for (long i = 0; i < nq; i++) {
        float* __restrict s = S + i * BK;
        long n = lmin(nk, pos0 + i - j0 + 1);  // causal: keys up to the query's position
        long first = lo[i] - j0;                // and from its segment's start
        float mx = -INFINITY;
        for (long jj = 0; jj < nk; jj++) {
          s[jj] = jj < n && jj >= first && allowed[jj] != 0.f ? s[jj] * a.scale : -INFINITY;
          mx = fmaxf_(mx, s[jj]);
        }
        float mnew = fmaxf_(M[i], mx);
        if (mnew == -INFINITY) {
          corr[i] = 1;
          for (long jj = 0; jj < nk; jj++) s[jj] = 0;
          continue;
        }
        corr[i] = fexp(M[i] - mnew);
        float psum = 0;
        for (long jj = 0; jj < nk; jj++) {
          s[jj] = fexp(s[jj] - mnew);
          psum += s[jj];
        }
        L[i] = L[i] * corr[i] + psum;
        M[i] = mnew;
      }
      for (long i = 0; i < nq; i++)
        for (long d = 0; d < HDp; d++) O[i * HDp + d] *= corr[i];
      mm<false>(O, HDp, S, BK, Vs, HDp, nq, HDp, nk, true);
    }
    for (long i = 0; i < nq; i++) {
      long dst = ((b * a.Tq + i0 + i) * a.NH + h) * HD;
      float* o = O + i * HDp;
      float* lse = a.lse + (b * a.NH + h) * a.Tq + i0 + i;
      if (L[i] > 0) {
        for (long d = 0; d < HD; d++) o[d] /= L[i];
        *lse = M[i] + std::log(L[i]);
      } else {
        float* sum = row + HDp;
        for (long d = 0; d < HD; d++) sum[d] = 0;
        for (long j = 0; j < a.Tk; j++) {
          widen(row, a.v.p, a.v.dt, ((b * a.Tkv + j) * a.NKV + kh) * HD, HD);
          for (long d = 0; d < HD; d++) sum[d] += row[d];
        }
        for (long d = 0; d < HD; d++) o[d] = sum[d] / (float)a.Tk;
        *lse = NAN;
      }
      narrow(a.out.p, a.out.dt, dst, o, HD);
    }
  }
}

// One task: one (batch, kv head). It owns dk/dv of that kv head (accumulated in dKa/dVa) and dq of the
// heads in its group, so tasks never write the same memory. Query blocks outer, key tiles inner.
HOT void backward_task(void* c, long item0, long item1, int tid) {
  const Attn& a = *(const Attn*)c;
  const long HD = a.HD, HDp = a.HDp, T = a.Tq, group = a.NH / a.NKV;
  float* Qs = pool_scratch(tid, 3 * BQ * HDp + 2 * HD * BK + BK * HDp + 2 * BQ * BK + 3 * BQ + BK + 2 * T * HDp + 2 * HDp);
  float* dOs = Qs + BQ * HDp;
  float* dQs = dOs + BQ * HDp;
  float* Kt = dQs + BQ * HDp;
  float* Vt = Kt + HD * BK;
  float* Ks = Vt + HD * BK;
  float* P = Ks + BK * HDp;
  float* dS = P + BQ * BK;
  float* D = dS + BQ * BK;
  float* lse = D + BQ;
  float* uniform = lse + BQ;
  float* allowed = uniform + BQ;
  float* dKa = allowed + BK;
  float* dVa = dKa + T * HDp;
  float* row = dVa + T * HDp;  // (HDp) for loading, (HDp) for a row of out
  const float inv_t = 1.f / (float)T;
  for (long item = item0; item < item1; item++) {
    long b = item / a.NKV, kh = item % a.NKV;
    for (long i = 0; i < T * HDp; i++) dKa[i] = 0, dVa[i] = 0;
    for (long g = 0; g < group; g++) {
      long h = kh * group + g;
      for (long i0 = 0; i0 < T; i0 += BQ) {
        long nq = lmin(BQ, T - i0);
        load_rows(Qs, a.q, T, a.NH, HD, HDp, b, h, i0, nq);
        load_rows(dOs, a.dout, T, a.NH, HD, HDp, b, h, i0, nq);
        bool any_uniform = false;
        for (long i = 0; i < nq; i++) {
          long off = ((b * T + i0 + i) * a.NH + h) * HD;
          widen(row + HDp, a.out.p, a.out.dt, off, HD);
          D[i] = dot_f(dOs + i * HDp, row + HDp, HD);
          lse[i] = a.lse[(b * a.NH + h) * T + i0 + i];
          uniform[i] = std::isnan(lse[i]) ? 1.f : 0.f;
          any_uniform = any_uniform || uniform[i] != 0.f;
        }
        for (long i = 0; i < nq * HDp; i++) dQs[i] = 0;
        long lo[BQ];
        segment_starts(lo, a, b, i0, nq);
        long last_key = any_uniform ? T - 1 : i0 + nq - 1;
        for (long j0 = any_uniform ? 0 : lo[0] / BK * BK; j0 <= last_key; j0 += BK) {
          long nk = lmin(BK, last_key + 1 - j0);
          load_rows_t(Kt, a.k, T, a.NKV, HD, b, kh, j0, nk, row);
          load_rows_t(Vt, a.v, T, a.NKV, HD, b, kh, j0, nk, row);
          load_rows(Ks, a.k, T, a.NKV, HD, HDp, b, kh, j0, nk);
          for (long jj = 0; jj < nk; jj++) allowed[jj] = key_allowed(a, b, j0 + jj) ? 1.f : 0.f;
          mm<false>(P, BK, Qs, HDp, Kt, BK, nq, BK, HD, false);
          mm<false>(dS, BK, dOs, HDp, Vt, BK, nq, BK, HD, false);
          for (long i = 0; i < nq; i++) {
            float* __restrict p = P + i * BK;
            float* __restrict ds = dS + i * BK;
            long n = i0 + i - j0 + 1;  // causal: keys up to the query
            long first = lo[i] - j0;   // and from its segment's start
            bool u = uniform[i] != 0.f;
            for (long jj = 0; jj < nk; jj++) {
              float pj = u ? inv_t : jj < n && jj >= first && allowed[jj] != 0.f ? fexp(p[jj] * a.scale - lse[i]) : 0.f;
              p[jj] = pj;
              ds[jj] = pj * (ds[jj] - D[i]) * a.scale;
            }
          }
          mm<true>(dVa + j0 * HDp, HDp, P, BK, dOs, HDp, nk, HDp, nq, true);
          mm<true>(dKa + j0 * HDp, HDp, dS, BK, Qs, HDp, nk, HDp, nq, true);
          mm<false>(dQs, HDp, dS, BK, Ks, HDp, nq, HDp, nk, true);
        }
        for (long i = 0; i < nq; i++) narrow(a.dq.p, a.dq.dt, ((b * T + i0 + i) * a.NH + h) * HD, dQs + i * HDp, HD);
      }
    }
    for (long j = 0; j < T; j++) {
      long off = ((b * T + j) * a.NKV + kh) * HD;
      narrow(a.dk.p, a.dk.dt, off, dKa + j * HDp, HD);
      narrow(a.dv.p, a.dv.dt, off, dVa + j * HDp, HD);
    }
  }
}

}  // namespace

void k_attention_forward(Act out, float* lse, Act q, Act k, Act v, const int32_t* mask, const int32_t* seg, long B, long Tq,
                         long Tk, long Tkv, long NH, long NKV, long HD) {
  const Act none{nullptr, F32};
  Attn a{out, lse, none, none, none, q, k, v, none, mask, seg, B, Tq, Tk, Tkv, NH, NKV, HD, (HD + 15) / 16 * 16,
         (Tq + BQ - 1) / BQ, (float)(1.0 / std::sqrt((double)HD))};
  pool_run(B * NH * a.qblocks, 1, forward_task, &a);
}

void k_attention_backward(Act dq, Act dk, Act dv, Act dout, Act out, const float* lse, Act q, Act k, Act v,
                          const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV, long HD) {
  Attn a{out, const_cast<float*>(lse), dq, dk, dv, q, k, v, dout, mask, seg, B, T, T, T, NH, NKV, HD,
         (HD + 15) / 16 * 16, 0, (float)(1.0 / std::sqrt((double)HD))};
  pool_run(B * NKV, 1, backward_task, &a);
}

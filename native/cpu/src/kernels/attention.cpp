// Fused causal attention with GQA and key padding, the flash-attention way: scores exist one
// (query, key-tile) row at a time, softmax is computed online, and the backward recomputes
// probabilities from the saved log-sum-exp. Layouts: q (B, Tq, NH, HD), k/v (B, Tkv, NKV, HD).
// A query with no allowed key attends uniformly to all Tk keys (HF eager's fully masked row), lse = NaN.
#include <cmath>

#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

const long BQ = 32;  // query rows per forward task
const long BK = 64;  // keys per tile

struct Attn {
  float *out, *lse, *dq, *dk, *dv;
  const float *q, *k, *v, *dout;
  const int32_t* mask;
  long B, Tq, Tk, Tkv, NH, NKV, HD, qtiles;
  float scale;
};

// Kt (HD, BK) = K rows j0..j0+nk of kv head kh, transposed; allowed[jj] = the padding mask.
static AI void load_key_tile(const Attn& a, const float* src, float* dstT, float* allowed, long b, long kh, long j0,
                             long nk) {
  for (long jj = 0; jj < nk; jj++) {
    const float* row = src + ((b * a.Tkv + j0 + jj) * a.NKV + kh) * a.HD;
    for (long d = 0; d < a.HD; d++) dstT[d * BK + jj] = row[d];
    if (allowed) allowed[jj] = !a.mask || a.mask[b * a.Tkv + j0 + jj] != 0 ? 1.f : 0.f;
  }
}

// s[0..nk) = q . Kt columns
static AI void row_scores(float* s, const float* q, const float* Kt, long HD, long nk) {
  for (long jj = 0; jj < nk; jj++) s[jj] = 0;
  for (long d = 0; d < HD; d++) {
    float qd = q[d];
    const float* kt = Kt + d * BK;
    for (long jj = 0; jj < nk; jj++) s[jj] += qd * kt[jj];
  }
}

// One task: BQ query rows of one (batch, head), over every key tile they can see.
HOT void forward_task(void* c, long item0, long item1, int tid) {
  const Attn& a = *(const Attn*)c;
  const long HD = a.HD;
  float* Kt = pool_scratch(tid, HD * BK + BK + BQ * (HD + BK + 2));
  float* allowed = Kt + HD * BK;
  float* O = allowed + BK;
  float* S = O + BQ * HD;
  float* M = S + BQ * BK;
  float* L = M + BQ;
  for (long item = item0; item < item1; item++) {
    long b = item / (a.NH * a.qtiles), h = (item / a.qtiles) % a.NH, i0 = (item % a.qtiles) * BQ;
    long nq = lmin(BQ, a.Tq - i0), kh = h / (a.NH / a.NKV);
    long first_pos = a.Tk - a.Tq + i0;
    for (long i = 0; i < nq * HD; i++) O[i] = 0;
    for (long i = 0; i < nq; i++) M[i] = -INFINITY, L[i] = 0;
    for (long j0 = 0; j0 <= first_pos + nq - 1; j0 += BK) {
      long nk = lmin(BK, first_pos + nq - j0);
      load_key_tile(a, a.k, Kt, allowed, b, kh, j0, nk);
      for (long i = 0; i < nq; i++) {
        long pos = first_pos + i;
        if (j0 > pos) break;
        long n = lmin(nk, pos - j0 + 1);  // causal: keys j0..pos
        float* s = S + i * BK;
        row_scores(s, a.q + ((b * a.Tq + i0 + i) * a.NH + h) * HD, Kt, HD, n);
        float mx = -INFINITY;
        for (long jj = 0; jj < n; jj++) {
          s[jj] = allowed[jj] != 0.f ? s[jj] * a.scale : -INFINITY;
          mx = fmaxf_(mx, s[jj]);
        }
        if (mx == -INFINITY) continue;
        float mnew = fmaxf_(M[i], mx);
        float corr = fexp(M[i] - mnew);
        float psum = 0;
        for (long jj = 0; jj < n; jj++) {
          s[jj] = fexp(s[jj] - mnew);
          psum += s[jj];
        }
        L[i] = L[i] * corr + psum;
        M[i] = mnew;
        float* o = O + i * HD;
        if (corr != 1.f)
          for (long d = 0; d < HD; d++) o[d] *= corr;
        for (long jj = 0; jj < n; jj++) {
          float p = s[jj];
          if (p == 0.f) continue;
          const float* vr = a.v + ((b * a.Tkv + j0 + jj) * a.NKV + kh) * HD;
          for (long d = 0; d < HD; d++) o[d] += p * vr[d];
        }
      }
    }
    for (long i = 0; i < nq; i++) {
      float* dst = a.out + ((b * a.Tq + i0 + i) * a.NH + h) * HD;
      float* lse = a.lse + (b * a.NH + h) * a.Tq + i0 + i;
      if (L[i] > 0) {
        for (long d = 0; d < HD; d++) dst[d] = O[i * HD + d] / L[i];
        *lse = M[i] + std::log(L[i]);
        continue;
      }
      for (long d = 0; d < HD; d++) dst[d] = 0;
      for (long j = 0; j < a.Tk; j++) {
        const float* vr = a.v + ((b * a.Tkv + j) * a.NKV + kh) * HD;
        for (long d = 0; d < HD; d++) dst[d] += vr[d];
      }
      for (long d = 0; d < HD; d++) dst[d] /= (float)a.Tk;
      *lse = NAN;
    }
  }
}

// Query row i against keys j0..j0+n of one tile: dV, dK (tile accumulators) and dq (global) grow.
// lse NaN: the uniform row, p = 1/T for every key.
static AI void backward_row(const Attn& a, long b, long h, long kh, long i, long j0, long n, float lse, float Di,
                            const float* Kt, const float* Vt, const float* allowed, float* p, float* ds, float* dK, float* dV) {
  const long HD = a.HD, T = a.Tq;
  long off = ((b * T + i) * a.NH + h) * HD;
  const float *qi = a.q + off, *doi = a.dout + off;
  row_scores(p, qi, Kt, HD, n);
  row_scores(ds, doi, Vt, HD, n);
  for (long jj = 0; jj < n; jj++) {
    float pj = !allowed ? 1.f / (float)T : allowed[jj] != 0.f ? fexp(p[jj] * a.scale - lse) : 0.f;
    p[jj] = pj;
    ds[jj] = pj * (ds[jj] - Di) * a.scale;
  }
  float* dqi = a.dq + off;
  for (long jj = 0; jj < n; jj++) {
    float pj = p[jj], dsj = ds[jj];
    if (pj == 0.f) continue;
    const float* kr = a.k + ((b * T + j0 + jj) * a.NKV + kh) * HD;
    float *dvr = dV + jj * HD, *dkr = dK + jj * HD;
    for (long d = 0; d < HD; d++) {
      dvr[d] += pj * doi[d];
      dkr[d] += dsj * qi[d];
      dqi[d] += dsj * kr[d];
    }
  }
}

// One task: one (batch, kv head). It owns dk/dv of that kv head and dq of the heads in its group, so
// tasks never write the same memory. Key tiles outer; every query at or after the tile inner.
HOT void backward_task(void* c, long item0, long item1, int tid) {
  const Attn& a = *(const Attn*)c;
  const long HD = a.HD, T = a.Tq, group = a.NH / a.NKV;
  float* Kt = pool_scratch(tid, 2 * HD * BK + 2 * BK * HD + 3 * BK + group * T);
  float* Vt = Kt + HD * BK;
  float* dK = Vt + HD * BK;
  float* dV = dK + BK * HD;
  float* allowed = dV + BK * HD;
  float* p = allowed + BK;
  float* ds = p + BK;
  float* D = ds + BK;  // (group, T) rowsum(dout * out)
  for (long item = item0; item < item1; item++) {
    long b = item / a.NKV, kh = item % a.NKV;
    for (long g = 0; g < group; g++) {
      long h = kh * group + g;
      for (long i = 0; i < T; i++) {
        long off = ((b * T + i) * a.NH + h) * HD;
        D[g * T + i] = dot_f(a.dout + off, a.out + off, HD);
        for (long d = 0; d < HD; d++) a.dq[off + d] = 0;
      }
    }
    for (long j0 = 0; j0 < T; j0 += BK) {
      long nk = lmin(BK, T - j0);
      load_key_tile(a, a.k, Kt, allowed, b, kh, j0, nk);
      load_key_tile(a, a.v, Vt, nullptr, b, kh, j0, nk);
      for (long i = 0; i < nk * HD; i++) dK[i] = 0, dV[i] = 0;
      for (long g = 0; g < group; g++) {
        long h = kh * group + g;
        const float* lse = a.lse + (b * a.NH + h) * T;
        // causal rows at or after the tile, then the uniform (NaN) rows, which see every key
        for (long i = j0; i < T; i++)
          if (!std::isnan(lse[i])) backward_row(a, b, h, kh, i, j0, lmin(nk, i - j0 + 1), lse[i], D[g * T + i], Kt, Vt, allowed, p, ds, dK, dV);
        for (long i = 0; i < T; i++)
          if (std::isnan(lse[i])) backward_row(a, b, h, kh, i, j0, nk, NAN, D[g * T + i], Kt, Vt, nullptr, p, ds, dK, dV);
      }
      for (long jj = 0; jj < nk; jj++) {
        long off = ((b * T + j0 + jj) * a.NKV + kh) * HD;
        memcpy(a.dk + off, dK + jj * HD, HD * sizeof(float));
        memcpy(a.dv + off, dV + jj * HD, HD * sizeof(float));
      }
    }
  }
}

}  // namespace

void k_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, long B,
                         long Tq, long Tk, long Tkv, long NH, long NKV, long HD) {
  Attn a{out, lse, nullptr, nullptr, nullptr, q, k, v, nullptr, mask, B, Tq, Tk, Tkv, NH, NKV, HD, (Tq + BQ - 1) / BQ,
         (float)(1.0 / std::sqrt((double)HD))};
  pool_run(B * NH * a.qtiles, 1, forward_task, &a);
}

void k_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                          const float* q, const float* k, const float* v, const int32_t* mask, long B, long T, long NH,
                          long NKV, long HD) {
  Attn a{const_cast<float*>(out), const_cast<float*>(lse), dq, dk, dv, q, k, v, dout, mask, B, T, T, T, NH, NKV, HD, 0,
         (float)(1.0 / std::sqrt((double)HD))};
  pool_run(B * NKV, 1, backward_task, &a);
}

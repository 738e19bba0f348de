// Embedding lookup, RMSNorm, rotary embedding and SwiGLU, forward and backward. Rows are split
// across the pool; weights stored as bf16/f16 are widened to float32 once per call. Activations (Act) may be
// 16-bit: rows are widened into per-thread scratch and results rounded once as they are stored.
#include <cmath>

#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

// A (C) weight as float32: the tensor itself when f32, else widened into the caller's scratch.
const float* weight_f32(const void* w, int dtype, long C) {
  if (dtype == F32) return (const float*)w;
  float* buf = pool_scratch2(0, C);
  widen(buf, w, dtype, 0, C);
  return buf;
}

// Elements [off, off + n) of an activation as float32: in place when f32, else widened into buf.
static AI const float* row_in(Act a, long off, long n, float* buf) {
  if (a.dt == F32) return a.f() + off;
  widen(buf, a.p, a.dt, off, n);
  return buf;
}

// Where to compute elements [off, off + n) of an output: in place when f32, else buf (then row_out).
static AI float* row_at(Act a, long off, float* buf) { return a.dt == F32 ? a.f() + off : buf; }

static AI void row_out(Act a, long off, const float* buf, long n) {
  if (a.dt != F32) narrow(a.p, a.dt, off, buf, n);
}

struct Embed {
  Act out;
  const int32_t* ids;
  const void* table;
  int dtype;
  long C;
  float* dtable;
  Act dout;
  long N;
};

HOT void embed_fwd_task(void* c, long b, long e, int tid) {
  Embed& k = *(Embed*)c;
  float* buf = pool_scratch(tid, k.C);
  for (long n = b; n < e; n++) {
    float* o = row_at(k.out, n * k.C, buf);
    widen(o, k.table, k.dtype, (long)k.ids[n] * k.C, k.C);
    row_out(k.out, n * k.C, o, k.C);
  }
}

// Columns are split across threads so repeated ids never race.
HOT void embed_bwd_task(void* c, long b, long e, int tid) {
  Embed& k = *(Embed*)c;
  float* buf = pool_scratch(tid, e - b);
  for (long n = 0; n < k.N; n++) {
    float* d = k.dtable + (long)k.ids[n] * k.C + b;
    const float* g = row_in(k.dout, n * k.C + b, e - b, buf);
    for (long i = 0; i < e - b; i++) d[i] += g[i];
  }
}

struct Norm {
  Act out;
  float* rstd;
  Act inp;
  const float* w;
  long C;
  float eps;
  Act dout;
  float* dweight;
  long N;
};

HOT void rms_fwd_task(void* c, long b, long e, int tid) {
  Norm& k = *(Norm*)c;
  const long C = k.C;
  float* xb = pool_scratch(tid, 2 * C);
  for (long n = b; n < e; n++) {
    const float* x = row_in(k.inp, n * C, C, xb);
    float* o = row_at(k.out, n * C, xb + C);
    double rs = 1.0 / std::sqrt(dot_d(x, x, C) / (double)C + (double)k.eps);
    k.rstd[n] = (float)rs;
    for (long i = 0; i < C; i++) o[i] = (float)((double)x[i] * rs) * k.w[i];
    row_out(k.out, n * C, o, C);
  }
}

// dinp = rstd * w * dout - rstd^3 / C * inp * sum(w * dout * inp)
HOT void rms_bwd_task(void* c, long b, long e, int tid) {
  Norm& k = *(Norm*)c;
  const long C = k.C;
  float* wg = pool_scratch(tid, 4 * C);
  for (long n = b; n < e; n++) {
    const float* x = row_in(k.inp, n * C, C, wg + C);
    const float* g = row_in(k.dout, n * C, C, wg + 2 * C);
    float* dx = row_at(k.out, n * C, wg + 3 * C);
    float rs = k.rstd[n];
    for (long i = 0; i < C; i++) wg[i] = k.w[i] * g[i];
    float coef = (float)((double)rs * rs * rs * dot_d(wg, x, C) / (double)C);
    for (long i = 0; i < C; i++) dx[i] = rs * wg[i] - coef * x[i];
    row_out(k.out, n * C, dx, C);
  }
}

// dweight[c] += sum over rows of dout * inp * rstd, for a range of columns
HOT void rms_dw_task(void* c, long b, long e, int tid) {
  Norm& k = *(Norm*)c;
  const long m = e - b;
  float* acc = pool_scratch(tid, 3 * m);
  for (long i = 0; i < m; i++) acc[i] = 0;
  for (long n = 0; n < k.N; n++) {
    const float* x = row_in(k.inp, n * k.C + b, m, acc + m);
    const float* g = row_in(k.dout, n * k.C + b, m, acc + 2 * m);
    float rs = k.rstd[n];
    for (long i = 0; i < m; i++) acc[i] += g[i] * x[i] * rs;
  }
  for (long i = 0; i < m; i++) k.dweight[b + i] += acc[i];
}

struct Rope {
  Act x;
  const float* cos;
  const float* sin;
  long T, H, HD;
  float sign;
};

HOT void rope_task(void* c, long b, long e, int tid) {
  Rope& k = *(Rope*)c;
  const long half = k.HD / 2, W = k.H * k.HD;
  float* buf = pool_scratch(tid, W);
  for (long bt = b; bt < e; bt++) {
    const float* cs = k.cos + (bt % k.T) * half;
    const float* sn = k.sin + (bt % k.T) * half;
    float* row = row_at(k.x, bt * W, buf);
    if (k.x.dt != F32) widen(row, k.x.p, k.x.dt, bt * W, W);
    for (long h = 0; h < k.H; h++) {
      float* x1 = row + h * k.HD;
      float* x2 = x1 + half;
      for (long i = 0; i < half; i++) {
        float co = cs[i], s = k.sign * sn[i];
        float a = x1[i], bb = x2[i];
        x1[i] = a * co - bb * s;
        x2[i] = bb * co + a * s;
      }
    }
    row_out(k.x, bt * W, row, W);
  }
}

struct Swiglu {
  Act out, dup, gate, up, dout;
};

// In blocks of 256: f32 operands are used in place, 16-bit ones through stack buffers.
HOT void swiglu_fwd_task(void* c, long b, long e, int) {
  Swiglu& k = *(Swiglu*)c;
  float gb[256], ub[256], ob[256];
  for (long i0 = b; i0 < e; i0 += 256) {
    long n = lmin(256, e - i0);
    const float* g = row_in(k.gate, i0, n, gb);
    const float* u = row_in(k.up, i0, n, ub);
    float* o = row_at(k.out, i0, ob);
    for (long i = 0; i < n; i++) o[i] = g[i] / (1.f + fexp(-g[i])) * u[i];
    row_out(k.out, i0, o, n);
  }
}

HOT void swiglu_bwd_task(void* c, long b, long e, int) {
  Swiglu& k = *(Swiglu*)c;
  float gb[256], ub[256], db[256], ob[256], pb[256];
  for (long i0 = b; i0 < e; i0 += 256) {
    long n = lmin(256, e - i0);
    const float* g = row_in(k.gate, i0, n, gb);
    const float* u = row_in(k.up, i0, n, ub);
    const float* d = row_in(k.dout, i0, n, db);
    float* dg = row_at(k.out, i0, ob);
    float* du = row_at(k.dup, i0, pb);
    for (long i = 0; i < n; i++) {
      float x = g[i], sig = 1.f / (1.f + fexp(-x)), dy = d[i], ui = u[i];
      du[i] = dy * x * sig;
      dg[i] = dy * ui * sig * (1.f + x * (1.f - sig));
    }
    row_out(k.out, i0, dg, n);
    row_out(k.dup, i0, du, n);
  }
}

}  // namespace

void k_embedding_forward(Act out, const int32_t* ids, const void* table, int dtype, long N, long C) {
  Embed k{out, ids, table, dtype, C, nullptr, Act{nullptr, F32}, N};
  pool_run(N, pool_grain(N, C), embed_fwd_task, &k);
}

void k_embedding_backward(float* dtable, Act dout, const int32_t* ids, long N, long C) {
  Embed k{Act{nullptr, F32}, ids, nullptr, F32, C, dtable, dout, N};
  pool_run(C, pool_grain(C, N), embed_bwd_task, &k);
}

void k_rmsnorm_forward(Act out, float* rstd, Act inp, const void* w, int w_dtype, long N, long C, float eps) {
  Norm k{out, rstd, inp, weight_f32(w, w_dtype, C), C, eps, Act{nullptr, F32}, nullptr, N};
  pool_run(N, pool_grain(N, C), rms_fwd_task, &k);
}

void k_rmsnorm_backward(Act dinp, float* dweight, Act dout, Act inp, const void* w, int w_dtype, const float* rstd, long N,
                        long C) {
  Norm k{dinp, const_cast<float*>(rstd), inp, weight_f32(w, w_dtype, C), C, 0, dout, dweight, N};
  pool_run(N, pool_grain(N, C), rms_bwd_task, &k);
  if (dweight) pool_run(C, pool_grain(C, N), rms_dw_task, &k);
}

void k_rope(Act x, const float* cos, const float* sin, long B, long T, long H, long HD, bool inverse) {
  Rope k{x, cos, sin, T, H, HD, inverse ? -1.f : 1.f};
  pool_run(B * T, pool_grain(B * T, H * HD), rope_task, &k);
}

void k_swiglu_forward(Act out, Act gate, Act up, long n) {
  Swiglu k{out, Act{nullptr, F32}, gate, up, Act{nullptr, F32}};
  pool_run(n, pool_grain(n, 4), swiglu_fwd_task, &k);
}

void k_swiglu_backward(Act dgate, Act dup, Act dout, Act gate, Act up, long n) {
  Swiglu k{dgate, dup, gate, up, dout};
  pool_run(n, pool_grain(n, 4), swiglu_bwd_task, &k);
}

// Embedding lookup, RMSNorm, rotary embedding and SwiGLU, forward and backward. Rows are split
// across the pool; weights stored as bf16/f16 are widened to float32 once per call.
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

struct Embed {
  float* out;
  const int32_t* ids;
  const void* table;
  int dtype;
  long C;
  float* dtable;
  const float* dout;
  long N;
};

HOT void embed_fwd_task(void* c, long b, long e, int) {
  Embed& k = *(Embed*)c;
  for (long n = b; n < e; n++) widen(k.out + n * k.C, k.table, k.dtype, (long)k.ids[n] * k.C, k.C);
}

// Columns are split across threads so repeated ids never race.
HOT void embed_bwd_task(void* c, long b, long e, int) {
  Embed& k = *(Embed*)c;
  for (long n = 0; n < k.N; n++) {
    float* d = k.dtable + (long)k.ids[n] * k.C;
    const float* g = k.dout + n * k.C;
    for (long i = b; i < e; i++) d[i] += g[i];
  }
}

struct Norm {
  float* out;
  float* rstd;
  const float* inp;
  const float* w;
  long C;
  float eps;
  const float* dout;
  float* dweight;
  long N;
};

HOT void rms_fwd_task(void* c, long b, long e, int) {
  Norm& k = *(Norm*)c;
  const long C = k.C;
  for (long n = b; n < e; n++) {
    const float* x = k.inp + n * C;
    float* o = k.out + n * C;
    double rs = 1.0 / std::sqrt(dot_d(x, x, C) / (double)C + (double)k.eps);
    k.rstd[n] = (float)rs;
    for (long i = 0; i < C; i++) o[i] = (float)((double)x[i] * rs) * k.w[i];
  }
}

// dinp = rstd * w * dout - rstd^3 / C * inp * sum(w * dout * inp)
HOT void rms_bwd_task(void* c, long b, long e, int tid) {
  Norm& k = *(Norm*)c;
  const long C = k.C;
  float* wg = pool_scratch(tid, C);
  for (long n = b; n < e; n++) {
    const float* x = k.inp + n * C;
    const float* g = k.dout + n * C;
    float* dx = k.out + n * C;
    float rs = k.rstd[n];
    for (long i = 0; i < C; i++) wg[i] = k.w[i] * g[i];
    float coef = (float)((double)rs * rs * rs * dot_d(wg, x, C) / (double)C);
    for (long i = 0; i < C; i++) dx[i] = rs * wg[i] - coef * x[i];
  }
}

// dweight[c] += sum over rows of dout * inp * rstd, for a range of columns
HOT void rms_dw_task(void* c, long b, long e, int tid) {
  Norm& k = *(Norm*)c;
  float* acc = pool_scratch(tid, e - b);
  for (long i = 0; i < e - b; i++) acc[i] = 0;
  for (long n = 0; n < k.N; n++) {
    const float* x = k.inp + n * k.C + b;
    const float* g = k.dout + n * k.C + b;
    float rs = k.rstd[n];
    for (long i = 0; i < e - b; i++) acc[i] += g[i] * x[i] * rs;
  }
  for (long i = 0; i < e - b; i++) k.dweight[b + i] += acc[i];
}

struct Rope {
  float* x;
  const float* cos;
  const float* sin;
  long T, H, HD;
  float sign;
};

HOT void rope_task(void* c, long b, long e, int) {
  Rope& k = *(Rope*)c;
  const long half = k.HD / 2;
  for (long bt = b; bt < e; bt++) {
    const float* cs = k.cos + (bt % k.T) * half;
    const float* sn = k.sin + (bt % k.T) * half;
    for (long h = 0; h < k.H; h++) {
      float* x1 = k.x + (bt * k.H + h) * k.HD;
      float* x2 = x1 + half;
      for (long i = 0; i < half; i++) {
        float co = cs[i], s = k.sign * sn[i];
        float a = x1[i], bb = x2[i];
        x1[i] = a * co - bb * s;
        x2[i] = bb * co + a * s;
      }
    }
  }
}

struct Swiglu {
  float* out;
  float* dup;
  const float* gate;
  const float* up;
  const float* dout;
};

HOT void swiglu_fwd_task(void* c, long b, long e, int) {
  Swiglu& k = *(Swiglu*)c;
  for (long i = b; i < e; i++) {
    float x = k.gate[i];
    k.out[i] = x / (1.f + fexp(-x)) * k.up[i];
  }
}

HOT void swiglu_bwd_task(void* c, long b, long e, int) {
  Swiglu& k = *(Swiglu*)c;
  for (long i = b; i < e; i++) {
    float x = k.gate[i];
    float sig = 1.f / (1.f + fexp(-x));
    float dy = k.dout[i];
    k.dup[i] = dy * x * sig;
    k.out[i] = dy * k.up[i] * sig * (1.f + x * (1.f - sig));
  }
}

}  // namespace

void k_embedding_forward(float* out, const int32_t* ids, const void* table, int dtype, long N, long C) {
  Embed k{out, ids, table, dtype, C, nullptr, nullptr, N};
  pool_run(N, pool_grain(N, C), embed_fwd_task, &k);
}

void k_embedding_backward(float* dtable, const float* dout, const int32_t* ids, long N, long C) {
  Embed k{nullptr, ids, nullptr, F32, C, dtable, dout, N};
  pool_run(C, pool_grain(C, N), embed_bwd_task, &k);
}

void k_rmsnorm_forward(float* out, float* rstd, const float* inp, const void* w, int w_dtype, long N, long C, float eps) {
  Norm k{out, rstd, inp, weight_f32(w, w_dtype, C), C, eps, nullptr, nullptr, N};
  pool_run(N, pool_grain(N, C), rms_fwd_task, &k);
}

void k_rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const void* w, int w_dtype,
                        const float* rstd, long N, long C) {
  Norm k{dinp, const_cast<float*>(rstd), inp, weight_f32(w, w_dtype, C), C, 0, dout, dweight, N};
  pool_run(N, pool_grain(N, C), rms_bwd_task, &k);
  if (dweight) pool_run(C, pool_grain(C, N), rms_dw_task, &k);
}

void k_rope(float* x, const float* cos, const float* sin, long B, long T, long H, long HD, bool inverse) {
  Rope k{x, cos, sin, T, H, HD, inverse ? -1.f : 1.f};
  pool_run(B * T, pool_grain(B * T, H * HD), rope_task, &k);
}

void k_swiglu_forward(float* out, const float* gate, const float* up, long n) {
  Swiglu k{out, nullptr, gate, up, nullptr};
  pool_run(n, pool_grain(n, 4), swiglu_fwd_task, &k);
}

void k_swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, long n) {
  Swiglu k{dgate, dup, gate, up, dout};
  pool_run(n, pool_grain(n, 4), swiglu_bwd_task, &k);
}

// Per-output-feature kernels (DoRA's magnitude scaling and its gradient): a vector of OC factors applied to,
// or reduced over, the columns of an (N, OC) activation. Rows are split across the pool for the scaling;
// the reduction splits columns, each thread summing its columns over all rows in double as the js backend does.
#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

struct ScaleColumns {
  Act out, inp;
  const float* scale;
  Act bias;
  long OC;
};

HOT void scale_columns_task(void* c, long b, long e, int tid) {
  const ScaleColumns& k = *(const ScaleColumns*)c;
  float* x = pool_scratch(tid, (size_t)k.OC);
  float* bias = k.bias.p ? pool_scratch2(tid, (size_t)k.OC) : nullptr;
  if (bias) widen(bias, k.bias.p, k.bias.dt, 0, k.OC);
  for (long row = b; row < e; row++) {
    widen(x, k.inp.p, k.inp.dt, row * k.OC, k.OC);
    for (long o = 0; o < k.OC; o++) x[o] = x[o] * k.scale[o] + (bias ? bias[o] : 0.0f);
    narrow(k.out.p, k.out.dt, row * k.OC, x, k.OC);
  }
}

struct ColumnDot {
  float* out;
  const float* a;
  const float* b;
  const float* scale;
  long N, OC;
};

HOT void column_dot_task(void* c, long b, long e, int) {
  const ColumnDot& k = *(const ColumnDot*)c;
  for (long o = b; o < e; o++) {
    double sum = 0;
    for (long i = 0; i < k.N; i++) sum += (double)k.a[i * k.OC + o] * (double)k.b[i * k.OC + o];
    k.out[o] += (float)((double)k.scale[o] * sum);
  }
}

}  // namespace

void k_scale_columns(Act out, Act inp, const float* scale, Act bias, long N, long OC) {
  ScaleColumns k{out, inp, scale, bias, OC};
  pool_run(N, pool_grain(N, OC), scale_columns_task, &k);
}

void k_column_dot(float* out, const float* a, const float* b, const float* scale, long N, long OC) {
  ColumnDot k{out, a, b, scale, N, OC};
  pool_run(OC, pool_grain(OC, N), column_dot_task, &k);
}

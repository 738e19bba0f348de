// nn.Linear forward and backward on gemm() (matvec() for a few rows): out = inp @ weight^T + bias, and the
// input, weight and bias gradients. The weight may be stored as bf16/f16 or quantized (w then points at its
// QuantDesc: 4-bit weights are dequantized tile by tile into the same paths, int8 ones run LLM.int8); everything
// else is float32.
#include "../pool.h"
#include "gemm.h"
#include "matvec.h"
#include "kernels.h"
#include "quant.h"
#include "simd.h"

namespace {

struct Bias {
  float* out;
  const float* bias;
  long OC;
  const float* dout;
  float* dbias;
  long N;
};

HOT void bias_rows_task(void* c, long b, long e, int) {
  Bias& k = *(Bias*)c;
  for (long n = b; n < e; n++) memcpy(k.out + n * k.OC, k.bias, k.OC * sizeof(float));
}

// dbias[oc] += column sums of dout, for a range of columns
HOT void bias_grad_task(void* c, long b, long e, int tid) {
  Bias& k = *(Bias*)c;
  float* acc = pool_scratch(tid, e - b);
  for (long i = 0; i < e - b; i++) acc[i] = 0;
  for (long n = 0; n < k.N; n++) {
    const float* g = k.dout + n * k.OC + b;
    for (long i = 0; i < e - b; i++) acc[i] += g[i];
  }
  for (long i = 0; i < e - b; i++) k.dbias[b + i] += acc[i];
}

}  // namespace

void k_matmul_forward(float* out, const float* inp, const void* w, int w_dtype, const void* bias, int bias_dtype, long N,
                      long C, long OC) {
  float* b32 = nullptr;
  if (bias) {
    b32 = pool_scratch2(0, OC);
    widen(b32, bias, bias_dtype, 0, OC);
  }
  if (w_dtype == Q_INT8) {
    int8_matmul_forward(out, inp, *(const QuantDesc*)w, b32, N, C, OC);
    return;
  }
  if (N <= kMatvecRows) {
    if (is_quant(w_dtype))
      matvec_quant(out, inp, *(const QuantDesc*)w, b32, N, C, OC);
    else
      matvec(out, inp, w, w_dtype, b32, N, C, OC);
    return;
  }
  if (bias) {
    Bias k{out, b32, OC, nullptr, nullptr, N};
    pool_run(N, pool_grain(N, OC), bias_rows_task, &k);
  }
  gemm(N, OC, C, Operand{inp, F32, C, false}, Operand{w, w_dtype, C, true}, bias != nullptr, out, OC);
}

void k_matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const void* w,
                       int w_dtype, long N, long C, long OC) {
  if (dinp) gemm(N, C, OC, Operand{dout, F32, OC, false}, Operand{w, w_dtype, C, false}, false, dinp, C);
  if (dweight) gemm(OC, C, N, Operand{dout, F32, OC, true}, Operand{inp, F32, C, false}, true, dweight, C);
  if (dbias) {
    Bias k{nullptr, nullptr, OC, dout, dbias, N};
    pool_run(OC, pool_grain(OC, N), bias_grad_task, &k);
  }
}

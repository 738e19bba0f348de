// nn.Linear forward and backward on gemm() (matvec() for a few rows): out = inp @ weight^T + bias, and the
// input, weight and bias gradients. The weight may be stored as bf16/f16 or quantized (w then points at its
// QuantDesc: 4-bit weights are dequantized tile by tile into the same paths, int8 ones run LLM.int8). out, inp,
// dout and dinp may be 16-bit: a 16-bit out or dinp is computed in float32 row chunks and rounded once (staged);
// dweight and dbias are float32. In the bf16 compute mode (gemm.h) a bf16 weight's products (out and dinp) take the
// input rounded to bf16 and sum in float32; a bf16 input already is, so on an AVX512_BF16 CPU it takes that path too.
#include <vector>

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
  Act dout;
  float* dbias;
  long N;
};

const long kStage = 1L << 22;  // floats of a staged output (and input) chunk
std::vector<float> stage_out, stage_inp;
std::vector<uint16_t> stage_bf16;

// Whether a product with weight dtype w_dtype and input dtype x_dtype runs in bf16 dot products: a bf16 weight in
// the bf16 compute mode, or a bf16 weight times a bf16 input on an AVX512_BF16 CPU (exact products: the float32
// path's result up to summation order).
bool products_in_bf16(int w_dtype, int x_dtype) {
  return w_dtype == BF16 && (gemm_bf16_compute() || (x_dtype == BF16 && gemm_bf16_available()));
}

float* grow(std::vector<float>& v, long n) {
  if ((long)v.size() < n) v.resize(n);
  return v.data();
}

// Element `off` of an activation, as a pointer of its dtype.
Act at(Act a, long off) { return Act{(char*)a.p + off * (a.dt == F32 ? 4 : 2), a.dt}; }

HOT void bias_rows_task(void* c, long b, long e, int) {
  Bias& k = *(Bias*)c;
  for (long n = b; n < e; n++) memcpy(k.out + n * k.OC, k.bias, k.OC * sizeof(float));
}

// dbias[oc] += column sums of dout, for a range of columns
HOT void bias_grad_task(void* c, long b, long e, int tid) {
  Bias& k = *(Bias*)c;
  float* acc = pool_scratch(tid, 2 * (e - b));
  float* row = acc + (e - b);
  for (long i = 0; i < e - b; i++) acc[i] = 0;
  for (long n = 0; n < k.N; n++) {
    widen(row, k.dout.p, k.dout.dt, n * k.OC + b, e - b);
    for (long i = 0; i < e - b; i++) acc[i] += row[i];
  }
  for (long i = 0; i < e - b; i++) k.dbias[b + i] += acc[i];
}

}  // namespace

void k_matmul_forward(Act out, Act inp, const void* w, int w_dtype, const void* bias, int bias_dtype, long N, long C,
                      long OC) {
  // a packed bf16 weight's bf16 products: its own kernel at any N (in float32 products it is read as quantized)
  bool packed = w_dtype == Q_BF16_PACKED && (inp.dt == BF16 || gemm_bf16_compute());
  bool bf16_products = packed || products_in_bf16(w_dtype, inp.dt);
  bool by_rows = packed || N <= (bf16_products ? kMatvecBf16Rows : kMatvecRows);  // the matvec, not the GEMM
  bool reads_f32 = w_dtype == Q_INT8 || (by_rows && !bf16_products);  // paths whose inp must be float32
  if (out.dt != F32 || (inp.dt != F32 && reads_f32)) {
    long mc = lmin(N, lmax(1, kStage / lmax(1, lmax(C, OC))));
    float* o = grow(stage_out, mc * OC);
    float* x = inp.dt != F32 && reads_f32 ? grow(stage_inp, mc * C) : nullptr;
    for (long m0 = 0; m0 < N; m0 += mc) {
      long n = lmin(mc, N - m0);
      if (x) k_convert(x, F32, at(inp, m0 * C).p, inp.dt, n * C);
      k_matmul_forward(Act{o, F32}, x ? Act{x, F32} : at(inp, m0 * C), w, w_dtype, bias, bias_dtype, n, C, OC);
      k_convert(at(out, m0 * OC).p, out.dt, o, F32, n * OC);
    }
    return;
  }
  float* b32 = nullptr;
  if (bias) {
    b32 = pool_scratch2(0, OC);
    widen(b32, bias, bias_dtype, 0, OC);
  }
  if (w_dtype == Q_INT8) {
    int8_matmul_forward(out.f(), inp.f(), *(const QuantDesc*)w, b32, N, C, OC);
    return;
  }
  if (by_rows) {
    if (bf16_products) {
      const uint16_t* x = (const uint16_t*)inp.p;
      if (inp.dt != BF16) {  // the bf16 compute mode: the input rounded to bf16
        stage_bf16.resize(N * C);
        k_convert(stage_bf16.data(), BF16, inp.p, inp.dt, N * C);
        x = stage_bf16.data();
      }
      if (packed)
        matvec_packed(out.f(), x, *(const QuantDesc*)w, b32, N);
      else
        matvec_bf16(out.f(), x, (const uint16_t*)w, b32, N, C, OC);
    } else if (is_quant(w_dtype)) {
      matvec_quant(out.f(), inp.f(), *(const QuantDesc*)w, b32, N, C, OC);
    } else {
      matvec(out.f(), inp.f(), w, w_dtype, b32, N, C, OC);
    }
    return;
  }
  if (bias) {
    Bias k{out.f(), b32, OC, Act{nullptr, F32}, nullptr, N};
    pool_run(N, pool_grain(N, OC), bias_rows_task, &k);
  }
  gemm(N, OC, C, Operand{inp.p, inp.dt, C, false}, Operand{w, w_dtype, C, true}, bias != nullptr, out.f(), OC, bf16_products);
}

void k_matmul_backward(Act dinp, float* dweight, float* dbias, Act dout, Act inp, const void* w, int w_dtype, long N, long C,
                       long OC) {
  bool bf16_products = products_in_bf16(w_dtype, dout.dt);
  if (dinp.p && dinp.dt == F32) {
    gemm(N, C, OC, Operand{dout.p, dout.dt, OC, false}, Operand{w, w_dtype, C, false}, false, dinp.f(), C, bf16_products);
  } else if (dinp.p) {
    long mc = lmin(N, lmax(1, kStage / lmax(1, C)));
    float* d = grow(stage_out, mc * C);
    for (long m0 = 0; m0 < N; m0 += mc) {
      long n = lmin(mc, N - m0);
      gemm(n, C, OC, Operand{at(dout, m0 * OC).p, dout.dt, OC, false}, Operand{w, w_dtype, C, false}, false, d, C, bf16_products);
      k_convert(at(dinp, m0 * C).p, dinp.dt, d, F32, n * C);
    }
  }
  if (dweight) gemm(OC, C, N, Operand{dout.p, dout.dt, OC, true}, Operand{inp.p, inp.dt, C, false}, true, dweight, C);
  if (dbias) {
    Bias k{nullptr, nullptr, OC, dout, dbias, N};
    pool_run(OC, pool_grain(OC, N), bias_grad_task, &k);
  }
}

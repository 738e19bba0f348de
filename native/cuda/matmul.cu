// Linear layers on cuBLASLt, plus a warp-per-output GEMV for N <= 4 rows (batch-1 decoding reads each
// weight once at full bandwidth, in exact float32 arithmetic).
// Precision: PREC_F32 widens half weights to float32 and runs IEEE float32 GEMMs (tight parity with js).
// PREC_BF16 rounds the f32 input to the weight's own 16-bit type and runs bf16/f16 tensor-core GEMMs with
// float32 accumulation; products of two f32 operands (LoRA A/B, weight gradients, f32 weights) use TF32.
#include "cublaslt.cuh"
#include "device.cuh"
#include "matmul.cuh"
#include "ops.cuh"

namespace {

constexpr long kGemvRows = 4;

// The 16-bit copy of a forward input kept in SLOT_CONVERTED.
struct Converted {
  const void* src = nullptr;
  size_t n = 0;
  int dtype = F32;
  const void* copy = nullptr;
} cached;

template <int DT>
__device__ __forceinline__ float weight_at(const void* w, size_t i) {
  if (DT == F32) return ((const float*)w)[i];
  uint16_t h = ((const uint16_t*)w)[i];
  return DT == BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// One warp per output feature oc: out[r, oc] = sum_c x[r, c] * w[oc, c] (+ bias[oc]) for the R rows.
// `vec`: rows of w and x start 16-byte aligned, so each lane reads 16 bytes of weights at a time.
template <int R, int DT>
__global__ void k_gemv(float* out, const float* x, const void* w, const void* bias, int bias_dtype, long C, long OC, bool vec) {
  long oc = blockIdx.x * 8L + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (oc >= OC) return;
  float acc[R] = {};
  size_t row = (size_t)oc * C;
  if (vec) {
    constexpr int E = DT == F32 ? 4 : 8;  // weights per 16 bytes
    for (long c0 = (long)lane * E; c0 < C; c0 += 32L * E) {
      float wv[E];
      uint4 raw = *(const uint4*)((const char*)w + (row + c0) * (DT == F32 ? 4 : 2));
      if (DT == F32) {
        const float* f = (const float*)&raw;
        for (int e = 0; e < E; e++) wv[e] = f[e];
      } else {
        const uint16_t* h = (const uint16_t*)&raw;
        for (int e = 0; e < E; e++) wv[e] = DT == BF16 ? bf16_to_f32(h[e]) : f16_to_f32(h[e]);
      }
      for (int r = 0; r < R; r++) {
        for (int e = 0; e < E; e += 4) {
          float4 xv = *(const float4*)(x + r * C + c0 + e);
          acc[r] += xv.x * wv[e] + xv.y * wv[e + 1] + xv.z * wv[e + 2] + xv.w * wv[e + 3];
        }
      }
    }
  } else {
    for (long c = lane; c < C; c += 32) {
      float wv = weight_at<DT>(w, row + c);
      for (int r = 0; r < R; r++) acc[r] += x[r * C + c] * wv;
    }
  }
  for (int r = 0; r < R; r++) {
    float s = warp_sum(acc[r]);
    if (lane == 0) out[r * OC + oc] = s + (bias ? load_f(bias, bias_dtype, oc) : 0.0f);
  }
}

template <int R>
void launch_gemv(float* out, const float* x, const void* w, int w_dtype, const void* bias, int bias_dtype, long C, long OC) {
  size_t bytes = dtype_bytes(w_dtype);
  bool vec = (uintptr_t)w % 16 == 0 && (uintptr_t)x % 16 == 0 && (C * bytes) % 16 == 0 && C % 4 == 0;
  unsigned grid = (unsigned)((OC + 7) / 8);
  if (w_dtype == F32) k_gemv<R, F32><<<grid, 256, 0, stream()>>>(out, x, w, bias, bias_dtype, C, OC, vec);
  else if (w_dtype == BF16) k_gemv<R, BF16><<<grid, 256, 0, stream()>>>(out, x, w, bias, bias_dtype, C, OC, vec);
  else k_gemv<R, F16><<<grid, 256, 0, stream()>>>(out, x, w, bias, bias_dtype, C, OC, vec);
  LAUNCH_CHECK("matmulForward (gemv)");
}

__global__ void k_add_bias(float* out, const void* bias, int bias_dtype, long OC, size_t n) {
  GRID_STRIDE(i, n) out[i] += load_f(bias, bias_dtype, i % OC);
}

cudaDataType_t cuda_type(int dtype) { return dtype == BF16 ? CUDA_R_16BF : dtype == F16 ? CUDA_R_16F : CUDA_R_32F; }

// x (n floats) rounded to dtype in a scratch slot; the forward input's copy is kept until its source changes.
const void* rounded(const float* x, size_t n, int dtype, bool keep) {
  if (keep && cached.src == x && cached.n == n && cached.dtype == dtype) return cached.copy;
  void* copy = scratch(keep ? SLOT_CONVERTED : SLOT_INPUT, n * 2);
  op_convert(copy, dtype, x, F32, n);
  if (keep) cached = {x, n, dtype, copy};
  return copy;
}

const float* widened(const void* w, int w_dtype, size_t n) {
  float* wide = (float*)scratch(SLOT_WEIGHT, n * 4);
  op_convert(wide, F32, w, w_dtype, n);
  return wide;
}

// The weight operand and the cuBLAS type for a product of weight (any dtype) with an f32 activation x.
struct Operands {
  const void* w;
  const void* x;
  cudaDataType_t type;
  bool tf32;
};

Operands operands(const void* w, int w_dtype, size_t w_n, const float* x, size_t x_n, int precision, bool keep) {
  if (w_dtype == F32) return {w, x, CUDA_R_32F, precision == PREC_BF16};
  if (precision == PREC_F32) return {widened(w, w_dtype, w_n), x, CUDA_R_32F, false};
  return {w, rounded(x, x_n, w_dtype, keep), cuda_type(w_dtype), false};
}

}  // namespace

void invalidate_conversions(const void* p, size_t bytes) {
  if (!cached.src) return;
  const char *a = (const char*)p, *s = (const char*)cached.src;
  if (a < s + cached.n * 4 && s < a + bytes) cached = {};
}

void op_matmul_forward(float* out, const float* inp, const void* w, int w_dtype, const void* bias, int bias_dtype, long N, long C,
                       long OC, int precision) {
  if (N == 0 || OC == 0) return;
  switch (N <= kGemvRows ? N : 0) {
    case 1: return launch_gemv<1>(out, inp, w, w_dtype, bias, bias_dtype, C, OC);
    case 2: return launch_gemv<2>(out, inp, w, w_dtype, bias, bias_dtype, C, OC);
    case 3: return launch_gemv<3>(out, inp, w, w_dtype, bias, bias_dtype, C, OC);
    case 4: return launch_gemv<4>(out, inp, w, w_dtype, bias, bias_dtype, C, OC);
  }
  // column-major view: out^T (OC x N) = W (C x OC)^T . inp^T (C x N)
  Operands o = operands(w, w_dtype, (size_t)OC * C, inp, (size_t)N * C, precision, true);
  gemm(true, false, OC, N, C, o.w, C, o.x, C, o.type, o.tf32, out, OC, 0.0f);
  if (bias) {
    k_add_bias<<<grid_for((size_t)N * OC), 256, 0, stream()>>>(out, bias, bias_dtype, OC, (size_t)N * OC);
    LAUNCH_CHECK("matmulForward (bias)");
  }
}

void op_matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const void* w, int w_dtype,
                        long N, long C, long OC, int precision) {
  if (dinp) {
    // dinp^T (C x N) = W (C x OC) . dout^T (OC x N)
    Operands o = operands(w, w_dtype, (size_t)OC * C, dout, (size_t)N * OC, precision, false);
    gemm(false, false, C, N, OC, o.w, C, o.x, OC, o.type, o.tf32, dinp, C, 0.0f);
  }
  // dweight^T (C x OC) += inp^T (C x N) . dout (N x OC)
  if (dweight) gemm(false, true, C, OC, N, inp, C, dout, OC, CUDA_R_32F, precision == PREC_BF16, dweight, C, 1.0f);
  if (dbias) op_column_sums(dbias, dout, nullptr, nullptr, nullptr, N, OC);
}

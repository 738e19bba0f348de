// Which GEMM the linear layers use: a table by B's dtype and shape class (gemm.h), set by JavaScript from
// measurements; ALPACA_CPU_GEMM=own|openblas (or the addon's setGemm) sets every entry, e.g. to test both.
// A 16-bit A is widened into float32 panels of rows first.
#include "gemm.h"

#include <cstring>
#include <string>
#include <vector>

#include "../pool.h"
#include "half.h"
#include "simd.h"

namespace {

const int kDtypes = 3;  // table rows: F32, BF16 (and quantized), F16
bool blas_default = gemm_blas_preferred();
bool use_blas[kDtypes][2] = {{blas_default, blas_default}, {blas_default, blas_default}, {blas_default, blas_default}};

bool bf16_compute = false;

int table_row(int dtype) { return dtype == F32 ? 0 : dtype == F16 ? 2 : 1; }
std::vector<float> a_panel;
const long kPanel = 1L << 21;  // floats of A widened at once

struct WidenRows {
  float* dst;
  long dst_ld;
  const void* src;
  int dtype;
  long off, src_ld, cols;
};

HOT void widen_rows_task(void* c, long b, long e, int) {
  const WidenRows& k = *(const WidenRows*)c;
  for (long r = b; r < e; r++) widen(k.dst + r * k.dst_ld, k.src, k.dtype, k.off + r * k.src_ld, k.cols);
}

// kernel: 0 own, 1 OpenBLAS, 2 the bf16 compute mode
void gemm_f32(int kernel, long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  if (kernel == 2)
    gemm_bf16(M, N, K, A, B, accumulate, C, ldc);
  else if (kernel == 1)
    gemm_blas(M, N, K, A, B, accumulate, C, ldc);
  else
    gemm_own(M, N, K, A, B, accumulate, C, ldc);
}

}  // namespace

void widen_rows(float* dst, long dst_ld, const void* src, int dtype, long off, long src_ld, long rows, long cols) {
  WidenRows k{dst, dst_ld, src, dtype, off, src_ld, cols};
  pool_run(rows, pool_grain(rows, cols), widen_rows_task, &k);
}

bool gemm_blas_preferred() {
  return gemm_blas_available() && (strcmp(gemm_own_isa(), "avx512") != 0 || gemm_blas_avx512());
}

const char* gemm_select(bool prefer_blas, int dtype, int cls) {
  bool blas = prefer_blas && gemm_blas_available();
  if (dtype >= 0) {
    use_blas[table_row(dtype)][cls] = blas;
  } else {
    for (auto& row : use_blas) row[0] = row[1] = blas;
  }
  return blas ? "openblas" : "own";
}

bool gemm_set_bf16_compute(bool on) { return bf16_compute = on && gemm_bf16_available(); }

bool gemm_bf16_compute() { return bf16_compute; }

const char* gemm_name() {
  int n = 0;
  for (auto& row : use_blas) n += row[0] + row[1];
  return n == 0 ? "own" : n == 2 * kDtypes ? "openblas" : "mixed";
}

const char* gemm_table() {
  static std::string s;
  s.clear();
  const char* names[kDtypes] = {"f32", "bf16", "f16"};
  for (int r = 0; r < kDtypes; r++) {
    s += std::string(r ? ", " : "") + names[r] + (use_blas[r][0] ? " openblas/" : " own/") + (use_blas[r][1] ? "openblas" : "own");
  }
  return s.c_str();
}

// Rows [m0, m0 + mc) of a 16-bit A: stored rows, or stored columns when A is transposed (stored (K, M)).
void gemm(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc, bool bf16_products) {
  int kernel = bf16_products && B.dtype == BF16 ? 2 : use_blas[table_row(B.dtype)][lmin(M, lmin(N, K)) <= kSkinny ? G_SKINNY : G_LARGE];
  bool a_direct = A.dtype == F32 || (kernel == 2 && A.dtype == BF16);  // gemm_bf16 reads bf16 A as it packs
  if (a_direct || M <= 0 || N <= 0 || K <= 0) return gemm_f32(kernel, M, N, K, A, B, accumulate, C, ldc);
  long mc = lmin(M, lmax(1, kPanel / K));
  if ((long)a_panel.size() < mc * K) a_panel.resize(mc * K);
  float* buf = a_panel.data();
  for (long m0 = 0; m0 < M; m0 += mc) {
    long n = lmin(mc, M - m0);
    if (A.trans)
      widen_rows(buf, n, A.p, A.dtype, m0, A.ld, K, n);
    else
      widen_rows(buf, K, A.p, A.dtype, m0 * A.ld, A.ld, n, K);
    gemm_f32(kernel, n, N, K, Operand{buf, F32, A.trans ? n : K, A.trans}, B, accumulate, C + m0 * ldc, ldc);
  }
}

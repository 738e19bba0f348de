// General matrix multiply for the linear layers: C (M, N) = A (M, K) B (K, N), or C += that.
// Float32 compute; B may be stored as bf16/f16 or quantized (weights), A as f32, bf16 or f16 (activations),
// C is float32. Not a full BLAS.
#pragma once

// A logical (rows, cols) matrix: element (r, c) at p[trans ? c * ld + r : r * ld + c]. A quantized B (dtype a
// QuantType of quant.h) has p pointing at its QuantDesc and is dequantized as it is packed.
struct Operand {
  const void* p;
  int dtype;
  long ld;
  bool trans;
};

// bf16_products: a linear layer's product with its bf16 weight B in bf16 dot products (gemm_bf16); matmul.cpp decides.
void gemm(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc, bool bf16_products = false);

// Widens rows [0, rows) of `cols` elements: dst[r * dst_ld ..] = float32 of src[off + r * src_ld ..] (pooled).
void widen_rows(float* dst, long dst_ld, const void* src, int dtype, long off, long src_ld, long rows, long cols);

// The addon's own blocked kernel (gemm-own.cpp) and OpenBLAS's sgemm (gemm-blas.cpp): A float32 only.
void gemm_own(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc);
void gemm_blas(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc);

// bf16 products, float32 accumulation (gemm-bf16.cpp): A float32 (rounded to bf16) or bf16, B bf16; AVX512_BF16 only.
// The linear layers take it in the bf16 compute mode and for a bf16 A (exact products, see matmul.cpp).
void gemm_bf16(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc);
bool gemm_bf16_available();
// Whether linear layers with bf16 weights compute in bf16 (else float32, the default); false when unavailable.
bool gemm_set_bf16_compute(bool on);
bool gemm_bf16_compute();

bool gemm_blas_available();
// Whether OpenBLAS runs AVX-512 kernels (its core type is chosen at load, e.g. by OPENBLAS_CORETYPE).
bool gemm_blas_avx512();
// OpenBLAS's build line ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."), or "" without it.
const char* gemm_blas_config();

// The kernel a GEMM takes is looked up by B's storage (f32; bf16 or quantized; f16) and shape class: skinny
// when some dimension is at most kSkinny (LoRA's rank-r products, short prompts), else large.
enum GemmClass { G_LARGE = 0, G_SKINNY = 1 };
const long kSkinny = 64;
// Chooses OpenBLAS (when built with it) or the own kernel for B dtype `dtype` (F32, BF16, F16) and class `cls`,
// or for every entry when dtype < 0; returns the kernel that entry (the first, for all) now uses.
const char* gemm_select(bool prefer_blas, int dtype = -1, int cls = -1);
// The default for every entry until JavaScript sets a measured choice (src/backends/native/cpu-gemm-choice.ts):
// OpenBLAS, unless the own kernel has AVX-512 here and OpenBLAS does not.
bool gemm_blas_preferred();
// "openblas" or "own" when every entry uses it, else "mixed".
const char* gemm_name();
// The table, e.g. "f32 own/openblas, bf16 own/own, f16 own/own" (large/skinny per storage dtype).
const char* gemm_table();
// The SIMD width the own kernel runs with: "avx512", "avx2" or "generic".
const char* gemm_own_isa();

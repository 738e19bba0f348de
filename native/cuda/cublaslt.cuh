// Matrix products through cuBLASLt, which is loaded at run time (dlopen): the addon builds without the
// cuBLAS headers or library, and on a machine without them the backend reports why it is unavailable.
#pragma once
#include <library_types.h>

#include <string>

#include "common.cuh"

std::string cublaslt_load();             // "" or why libcublasLt could not be loaded
void cublaslt_init(cudaStream_t stream);  // handle and workspace; after cublaslt_load succeeded

// D (m x n, column-major, leading dimension ldd, float32) = op(A) op(B) + beta * D, op transposing when
// its flag is set. A and B share ab_type (CUDA_R_32F, CUDA_R_16BF or CUDA_R_16F); products accumulate in
// float32. tf32 lets float32 inputs run on tensor cores rounded to TF32 (ignored for 16-bit inputs).
void gemm(bool trans_a, bool trans_b, long m, long n, long k, const void* A, long lda, const void* B, long ldb,
          cudaDataType_t ab_type, bool tf32, float* D, long ldd, float beta);

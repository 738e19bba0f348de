// Shared by every .cu file of the CUDA backend: dtype codes, float <-> 16-bit conversions (the same bits
// as src/engine/dtype.ts), reductions, launch sizes and error checks. No kernels and no state of its own.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

enum DType { F32 = 0, BF16 = 1, F16 = 2, I32 = 3 };

// How matmuls and attention round their inputs (the Backend's f32 activations are never stored rounded).
enum Precision {
  PREC_F32 = 0,   // IEEE float32 products everywhere: parity and golden tests
  PREC_BF16 = 1,  // 16-bit tensor cores for half weights and attention, TF32 for f32 x f32 products
};

inline size_t dtype_bytes(int dtype) { return dtype == BF16 || dtype == F16 ? 2 : 4; }

void check_cuda(cudaError_t err, const char* what);
#define CUDA_CHECK(call) check_cuda((call), #call)
// After a kernel launch: turns a launch error (bad configuration, no device) into an exception.
#define LAUNCH_CHECK(name) check_cuda(cudaGetLastError(), name)

// Blocks for a grid-stride loop over n elements with `block` threads.
inline unsigned grid_for(size_t n, unsigned block = 256) {
  size_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  return (unsigned)(g > (1u << 20) ? (1u << 20) : g);
}

#define GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)(n); i += (size_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

// Round to nearest even; NaN stays NaN with the quiet bit set (as dtype.ts does).
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((x >> 16) | 0x40) & 0xffff);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

__device__ __forceinline__ float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t f32_to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }

// Element i of a float tensor stored as dtype (F32, BF16 or F16), as float32.
__device__ __forceinline__ float load_f(const void* p, int dtype, size_t i) {
  if (dtype == F32) return ((const float*)p)[i];
  uint16_t h = ((const uint16_t*)p)[i];
  return dtype == BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

__device__ __forceinline__ void store_f(void* p, int dtype, size_t i, float v) {
  if (dtype == F32) ((float*)p)[i] = v;
  else ((uint16_t*)p)[i] = dtype == BF16 ? f32_to_bf16(v) : f32_to_f16(v);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T partial[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < warps; w++) total += partial[w];
  return total;
}

// The (seed, index) hash of src/engine/random.ts, bit for bit.
__device__ __forceinline__ uint32_t hash32(uint32_t seed, uint32_t index) {
  uint32_t x = (index * 0x9e3779b1u) ^ seed;
  x = (x ^ (x >> 16)) * 0x85ebca6bu;
  x = (x ^ (x >> 13)) * 0xc2b2ae35u;
  return x ^ (x >> 16);
}

// Records the first error a kernel meets (see device.cuh's DeviceError); later ones are dropped.
__device__ __forceinline__ void raise_error(int* word, int code, long row, int value) {
  if (atomicCAS(word, 0, code) == 0) {
    word[1] = (int)row;
    word[2] = value;
  }
}

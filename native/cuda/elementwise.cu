// Elementwise ops: fill, dtype conversion, add, axpy, scale, dropout, and the strided time-step copy.
// Scalars the js backend applies in float64 (axpy, scale, dropout's 1/(1-p)) are applied in double here too.
#include "device.cuh"
#include "ops.cuh"

__global__ void k_fill(void* t, int dtype, size_t n, float value, int ivalue) {
  GRID_STRIDE(i, n) {
    if (dtype == I32) ((int32_t*)t)[i] = ivalue;
    else store_f(t, dtype, i, value);
  }
}

__global__ void k_convert(void* dst, int dst_dtype, const void* src, int src_dtype, size_t n) {
  GRID_STRIDE(i, n) store_f(dst, dst_dtype, i, load_f(src, src_dtype, i));
}

__global__ void k_add(float* out, const float* a, const float* b, size_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void k_axpy(float* dst, const float* src, double s, size_t n) {
  GRID_STRIDE(i, n) dst[i] = (float)((double)dst[i] + s * (double)src[i]);
}

__global__ void k_scale(float* t, double s, size_t n) {
  GRID_STRIDE(i, n) t[i] = (float)((double)t[i] * s);
}

__global__ void k_dropout(float* out, const float* inp, size_t n, double threshold, double keep_scale, uint32_t seed) {
  GRID_STRIDE(i, n) {
    bool keep = (double)hash32(seed, (uint32_t)i) >= threshold;
    out[i] = keep ? (float)((double)inp[i] * keep_scale) : 0.0f;
  }
}

void op_fill(void* t, int dtype, size_t n, double value) {
  if (n == 0) return;
  if (value == 0 && !std::signbit(value)) {
    CUDA_CHECK(cudaMemsetAsync(t, 0, n * dtype_bytes(dtype), stream()));
    return;
  }
  k_fill<<<grid_for(n), 256, 0, stream()>>>(t, dtype, n, (float)value, (int)value);
  LAUNCH_CHECK("fill");
}

void op_convert(void* dst, int dst_dtype, const void* src, int src_dtype, size_t n) {
  if (n == 0) return;
  if (dst_dtype == src_dtype) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n * dtype_bytes(dst_dtype), cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  k_convert<<<grid_for(n), 256, 0, stream()>>>(dst, dst_dtype, src, src_dtype, n);
  LAUNCH_CHECK("convert");
}

void op_add(float* out, const float* a, const float* b, size_t n) {
  if (n == 0) return;
  k_add<<<grid_for(n), 256, 0, stream()>>>(out, a, b, n);
  LAUNCH_CHECK("add");
}

void op_axpy(float* dst, const float* src, double s, size_t n) {
  if (n == 0) return;
  k_axpy<<<grid_for(n), 256, 0, stream()>>>(dst, src, s, n);
  LAUNCH_CHECK("axpy");
}

void op_scale(float* t, double s, size_t n) {
  if (n == 0) return;
  k_scale<<<grid_for(n), 256, 0, stream()>>>(t, s, n);
  LAUNCH_CHECK("scale");
}

void op_dropout(float* out, const float* inp, size_t n, double p, uint32_t seed) {
  if (n == 0) return;
  k_dropout<<<grid_for(n), 256, 0, stream()>>>(out, inp, n, p * 4294967296.0, 1.0 / (1.0 - p), seed);
  LAUNCH_CHECK("dropout");
}

void op_copy_time(void* dst, const void* src, size_t elem_bytes, long B, long W, long Tdst, long dst_t0, long Tsrc, long src_t0,
                  long count) {
  if (B == 0 || W == 0 || count == 0) return;
  size_t row = W * elem_bytes;
  CUDA_CHECK(cudaMemcpy2DAsync((char*)dst + dst_t0 * row, Tdst * row, (const char*)src + src_t0 * row, Tsrc * row, count * row, B,
                               cudaMemcpyDeviceToDevice, stream()));
}

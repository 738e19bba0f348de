// Elementwise kernels: fill, dtype conversion, add/axpy/scale, dropout, time-step copies.
// Memory-bound loops split across the pool in large chunks.
#include <cmath>
#include <cstring>

#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

struct Binary {
  float* out;
  const float* a;
  const float* b;
  float s;
};

HOT void add_task(void* c, long b, long e, int) {
  Binary& k = *(Binary*)c;
  for (long i = b; i < e; i++) k.out[i] = k.a[i] + k.b[i];
}

HOT void axpy_task(void* c, long b, long e, int) {
  Binary& k = *(Binary*)c;
  for (long i = b; i < e; i++) k.out[i] += k.s * k.a[i];
}

HOT void scale_task(void* c, long b, long e, int) {
  Binary& k = *(Binary*)c;
  for (long i = b; i < e; i++) k.out[i] *= k.s;
}

struct Fill {
  void* p;
  uint32_t bits32;  // f32 / i32 value bits
  uint16_t bits16;  // bf16 / f16 value bits
  bool wide;
};

HOT void fill_task(void* c, long b, long e, int) {
  const Fill& k = *(const Fill*)c;
  if (k.wide) {
    uint32_t* d = (uint32_t*)k.p;
    for (long i = b; i < e; i++) d[i] = k.bits32;
  } else {
    uint16_t* d = (uint16_t*)k.p;
    for (long i = b; i < e; i++) d[i] = k.bits16;
  }
}

struct Convert {
  void* dst;
  int ddt;
  const void* src;
  int sdt;
};

HOT void convert_task(void* c, long b, long e, int) {
  Convert& k = *(Convert*)c;
  if (k.ddt == k.sdt) {
    long bytes = k.ddt == F32 || k.ddt == I32 ? 4 : 2;
    memcpy((char*)k.dst + b * bytes, (const char*)k.src + b * bytes, (e - b) * bytes);
  } else if (k.ddt == F32) {
    widen((float*)k.dst + b, k.src, k.sdt, b, e - b);
  } else {
    // narrowing: through a small f32 buffer when the source is half
    float tmp[256];
    uint16_t* d = (uint16_t*)k.dst;
    for (long i0 = b; i0 < e; i0 += 256) {
      long n = lmin(256, e - i0);
      widen(tmp, k.src, k.sdt, i0, n);
      if (k.ddt == BF16)
        for (long i = 0; i < n; i++) d[i0 + i] = f32_to_bf16(tmp[i]);
      else
        for (long i = 0; i < n; i++) d[i0 + i] = f32_to_f16(tmp[i]);
    }
  }
}

struct Dropout {
  float* out;
  const float* inp;
  uint32_t threshold;  // kept when hash >= threshold (dropoutKeep's hash >= p * 2^32)
  double keep_scale;
  uint32_t seed;
};

// hash32 of src/engine/random.ts
static AI uint32_t hash32(uint32_t seed, uint32_t index) {
  uint32_t x = (index * 0x9e3779b1u) ^ seed;
  x = (x ^ (x >> 16)) * 0x85ebca6bu;
  x = (x ^ (x >> 13)) * 0xc2b2ae35u;
  return x ^ (x >> 16);
}

HOT void dropout_task(void* c, long b, long e, int) {
  Dropout& k = *(Dropout*)c;
  float* __restrict out = k.out;
  const float* __restrict inp = k.inp;
  const uint32_t seed = k.seed, threshold = k.threshold;
  const double scale = k.keep_scale;
  for (long i = b; i < e; i++) {
    float kept = (float)((double)inp[i] * scale);  // rounded once, as js rounds the double product
    out[i] = hash32(seed, (uint32_t)i) >= threshold ? kept : 0.f;
  }
}

}  // namespace

void k_fill(void* p, int dtype, long n, double value) {
  Fill k{p, 0, 0, dtype == F32 || dtype == I32};
  if (dtype == F32) {
    float f = (float)value;
    memcpy(&k.bits32, &f, 4);
  } else if (dtype == I32) {
    k.bits32 = (uint32_t)(int32_t)value;
  } else {
    k.bits16 = dtype == BF16 ? f32_to_bf16((float)value) : f32_to_f16((float)value);
  }
  pool_run(n, pool_grain(n, 1), fill_task, &k);
}

void k_convert(void* dst, int ddt, const void* src, int sdt, long n) {
  Convert k{dst, ddt, src, sdt};
  pool_run(n, pool_grain(n, 1), convert_task, &k);
}

void k_add(float* out, const float* a, const float* b, long n) {
  Binary k{out, a, b, 0};
  pool_run(n, pool_grain(n, 1), add_task, &k);
}

void k_axpy(float* dst, const float* src, float s, long n) {
  Binary k{dst, src, nullptr, s};
  pool_run(n, pool_grain(n, 1), axpy_task, &k);
}

void k_scale(float* t, float s, long n) {
  Binary k{t, nullptr, nullptr, s};
  pool_run(n, pool_grain(n, 1), scale_task, &k);
}

void k_dropout(float* out, const float* inp, long n, double p, uint32_t seed) {
  double threshold = std::ceil(p * 4294967296.0);
  if (threshold > 4294967295.0) return k_fill(out, F32, n, 0);  // no hash reaches p * 2^32
  Dropout k{out, inp, threshold > 0 ? (uint32_t)threshold : 0u, 1.0 / (1.0 - p), seed};
  pool_run(n, pool_grain(n, 1), dropout_task, &k);
}

void k_copy_time(void* dst, const void* src, long elem_bytes, long B, long W, long Tdst, long dst_t0, long Tsrc, long src_t0,
                 long count) {
  for (long b = 0; b < B; b++)
    memmove((char*)dst + (b * Tdst + dst_t0) * W * elem_bytes, (const char*)src + (b * Tsrc + src_t0) * W * elem_bytes,
            count * W * elem_bytes);
}

// Elementwise kernels: fill, dtype conversion, add/axpy/scale, dropout, time-step copies.
// Memory-bound loops split across the pool in large chunks. add/axpy/scale/dropout take 16-bit operands through
// 256-element float32 blocks (Mixed); the all-f32 case keeps its direct loops.
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

enum MixedOp { M_ADD, M_AXPY, M_SCALE, M_DROPOUT };

struct Mixed {
  Act out, a, b;
  float s;
  int op;
  uint32_t seed, threshold;  // dropout
  double keep_scale;
};

// hash32 of src/engine/random.ts
static AI uint32_t hash32(uint32_t seed, uint32_t index) {
  uint32_t x = (index * 0x9e3779b1u) ^ seed;
  x = (x ^ (x >> 16)) * 0x85ebca6bu;
  x = (x ^ (x >> 13)) * 0xc2b2ae35u;
  return x ^ (x >> 16);
}

HOT void mixed_task(void* c, long b, long e, int) {
  const Mixed& k = *(const Mixed*)c;
  float o[256], x[256], y[256];
  for (long i0 = b; i0 < e; i0 += 256) {
    long n = lmin(256, e - i0);
    if (k.op != M_SCALE) widen(x, k.a.p, k.a.dt, i0, n);
    if (k.op == M_ADD) widen(y, k.b.p, k.b.dt, i0, n);
    if (k.op == M_AXPY || k.op == M_SCALE) widen(o, k.out.p, k.out.dt, i0, n);
    if (k.op == M_ADD)
      for (long i = 0; i < n; i++) o[i] = x[i] + y[i];
    else if (k.op == M_AXPY)
      for (long i = 0; i < n; i++) o[i] += k.s * x[i];
    else if (k.op == M_SCALE)
      for (long i = 0; i < n; i++) o[i] *= k.s;
    else
      for (long i = 0; i < n; i++) o[i] = hash32(k.seed, (uint32_t)(i0 + i)) >= k.threshold ? (float)((double)x[i] * k.keep_scale) : 0.f;
    narrow(k.out.p, k.out.dt, i0, o, n);
  }
}

bool all_f32(Act a, Act b, Act c) { return a.dt == F32 && b.dt == F32 && c.dt == F32; }

void run_mixed(Mixed k, long n) { pool_run(n, pool_grain(n, 1), mixed_task, &k); }

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

void k_add(Act out, Act a, Act b, long n) {
  if (!all_f32(out, a, b)) return run_mixed(Mixed{out, a, b, 0, M_ADD, 0, 0, 0}, n);
  Binary k{out.f(), a.f(), b.f(), 0};
  pool_run(n, pool_grain(n, 1), add_task, &k);
}

void k_axpy(Act dst, Act src, float s, long n) {
  if (!all_f32(dst, src, dst)) return run_mixed(Mixed{dst, src, dst, s, M_AXPY, 0, 0, 0}, n);
  Binary k{dst.f(), src.f(), nullptr, s};
  pool_run(n, pool_grain(n, 1), axpy_task, &k);
}

void k_scale(Act t, float s, long n) {
  if (t.dt != F32) return run_mixed(Mixed{t, t, t, s, M_SCALE, 0, 0, 0}, n);
  Binary k{t.f(), nullptr, nullptr, s};
  pool_run(n, pool_grain(n, 1), scale_task, &k);
}

void k_dropout(Act out, Act inp, long n, double p, uint32_t seed) {
  double threshold = std::ceil(p * 4294967296.0);
  if (threshold > 4294967295.0) return k_fill(out.p, out.dt, n, 0);  // no hash reaches p * 2^32
  uint32_t th = threshold > 0 ? (uint32_t)threshold : 0u;
  if (!all_f32(out, inp, inp)) return run_mixed(Mixed{out, inp, inp, 0, M_DROPOUT, seed, th, 1.0 / (1.0 - p)}, n);
  Dropout k{out.f(), inp.f(), th, 1.0 / (1.0 - p), seed};
  pool_run(n, pool_grain(n, 1), dropout_task, &k);
}

void k_copy_time(void* dst, const void* src, long elem_bytes, long B, long W, long Tdst, long dst_t0, long Tsrc, long src_t0,
                 long count) {
  for (long b = 0; b < B; b++)
    memmove((char*)dst + (b * Tdst + dst_t0) * W * elem_bytes, (const char*)src + (b * Tsrc + src_t0) * W * elem_bytes,
            count * W * elem_bytes);
}

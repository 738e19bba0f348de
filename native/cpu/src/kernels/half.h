// Float32 <-> bfloat16 / float16 bit conversions, the same bit for bit as src/engine/dtype.ts.
// Scalar and branch-free where it matters, so loops over them vectorize. Not a tensor type.
#pragma once
#include <cstdint>
#include <cstring>

enum DType { F32 = 0, BF16 = 1, F16 = 2, I32 = 3 };

static inline float bits_to_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static inline float bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

// Round to nearest even; NaN stays NaN (quiet bit set).
static inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((x >> 16) | 0x40) & 0xffff);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

// Exact for every input: normal halves are rebased by exponent arithmetic (exponent 31 lands on
// inf/NaN), subnormals are formed as (0.5 + frac * 2^-24) - 0.5.
static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t body = h & 0x7fff;
  float normal = bits_to_f32((body << 13) + (224u << 23)) * bits_to_f32(15u << 23);  // * 2^-112
  float sub = bits_to_f32(body | (126u << 23)) - 0.5f;
  uint32_t mag = body < 0x0400 ? f32_to_bits(sub) : f32_to_bits(normal);
  return bits_to_f32(sign | mag);
}

// Round to nearest even; overflow becomes infinity; NaN stays NaN.
static inline uint16_t f32_to_f16(float f) {
  uint32_t x = f32_to_bits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  int exp = (int)((x >> 23) & 0xff);
  uint32_t frac = x & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (frac ? 0x200 : 0));
  int e = exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    frac |= 0x800000;
    int shift = 14 - e;
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = frac & ((1u << shift) - 1);
    uint32_t h = frac >> shift;
    if (rest > half || (rest == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (frac >> 13);
  uint32_t rest = frac & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

// d[0..n) = float32 of src[off..off+n) stored as dtype (F32, BF16 or F16).
static inline __attribute__((always_inline)) void widen(float* d, const void* src, int dtype, long off, long n) {
  if (dtype == F32) {
    memcpy(d, (const float*)src + off, n * 4);
  } else if (dtype == BF16) {
    const uint16_t* s = (const uint16_t*)src + off;
    for (long i = 0; i < n; i++) d[i] = bf16_to_f32(s[i]);
  } else {
    const uint16_t* s = (const uint16_t*)src + off;
    for (long i = 0; i < n; i++) d[i] = f16_to_f32(s[i]);
  }
}

// dst[off..off+n) stored as dtype (F32, BF16 or F16) = s[0..n), rounded to nearest even. bf16: f32_to_bf16
// written as a select of both outcomes, so the loop vectorizes.
static inline __attribute__((always_inline)) void narrow(void* dst, int dtype, long off, const float* s, long n) {
  if (dtype == F32) {
    memmove((float*)dst + off, s, n * 4);
  } else if (dtype == BF16) {
    uint16_t* d = (uint16_t*)dst + off;
    for (long i = 0; i < n; i++) {
      uint32_t x = f32_to_bits(s[i]);
      uint32_t nan = (x >> 16) | 0x40, rounded = (x + 0x7fffu + ((x >> 16) & 1)) >> 16;
      d[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    }
  } else {
    uint16_t* d = (uint16_t*)dst + off;
    for (long i = 0; i < n; i++) d[i] = f32_to_f16(s[i]);
  }
}

// A float tensor's memory and dtype (F32, BF16 or F16): the activations backend.ts lets be 16-bit.
struct Act {
  void* p;
  int dt;
  float* f() const { return (float*)p; }  // only when dt == F32
};

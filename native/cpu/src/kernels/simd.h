// Compiler plumbing for the kernels: HOT functions are compiled for AVX2+FMA and baseline x86-64 (the loader
// picks per CPU), plus small inlined helpers. Not a SIMD library: loops are plain C++ GCC vectorizes.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif
#define AI inline __attribute__((always_inline))

static AI long lmin(long a, long b) { return a < b ? a : b; }

// Eight floats as a GCC vector (one register in the AVX2 clones), loaded and stored unaligned.
typedef float V8 __attribute__((vector_size(32)));
static AI V8 load8(const float* p) {
  V8 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static AI void store8(float* p, V8 v) { memcpy(p, &v, sizeof v); }

static AI long lmax(long a, long b) { return a > b ? a : b; }
static AI float fmaxf_(float a, float b) { return a > b ? a : b; }

// exp(x) in float, branch-free: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (relative
// error ~1e-7), times 2^n built from bits. Returns 0 below -87.3 (so exp(-inf) = 0); NaN stays NaN.
static AI float fexp(float x) {
  float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  float t = xc * 1.44269504088896341f + shifter;
  float n = t - shifter;
  int32_t ni;
  memcpy(&ni, &t, 4);
  ni -= 0x4b400000;  // bits of the shifter
  float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  uint32_t sbits = (uint32_t)(ni + 127) << 23;
  float s;
  memcpy(&s, &sbits, 4);
  return x < -87.3f ? 0.f : p * s;
}

// Sums with 8 independent double lanes: vectorizes without reassociation flags, and stays accurate.
static AI double dot_d(const float* a, const float* b, long n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += (double)a[i + l] * (double)b[i + l];
  double s = 0;
  for (; i < n; i++) s += (double)a[i] * (double)b[i];
  for (int l = 0; l < 8; l++) s += acc[l];
  return s;
}

// Float dot product over 16 lanes (for short rows where float accumulation is exact enough).
static AI float dot_f(const float* a, const float* b, long n) {
  float acc[16] = {0};
  long i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
  float s = 0;
  for (; i < n; i++) s += a[i] * b[i];
  for (int l = 0; l < 16; l++) s += acc[l];
  return s;
}

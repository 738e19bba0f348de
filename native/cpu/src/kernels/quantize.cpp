// The host quantizers of quantize.h, bit for bit the TypeScript spec's float32 steps: absmax by integer max over
// the |value| bits (so any NaN wins, as Math.max), scaling, then counting midpoints below (a NaN counts none).
// A block or row holding a NaN gets absmax NaN (0x7fc00000) and codes order[0] / int8 zeros.
#include "../pool.h"
#include "half.h"
#include "quantize.h"
#include "simd.h"

namespace {

const uint32_t kNaN = 0x7fc00000u, kInf = 0x7f800000u;
const float kTiny = 1e-38f;  // the absmax floor bitsandbytes clamps with

// max |v| as float bits: above kInf when some value is NaN.
AI uint32_t absmax_bits(const float* v, long n) {
  uint32_t m = 0;
  for (long i = 0; i < n; i++) {
    uint32_t a = f32_to_bits(v[i]) & 0x7fffffffu;
    m = a > m ? a : m;
  }
  return m;
}

// float32 -> float16 -> float32, nearest even, branch-free: normal halves round the mantissa to 10 bits (65520 and
// up overflow to inf), subnormal ones to a multiple of 2^-24 by adding and removing 0.5; NaN stays NaN.
AI float f16_round(float x) {
  uint32_t b = f32_to_bits(x), sign = b & 0x80000000u, a = b & 0x7fffffffu;
  uint32_t r = (a + 0xfffu + ((a >> 13) & 1)) & ~0x1fffu;
  r = r >= 0x47800000u ? kInf : r;
  uint32_t sub = f32_to_bits((bits_to_f32(a) + 0.5f) - 0.5f);
  r = a < 0x38800000u ? sub : r;
  r = a > kInf ? kNaN : r;
  return bits_to_f32(sign | r);
}

struct Q4 {
  const float* w;
  long n, blocksize;
  float bounds[15];
  uint8_t order[16];
  uint8_t* packed;
  float* absmax;
};

HOT void quantize_blocks(void* p, long begin, long end, int) {
  const Q4& k = *(const Q4*)p;
  const long n = k.n, blocksize = k.blocksize;
  float bounds[15], x[4096 + 1];
  memcpy(bounds, k.bounds, sizeof bounds);
  uint8_t codes[4096 + 1];
  for (long b = begin; b < end; b++) {
    long start = b * blocksize, len = lmin(blocksize, n - start);
    const float* v = k.w + start;
    uint32_t mb = absmax_bits(v, len);
    float m = bits_to_f32(mb), floored = m > kTiny ? m : kTiny, inverse = 1.f / floored;
    if (mb > kInf) {
      k.absmax[b] = bits_to_f32(kNaN);
      for (long i = 0; i < len; i++) x[i] = bits_to_f32(kNaN);
    } else if (len == blocksize) {
      k.absmax[b] = m;
      for (long i = 0; i < len; i++) x[i] = v[i] * inverse;
    } else {
      k.absmax[b] = floored;
      for (long i = 0; i < len; i++) x[i] = v[i] / floored;
    }
    if (len & 1) x[len++] = 0.f;  // the padding 0, unscaled
    for (long i = 0; i < len; i++) {
      int c = 0;
      for (int j = 0; j < 15; j++) c += bounds[j] < x[i];
      codes[i] = (uint8_t)c;
    }
    uint8_t* out = k.packed + start / 2;
    for (long i = 0; i < len; i += 2) out[i / 2] = (uint8_t)(k.order[codes[i]] << 4 | k.order[codes[i + 1]]);
  }
}

struct I8 {
  const float* w;
  long C;
  int8_t* q;
  float* scb;
};

HOT void quantize_rows(void* p, long begin, long end, int tid) {
  const I8& k = *(const I8*)p;
  const long C = k.C;
  float* half = pool_scratch(tid, C);
  for (long o = begin; o < end; o++) {
    const float* v = k.w + o * C;
    int8_t* q = k.q + o * C;
    for (long c = 0; c < C; c++) half[c] = f16_round(v[c]);
    uint32_t mb = absmax_bits(half, C);
    float m = bits_to_f32(mb);
    k.scb[o] = mb > kInf ? bits_to_f32(kNaN) : m;
    if (mb == 0 || mb > kInf) {
      memset(q, 0, C);
      continue;
    }
    float scale = (1.f / m) * 127.f;  // inf: 0, and inf * 0 is NaN, which becomes 0
    for (long c = 0; c < C; c++) {
      float r = __builtin_rintf(half[c] * scale);
      q[c] = (int8_t)(int)(r == r ? r : 0.f);
    }
  }
}

}  // namespace

void k_quantize_4bit(const float* w, long n, long blocksize, const float* bounds, const uint8_t* order, uint8_t* packed,
                     float* absmax) {
  Q4 k{w, n, blocksize, {}, {}, packed, absmax};
  memcpy(k.bounds, bounds, sizeof k.bounds);
  memcpy(k.order, order, sizeof k.order);
  long blocks = (n + blocksize - 1) / blocksize;
  pool_run(blocks, pool_grain(blocks, blocksize), quantize_blocks, &k);
}

void k_quantize_int8_rows(const float* w, long OC, long C, int8_t* q, float* scb) {
  I8 k{w, C, q, scb};
  pool_run(OC, pool_grain(OC, C), quantize_rows, &k);
}

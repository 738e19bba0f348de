// quant.h's dequantization: NF4/FP4 codes times their block's absmax (undoing double quantization block by block)
// rounded to the weight's dtype, as a block's 16 values computed once (one vector), then indexed 16 codes at a time
// (AVX-512: one permute; AVX2: two and a blend), the rest and other CPUs element by element; int8 rows times their
// scale. Bit for bit the js backend's (backends/js/quant.ts).
#include <cstring>

#include "matvec.h"
#include "quant.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define QUANT_X86 1
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
#endif

namespace {

// bitsandbytes' get_4bit_type tables in code order (FP4 divided by its largest value, 12).
alignas(64) const float kNF4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
    -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
alignas(64) const float kFP4[16] = {0.f / 12, 0.0625f / 12, 8.f / 12, 12.f / 12, 4.f / 12, 6.f / 12, 2.f / 12, 3.f / 12,
                                    0.f / 12, -0.0625f / 12, -8.f / 12, -12.f / 12, -4.f / 12, -6.f / 12, -2.f / 12, -3.f / 12};
const float kInv127 = 1.f / 127;  // bitsandbytes' 7.874015718698502e-3 and 1.0 / 127.0 in float32

int detect() {
#ifdef QUANT_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return 1;
#endif
  return 0;
}

int level = detect();  // quant_isa_level(): set before any kernel runs, changed only between ops


// v rounded to dt (F32: as it is), to nearest even as torch's casts.
inline float round_to(float v, int dt) { return dt == BF16 ? bf16_to_f32(f32_to_bf16(v)) : dt == F16 ? f16_to_f32(f32_to_f16(v)) : v; }

#ifdef QUANT_X86
// round_to for 8 or 16 lanes, bit for bit: bf16 by half.h's integer rounding, f16 by the hardware's (nearest even).
AVX2 inline __m256 round_avx2(__m256 v, int dt) {
  if (dt == F16) return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (dt != BF16) return v;
  __m256i x = _mm256_castps_si256(v), one = _mm256_set1_epi32(1);
  __m256i r = _mm256_add_epi32(x, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(_mm256_srli_epi32(x, 16), one)));
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));  // NaN stays NaN, quiet bit set
  r = _mm256_blendv_epi8(r, _mm256_or_si256(x, _mm256_set1_epi32(0x400000)), nan);
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000)));
}

AVX512 inline __m512 round_avx512(__m512 v, int dt) {
  if (dt == F16) return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (dt != BF16) return v;
  __m512i x = _mm512_castps_si512(v);
  __m512i r = _mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1))));
  r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), x, _mm512_set1_epi32(0x400000));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000)));
}

AVX2 void values_avx2(float* t, const float* lut, float a, int dt) {
  for (int h = 0; h < 16; h += 8) _mm256_storeu_ps(t + h, round_avx2(_mm256_mul_ps(_mm256_loadu_ps(lut + h), _mm256_set1_ps(a)), dt));
}

AVX512 void values_avx512(float* t, const float* lut, float a, int dt) {
  _mm512_storeu_ps(t, round_avx512(_mm512_mul_ps(_mm512_loadu_ps(lut), _mm512_set1_ps(a)), dt));
}
#endif

// t[k] = round_to(lut[k] * a, dt): a block's 16 possible values.
inline void block_values(float* t, const float* lut, float a, int dt) {
#ifdef QUANT_X86
  if (level == 2) return values_avx512(t, lut, a, dt);
  if (level == 1) return values_avx2(t, lut, a, dt);
#endif
  for (int k = 0; k < 16; k++) t[k] = round_to(lut[k] * a, dt);
}

// d[k] = t[code of element i + k] for k < n
inline void codes_scalar(float* d, const uint8_t* packed, const float* t, long i, long n) {
  for (long k = 0; k < n; k++, i++) {
    uint8_t byte = packed[i >> 1];
    d[k] = t[(i & 1) ? (byte & 15) : (byte >> 4)];
  }
}

#ifdef QUANT_X86
// 16 codes from 8 bytes in element order (high nibble first), as bytes.
AVX2 inline __m128i unpack16(const uint8_t* p) {
  __m128i b = _mm_loadl_epi64((const __m128i*)p);
  const __m128i m = _mm_set1_epi8(0x0f);
  return _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// n16 groups of 16 codes from byte p (an even element).
AVX2 void codes_avx2(float* d, const uint8_t* p, const float* t, long n16) {
  const __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
  for (long g = 0; g < n16; g++) {
    __m128i idx = unpack16(p + 8 * g);
    for (int h = 0; h < 2; h++) {
      __m256i i32 = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(idx, 8) : idx);
      __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i32), _mm256_permutevar8x32_ps(hi, i32),
                                  _mm256_castsi256_ps(_mm256_slli_epi32(i32, 28)));
      _mm256_storeu_ps(d + 16 * g + 8 * h, v);
    }
  }
}

AVX512 void codes_avx512(float* d, const uint8_t* p, const float* t, long n16) {
  const __m512 table = _mm512_loadu_ps(t);
  for (long g = 0; g < n16; g++) _mm512_storeu_ps(d + 16 * g, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(unpack16(p + 8 * g)), table));
}
#endif

// Elements [i, i + n) of one block (absmax a).
inline void codes(float* d, const uint8_t* packed, const float* lut, float a, int dt, long i, long n) {
  alignas(64) float t[16];
  block_values(t, lut, a, dt);
  if (i & 1) {  // a low nibble first: one element to reach a byte boundary
    codes_scalar(d, packed, t, i, 1);
    d++, i++, n--;
  }
  long n16 = n / 16;
#ifdef QUANT_X86
  if (n16 > 0 && level == 2) {
    codes_avx512(d, packed + i / 2, t, n16);
  } else if (n16 > 0 && level == 1) {
    codes_avx2(d, packed + i / 2, t, n16);
  } else {
    n16 = 0;
  }
#else
  n16 = 0;
#endif
  codes_scalar(d + 16 * n16, packed, t, i + 16 * n16, n - 16 * n16);
}

#ifdef QUANT_X86
// Dot products of 4-bit weight rows [o0, o1) with NR (1..4) input rows, dequantizing in registers: each block's 16
// values (code * absmax, rounded) once, then 32 codes at a time from 16 bytes through them, into one FMA per input
// row. out[r * OC + o] +=.
template <int NR>
AVX512 void rows_4bit_avx512(const QuantDesc& q, const float* lut, const float* inp, long o0, long o1, float* out, long OC) {
  const long C = q.C, bs = q.blocksize;
  const __m512 lutv = _mm512_loadu_ps(lut);
  const __m128i m = _mm_set1_epi8(0x0f);
  alignas(64) float t[16];  // the block's values for the odd first and the last elements
  for (long o = o0; o < o1; o++) {
    __m512 acc[NR];
    float tail[NR];
    for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps(), tail[r] = 0;
    long i = o * C, end = i + C, b = div_by(i, bs, q.blocksize_log2);
    long nested = q.absmax ? 0 : div_by(b, q.nested_blocksize, q.nested_log2);
    long left = q.absmax ? 0 : (nested + 1) * q.nested_blocksize - b;
    const float* x = inp - i;  // x[r * C + i] is input row r's element of flattened weight index i
    for (; i < end; b++) {
      long stop = lmin(end, (b + 1) * bs);
      float a;
      if (q.absmax) {
        a = q.absmax[b];
      } else {
        a = no_fuse(q.nested_map[q.absmax_codes[b]] * q.nested_absmax[nested]) + q.offset;
        if (--left == 0) nested++, left = q.nested_blocksize;
      }
      const __m512 table = round_avx512(_mm512_mul_ps(lutv, _mm512_set1_ps(a)), q.dtype);
      _mm512_store_ps(t, table);
      if (i & 1) {
        float v = t[q.packed[i >> 1] & 15];
        for (int r = 0; r < NR; r++) tail[r] += v * x[r * C + i];
        i++;
      }
      for (; i + 32 <= stop; i += 32) {
        __m128i bytes = _mm_loadu_si128((const __m128i*)(q.packed + i / 2));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), m), lo = _mm_and_si128(bytes, m);
        __m512 v0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), table);
        __m512 v1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(hi, lo)), table);
        for (int r = 0; r < NR; r++) {
          acc[r] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(x + r * C + i), acc[r]);
          acc[r] = _mm512_fmadd_ps(v1, _mm512_loadu_ps(x + r * C + i + 16), acc[r]);
        }
      }
      for (; i < stop; i++) {
        uint8_t byte = q.packed[i >> 1];
        float v = t[(i & 1) ? (byte & 15) : (byte >> 4)];
        for (int r = 0; r < NR; r++) tail[r] += v * x[r * C + i];
      }
    }
    for (int r = 0; r < NR; r++) out[r * OC + o] += _mm512_reduce_add_ps(acc[r]) + tail[r];
  }
}
#endif

HOT void int8_rows_backward(float* d, const int8_t* w, const float* scb, long C, long off, long n) {
  long i = off, end = off + n;
  for (long r = off / C; i < end; r++) {
    long stop = lmin(end, (r + 1) * C);
    const float s = scb[r] * kInv127;
    for (; i < stop; i++) *d++ = (float)w[i] * s;
  }
}

}  // namespace

int quant_isa_level() { return level; }

const char* quant_isa() {
  static const char* names[] = {"generic", "avx2", "avx512"};
  return names[quant_isa_level()];
}

const char* set_quant_isa(const char* name) {
  int want = strcmp(name, "avx512") == 0 ? 2 : strcmp(name, "avx2") == 0 ? 1 : 0;
  int best = detect();
  level = want < best ? want : best;
  return quant_isa();
}

void dequant_range(float* d, const QuantDesc& q, long off, long n) {
  if (q.type == Q_BF16_PACKED) {
    unpack_bf16_range(d, q, off, n);
    return;
  }
  if (q.type == Q_INT8) {
    int8_rows_backward(d, q.w8, q.scb, q.C, off, n);
    return;
  }
  const float* lut = q.type == Q_NF4 ? kNF4 : kFP4;
  const long bs = q.blocksize, end = off + n;
  long i = off, b = div_by(off, bs, q.blocksize_log2);  // then blocks and nested blocks are counted one by one
  long nested = q.absmax ? 0 : div_by(b, q.nested_blocksize, q.nested_log2);
  long left = q.absmax ? 0 : (nested + 1) * q.nested_blocksize - b;
  for (; i < end; b++) {
    long stop = lmin(end, (b + 1) * bs);
    float absmax;
    if (q.absmax) {
      absmax = q.absmax[b];
    } else {  // double-quantized: nested_map[code] * nested_absmax + offset, rounded at each step
      absmax = no_fuse(q.nested_map[q.absmax_codes[b]] * q.nested_absmax[nested]) + q.offset;
      if (--left == 0) nested++, left = q.nested_blocksize;
    }
    codes(d, q.packed, lut, absmax, q.dtype, i, stop - i);
    d += stop - i;
    i = stop;
  }
}

HOT void dequant_int8_vectorwise(float* d, const QuantDesc& q, long r0, long r1) {
  for (long r = r0; r < r1; r++) {
    const int8_t* w = q.w8 + r * q.C;
    const float scb = q.scb[r];
    for (long c = 0; c < q.C; c++) *d++ = ((float)w[c] * scb) * kInv127;
  }
}

bool matvec_4bit_fused(float* out, const float* inp, const QuantDesc& q, long o0, long o1, long N, long OC) {
#ifdef QUANT_X86
  if (level < 2 || (q.type != Q_NF4 && q.type != Q_FP4) || N < 1 || N > 4) return false;
  const float* lut = q.type == Q_NF4 ? kNF4 : kFP4;
  if (N == 1) rows_4bit_avx512<1>(q, lut, inp, o0, o1, out, OC);
  if (N == 2) rows_4bit_avx512<2>(q, lut, inp, o0, o1, out, OC);
  if (N == 3) rows_4bit_avx512<3>(q, lut, inp, o0, o1, out, OC);
  if (N == 4) rows_4bit_avx512<4>(q, lut, inp, o0, o1, out, OC);
  return true;
#else
  (void)out, (void)inp, (void)q, (void)o0, (void)o1, (void)N, (void)OC;
  return false;
#endif
}

// LLM.int8's forward (quant.h), bitsandbytes' MatMul8bitLt with its default backend's float32 rounding, on the
// pool: inp rounded to float16 and quantized row-wise to int8 (outlier columns zeroed), int8 x int8 products summed
// exactly in int32 (AVX-512 VNNI, AVX2 pmaddwd or scalar), each sum scaled back, then the outlier columns added in
// float. Bit for bit the js backend's (backends/js/quant.ts), which says each step.
#include <cmath>
#include <cstring>
#include <vector>

#include "../pool.h"
#include "quant.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define INT8_X86 1
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define VNNI512 __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#endif

namespace {

const float kInv127 = 1.f / 127;
const float kMmDequant = 6.200124e-05f;  // int8_mm_dequant's 1/127^2 as the default backend writes it
const long kRowBlock = 64, kColBlock = 16;  // rows of inp and of the weight per work item

typedef void (*DotFn)(const int8_t* x, long C, const int8_t* w, int32_t* acc);

struct Ctx {
  const float* inp;
  long N, C, OC;
  const QuantDesc* q;
  const float* bias;
  float* out;
  float threshold;
  int8_t* xq;  // (N, C)
  float* absmax;  // (N)
  uint8_t* outlier;  // (C)
  const long* cols;  // the outlier columns
  long ncols;
  long col_blocks;
  int mr;  // rows of inp per dot call
  const DotFn (*dots)[4];  // dots[mr - 1][nr - 1]
};

inline float half_round(float x) { return f16_to_f32(f32_to_f16(x)); }

// ---- 1. row absmax without outliers, and the outlier columns ----
void absmax_rows_scalar(Ctx& k, long n) {
  const float* x = k.inp + n * k.C;
  float m = 0;
  for (long i = 0; i < k.C; i++) {
    float a = fabsf(half_round(x[i]));
    if (k.threshold > 0 && a >= k.threshold)
      __atomic_store_n(k.outlier + i, (uint8_t)1, __ATOMIC_RELAXED);
    else
      m = a > m ? a : m;
  }
  k.absmax[n] = m;
}

// ---- 2. codes = round-half-even(x16 * ((1 / absmax) * 127)), 0 in outlier columns ----
void quantize_row_scalar(Ctx& k, long n, long i0) {
  const float* x = k.inp + n * k.C;
  int8_t* q = k.xq + n * k.C;
  const float s = (1.f / k.absmax[n]) * 127.f;
  for (long i = i0; i < k.C; i++) q[i] = k.outlier[i] ? 0 : (int8_t)rintf(half_round(x[i]) * s);
}

#ifdef INT8_X86
AVX2 inline __m256 half_round8(const float* p) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(p), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

AVX2 void absmax_rows_avx2(Ctx& k, long n) {
  const float* x = k.inp + n * k.C;
  const __m256 sign = _mm256_set1_ps(-0.f), t = _mm256_set1_ps(k.threshold);
  __m256 mv = _mm256_setzero_ps();
  long i = 0;
  for (; i + 8 <= k.C; i += 8) {
    __m256 a = _mm256_andnot_ps(sign, half_round8(x + i));
    if (k.threshold > 0) {
      __m256 big = _mm256_cmp_ps(a, t, _CMP_GE_OQ);
      if (int bits = _mm256_movemask_ps(big)) {
        for (int j = 0; j < 8; j++)
          if (bits >> j & 1) __atomic_store_n(k.outlier + i + j, (uint8_t)1, __ATOMIC_RELAXED);
        a = _mm256_andnot_ps(big, a);
      }
    }
    mv = _mm256_max_ps(a, mv);  // a NaN is skipped, as the scalar compare does
  }
  float lanes[8], m = 0;
  _mm256_storeu_ps(lanes, mv);
  for (float v : lanes) m = v > m ? v : m;
  for (; i < k.C; i++) {
    float a = fabsf(half_round(x[i]));
    if (k.threshold > 0 && a >= k.threshold)
      __atomic_store_n(k.outlier + i, (uint8_t)1, __ATOMIC_RELAXED);
    else
      m = a > m ? a : m;
  }
  k.absmax[n] = m;
}

AVX2 void quantize_row_avx2(Ctx& k, long n) {
  const float* x = k.inp + n * k.C;
  int8_t* q = k.xq + n * k.C;
  const __m256 s = _mm256_set1_ps((1.f / k.absmax[n]) * 127.f);
  long i = 0;
  for (; i + 8 <= k.C; i += 8) {
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(half_round8(x + i), s));  // round half to even (MXCSR default)
    __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    __m128i keep = _mm_cmpeq_epi8(_mm_loadl_epi64((const __m128i*)(k.outlier + i)), _mm_setzero_si128());
    _mm_storel_epi64((__m128i*)(q + i), _mm_and_si128(_mm_packs_epi16(w16, w16), keep));
  }
  quantize_row_scalar(k, n, i);
}
#endif

void absmax_task(void* c, long b, long e, int) {
  Ctx& k = *(Ctx*)c;
  for (long n = b; n < e; n++) {
#ifdef INT8_X86
    if (quant_isa_level() >= 1) {
      absmax_rows_avx2(k, n);
      continue;
    }
#endif
    absmax_rows_scalar(k, n);
  }
}

void quantize_task(void* c, long b, long e, int) {
  Ctx& k = *(Ctx*)c;
  for (long n = b; n < e; n++) {
    if (k.absmax[n] == 0) {  // nothing but zeros and outliers: bitsandbytes' 0 * inf codes are 0
      memset(k.xq + n * k.C, 0, k.C);
      continue;
    }
#ifdef INT8_X86
    if (quant_isa_level() >= 1) {
      quantize_row_avx2(k, n);
      continue;
    }
#endif
    quantize_row_scalar(k, n, 0);
  }
}

// ---- 3. int32 sums of MR inp rows x NR weight rows: acc[i * NR + j] ----
template <int MR, int NR>
void dots_scalar(const int8_t* x, long C, const int8_t* w, int32_t* acc) {
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) {
      int32_t s = 0;
      for (long c = 0; c < C; c++) s += (int32_t)x[i * C + c] * w[j * C + c];
      acc[i * NR + j] = s;
    }
}

#ifdef INT8_X86
// 16 codes at a time widened to int16; pmaddwd sums pairs into int32 exactly.
template <int MR, int NR>
AVX2 void dots_avx2(const int8_t* x, long C, const int8_t* w, int32_t* acc) {
  __m256i a[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) a[i][j] = _mm256_setzero_si256();
  long c = 0;
  for (; c + 16 <= C; c += 16) {
    __m256i wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + j * C + c)));
    for (int i = 0; i < MR; i++) {
      __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x + i * C + c)));
      for (int j = 0; j < NR; j++) a[i][j] = _mm256_add_epi32(a[i][j], _mm256_madd_epi16(xv, wv[j]));
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) {
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a[i][j]), _mm256_extracti128_si256(a[i][j], 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
      int32_t sum = _mm_cvtsi128_si32(s);
      for (long cc = c; cc < C; cc++) sum += (int32_t)x[i * C + cc] * w[j * C + cc];
      acc[i * NR + j] = sum;
    }
}

// 32 codes at a time widened to int16; vpdpwssd multiplies and sums pairs into int32 in one step.
template <int MR, int NR>
VNNI512 void dots_vnni(const int8_t* x, long C, const int8_t* w, int32_t* acc) {
  __m512i a[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) a[i][j] = _mm512_setzero_si512();
  long c = 0;
  for (; c + 32 <= C; c += 32) {
    __m512i wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(w + j * C + c)));
    for (int i = 0; i < MR; i++) {
      __m512i xv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(x + i * C + c)));
      for (int j = 0; j < NR; j++) a[i][j] = _mm512_dpwssd_epi32(a[i][j], xv, wv[j]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) {
      int32_t sum = _mm512_reduce_add_epi32(a[i][j]);
      for (long cc = c; cc < C; cc++) sum += (int32_t)x[i * C + cc] * w[j * C + cc];
      acc[i * NR + j] = sum;
    }
}
#endif

#define DOT_ROW(F, MR) {F<MR, 1>, F<MR, 2>, F<MR, 3>, F<MR, 4>}
const DotFn kScalarDots[1][4] = {DOT_ROW(dots_scalar, 1)};
#ifdef INT8_X86
const DotFn kAvx2Dots[2][4] = {DOT_ROW(dots_avx2, 1), DOT_ROW(dots_avx2, 2)};
const DotFn kVnniDots[4][4] = {DOT_ROW(dots_vnni, 1), DOT_ROW(dots_vnni, 2), DOT_ROW(dots_vnni, 3), DOT_ROW(dots_vnni, 4)};
#endif

// ---- 4. out = (sum * (absmax * scb)) * 1/127^2 [+ bias] [+ outlier columns in float] ----
inline float finish(const Ctx& k, long n, long o, int32_t sum) {
  const QuantDesc& q = *k.q;
  float v = no_fuse(((float)sum * (k.absmax[n] * q.scb[o])) * kMmDequant);
  if (k.bias) v = no_fuse(v + k.bias[o]);
  if (k.ncols) {
    const float* x = k.inp + n * k.C;
    const int8_t* w = q.w8 + o * k.C;
    double s = 0;  // products of two floats are exact in double, so the sum is the js backend's
    for (long t = 0; t < k.ncols; t++) {
      long c = k.cols[t];
      s += (double)x[c] * (double)(((float)w[c] * q.scb[o]) * kInv127);
    }
    v = v + (float)s;
  }
  return v;
}

void gemm_task(void* c, long b, long e, int) {
  const Ctx& k = *(const Ctx*)c;
  const int8_t* w8 = k.q->w8;
  int32_t acc[16];
  for (long item = b; item < e; item++) {
    long n0 = (item / k.col_blocks) * kRowBlock, n1 = lmin(k.N, n0 + kRowBlock);
    long o0 = (item % k.col_blocks) * kColBlock, o1 = lmin(k.OC, o0 + kColBlock);
    for (long o = o0; o < o1; o += 4) {
      long nr = lmin(4, o1 - o);
      for (long n = n0; n < n1; n += k.mr) {
        long mr = lmin(k.mr, n1 - n);
        k.dots[mr - 1][nr - 1](k.xq + n * k.C, k.C, w8 + o * k.C, acc);
        for (long i = 0; i < mr; i++)
          for (long j = 0; j < nr; j++) k.out[(n + i) * k.OC + o + j] = finish(k, n + i, o + j, acc[i * nr + j]);
      }
    }
  }
}

// Per-call working buffers, kept between calls (ops are issued by one thread).
std::vector<int8_t> xq_buf;
std::vector<float> absmax_buf;
std::vector<uint8_t> outlier_buf;
std::vector<long> cols_buf;

}  // namespace

void int8_matmul_forward(float* out, const float* inp, const QuantDesc& q, const float* bias, long N, long C, long OC) {
  if (N <= 0 || OC <= 0) return;
  if ((long)xq_buf.size() < N * C) xq_buf.resize(N * C);
  if ((long)absmax_buf.size() < N) absmax_buf.resize(N);
  outlier_buf.assign(C, 0);
  // bitsandbytes compares |x| in float16 with the threshold in float16
  Ctx k{inp, N, C, OC, &q, bias, out, half_round(q.threshold), xq_buf.data(), absmax_buf.data(), outlier_buf.data(),
        nullptr, 0, (OC + kColBlock - 1) / kColBlock, 1, kScalarDots};
  pool_run(N, pool_grain(N, C), absmax_task, &k);
  cols_buf.clear();
  for (long c = 0; c < C; c++)
    if (outlier_buf[c]) cols_buf.push_back(c);
  k.cols = cols_buf.data();
  k.ncols = (long)cols_buf.size();
  pool_run(N, pool_grain(N, C), quantize_task, &k);
#ifdef INT8_X86
  static const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  if (quant_isa_level() == 2 && vnni) {
    k.mr = 4;
    k.dots = kVnniDots;
  } else if (quant_isa_level() >= 1) {
    k.mr = 2;
    k.dots = kAvx2Dots;
  }
#endif
  long items = ((N + kRowBlock - 1) / kRowBlock) * k.col_blocks;
  pool_run(items, pool_grain(items, lmin(N, kRowBlock) * kColBlock * (C + k.ncols)), gemm_task, &k);
}

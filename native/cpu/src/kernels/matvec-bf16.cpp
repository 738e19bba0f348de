// matvec.h's bf16 copy: bf16 input rows times a bf16 weight with AVX512_BF16's vdpbf16ps, which multiplies pairs of
// bf16 values (exactly: 8-bit significands) and sums them into float32 lanes, so the result is the widened float32
// matvec's up to summation order. Blocks of weight rows x input rows (rows_task picks the shape), the weight
// prefetched a fixed distance ahead.
#include "../pool.h"
#include "matvec.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

namespace {

// How far ahead of the weights being read the prefetches run: 8 KB (the 134M model's products at 1 and 8 rows on
// 2 Zen 4 cores: 15% faster than prefetching the next block's rows; 4 to 12 KB all do about as well).
const long kPrefetchAhead = 4096;

struct Ctx {
  float* out;
  const uint16_t* inp;
  const uint16_t* w;
  const float* bias;
  long N, C, OC;
};

// In 128-bit blocks: [a's b0 + b2, a's b1 + b3, b's b0 + b2, b's b1 + b3].
AVX512BF16 static AI __m512 fold_halves(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}

// The sums of the lanes of v0..v7, in that order: a transposing tree (halves of different vectors added, then
// quarters, then pairs) that takes about 3 instructions a sum where one vector's own reduction takes 8. With
// tiny-english's 256 columns a sum follows only 8 vdpbf16ps, so this made its 8-row head 12% faster.
AVX512BF16 static AI __m256 sum_lanes8(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4, __m512 v5, __m512 v6, __m512 v7) {
  const __m512 t0 = fold_halves(v0, v4), t1 = fold_halves(v1, v5), t2 = fold_halves(v2, v6), t3 = fold_halves(v3, v7);
  // u0's blocks hold partial sums of v0, v4, v1, v5; u1's of v2, v6, v3, v7
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88), _mm512_shuffle_f32x4(t0, t1, 0xDD));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(t2, t3, 0x88), _mm512_shuffle_f32x4(t2, t3, 0xDD));
  // each block's four floats summed: block b = [S(u0.b), S(u1.b), S(u0.b), S(u1.b)]
  const __m512 c = _mm512_add_ps(_mm512_unpacklo_ps(u0, u1), _mm512_unpackhi_ps(u0, u1));
  const __m512 e = _mm512_add_ps(c, _mm512_permute_ps(c, 0x4E));
  // e = [S0 S2 S0 S2 | S4 S6 S4 S6 | S1 S3 S1 S3 | S5 S7 S5 S7]
  return _mm512_castps512_ps256(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0), e));
}

// Input rows [r0, r0 + R) x weight rows [oc, oc + W), 32 columns (one cache line of each weight row) per step.
// The loops unroll fully (R, W <= 8) so that the accumulators stay in registers.
template <int R, int W>
AVX512BF16 static AI void block(const Ctx& k, long oc, long r0) {
  const long C = k.C;
  // the block's W * C weights are contiguous, and blocks follow each other: each step prefetches as many lines
  // as it reads, kPrefetchAhead elements further on
  const uint16_t* ahead = k.w + oc * C + kPrefetchAhead;
  __m512 acc[R][W];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int j = 0; j < W; j++) acc[r][j] = _mm512_setzero_ps();
  for (long i = 0; i < C; i += 32) {
    __mmask32 m = C - i >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (C - i)) - 1);
    __m512bh w[W];
#pragma GCC unroll 8
    for (int j = 0; j < W; j++) {
      _mm_prefetch((const char*)(ahead + i * W + 32 * j), _MM_HINT_T0);
      w[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, k.w + (oc + j) * C + i);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      __m512bh x = (__m512bh)_mm512_maskz_loadu_epi16(m, k.inp + (r0 + r) * C + i);
#pragma GCC unroll 8
      for (int j = 0; j < W; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], x, w[j]);
    }
  }
  if constexpr (R == 8) {
#pragma GCC unroll 8
    for (int j = 0; j < W; j++) {
      float sums[8];
      _mm256_storeu_ps(sums, sum_lanes8(acc[0][j], acc[1][j], acc[2][j], acc[3][j], acc[4][j], acc[5][j], acc[6][j], acc[7][j]));
#pragma GCC unroll 8
      for (int r = 0; r < 8; r++) k.out[(r0 + r) * k.OC + oc + j] = sums[r] + (k.bias ? k.bias[oc + j] : 0.f);
    }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int j = 0; j < W; j++)
      k.out[(r0 + r) * k.OC + oc + j] = _mm512_reduce_add_ps(acc[r][j]) + (k.bias ? k.bias[oc + j] : 0.f);
}

// Weight rows [oc, oc + W) for every input row, G input rows at a time (the block stays in L1/L2 between groups).
template <int G, int W>
AVX512BF16 static AI void all_rows(const Ctx& k, long oc) {
  long r = 0;
  for (; r + G <= k.N; r += G) block<G, W>(k, oc, r);
  switch (k.N - r) {
    case 1: return block<1, W>(k, oc, r);
    case 2: return block<2, W>(k, oc, r);
    case 3: return block<3, W>(k, oc, r);
    case 4: if (G > 4) return block<4, W>(k, oc, r); break;
    case 5: if (G > 5) return block<5, W>(k, oc, r); break;
    case 6: if (G > 6) return block<6, W>(k, oc, r); break;
    case 7: if (G > 7) return block<7, W>(k, oc, r); break;
  }
}

// Fewer than 8 input rows: 4 x 4 blocks. From 8 rows on, 8 x 3 blocks (24 accumulators): each weight vector loaded
// serves eight dot products, fewer loads per product (the 134M model's products at 8 and 12 rows on 2 Zen 4 cores:
// 12-16% faster than 4 x 4 blocks).
AVX512BF16 void rows_task(void* c, long o0, long o1, int) {
  const Ctx& k = *(const Ctx*)c;
  long oc = o0;
  if (k.N >= 8)
    for (; oc + 3 <= o1; oc += 3) all_rows<8, 3>(k, oc);
  else
    for (; oc + 4 <= o1; oc += 4) all_rows<4, 4>(k, oc);
  for (; oc < o1; oc++) all_rows<4, 1>(k, oc);
}

}  // namespace

// One contiguous span of weight rows per thread, each streamed start to end, unless the work is too small to share
// (in-process A/B against four chunks per thread, tiny-english and a 134M model on 2 Zen 4 cores: decode steps 6-7%
// faster at 1 and at 8 rows).
void matvec_bf16(float* out, const uint16_t* inp, const uint16_t* w, const float* bias, long N, long C, long OC) {
  Ctx k{out, inp, w, bias, N, C, OC};
  // a span per thread, but never below pool_grain (its floor of kMinTaskWork per chunk)
  const long grain = lmax((OC + pool_threads() - 1) / pool_threads(), pool_grain(OC, C * N));
  pool_run(OC, (grain + 11) / 12 * 12, rows_task, &k);  // whole blocks of 3 or 4 rows
}

#else

void matvec_bf16(float*, const uint16_t*, const uint16_t*, const float*, long, long, long) {}

#endif

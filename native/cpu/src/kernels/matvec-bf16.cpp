// matvec.h's bf16 copy: bf16 input rows times a bf16 weight with AVX512_BF16's vdpbf16ps, which multiplies pairs of
// bf16 values (exactly: 8-bit significands) and sums them into float32 lanes, so the result is the widened float32
// matvec's up to summation order. Four weight rows at a time for up to four input rows, the next rows prefetched
// as in matvec.cpp's block512.
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

struct Ctx {
  float* out;
  const uint16_t* inp;
  const uint16_t* w;
  const float* bias;
  long N, C, OC;
};

// Input rows [r0, r0 + R) x weight rows [oc, oc + W), 32 columns (one cache line of each weight row) per step.
template <int R, int W>
AVX512BF16 static AI void block(const Ctx& k, long oc, long r0) {
  const long C = k.C;
  const uint16_t* next = k.w + (oc + W) * C;
  __m512 acc[R][W];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < W; j++) acc[r][j] = _mm512_setzero_ps();
  for (long i = 0; i < C; i += 32) {
    __mmask32 m = C - i >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (C - i)) - 1);
    __m512bh w[W];
#pragma GCC unroll 4
    for (int j = 0; j < W; j++) {
      _mm_prefetch((const char*)(next + j * C + i), _MM_HINT_T0);
      w[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, k.w + (oc + j) * C + i);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m512bh x = (__m512bh)_mm512_maskz_loadu_epi16(m, k.inp + (r0 + r) * C + i);
#pragma GCC unroll 4
      for (int j = 0; j < W; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], x, w[j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < W; j++)
      k.out[(r0 + r) * k.OC + oc + j] = _mm512_reduce_add_ps(acc[r][j]) + (k.bias ? k.bias[oc + j] : 0.f);
}

// Weight rows [oc, oc + W) for every input row, four input rows at a time (the block stays in L1/L2 between groups).
template <int W>
AVX512BF16 static AI void all_rows(const Ctx& k, long oc) {
  long r = 0;
  for (; r + 4 <= k.N; r += 4) block<4, W>(k, oc, r);
  switch (k.N - r) {
    case 1: return block<1, W>(k, oc, r);
    case 2: return block<2, W>(k, oc, r);
    case 3: return block<3, W>(k, oc, r);
  }
}

AVX512BF16 void rows_task(void* c, long o0, long o1, int) {
  const Ctx& k = *(const Ctx*)c;
  long oc = o0;
  for (; oc + 4 <= o1; oc += 4) all_rows<4>(k, oc);
  for (; oc < o1; oc++) all_rows<1>(k, oc);
}

}  // namespace

void matvec_bf16(float* out, const uint16_t* inp, const uint16_t* w, const float* bias, long N, long C, long OC) {
  Ctx k{out, inp, w, bias, N, C, OC};
  pool_run(OC, (pool_grain(OC, C * N) + 3) / 4 * 4, rows_task, &k);
}

#else

void matvec_bf16(float*, const uint16_t*, const uint16_t*, const float*, long, long, long) {}

#endif

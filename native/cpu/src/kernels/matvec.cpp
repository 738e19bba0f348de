// matvec.h, four weight rows at a time: an AVX-512 copy streams each weight row once for all input rows (bf16
// widened by a 16-bit shift, f16 by vcvtph2ps, tails masked), an AVX2 copy widens bf16/f16 with intrinsics (vector
// extensions compile that poorly), a portable copy element by element; matvec_isa() picks one per CPU. 4-bit weights: dequantized in registers straight into
// the dot products (AVX-512), else four rows at a time into a per-thread float32 tile.
#include "matvec.h"

#include "../pool.h"
#include "half.h"
#include "quant.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define MATVEC_AVX2 1
#endif

namespace {

struct Ctx {
  float* out;
  const float* inp;
  const void* w;
  const float* bias;
  long N, C, OC;
};

template <int DT>
static AI float load1(const void* p, long i) {
  return DT == F32 ? ((const float*)p)[i] : DT == BF16 ? bf16_to_f32(((const uint16_t*)p)[i]) : f16_to_f32(((const uint16_t*)p)[i]);
}

// Rows [o0, o1) of the weight for every input row; `dot4` handles four weight rows over a prefix of C
// (returning how many columns it covered), the rest is done here element by element.
template <int DT, class Dot4>
static AI void rows(const Ctx& k, long o0, long o1, Dot4 dot4) {
  const long C = k.C;
  long oc = o0;
  for (; oc + 4 <= o1; oc += 4) {
    for (long r = 0; r < k.N; r++) {
      const float* x = k.inp + r * C;
      float s[4];
      long done = dot4(x, oc, s);
      for (long c = done; c < C; c++)
        for (int j = 0; j < 4; j++) s[j] += x[c] * load1<DT>(k.w, (oc + j) * C + c);
      for (int j = 0; j < 4; j++) k.out[r * k.OC + oc + j] = s[j] + (k.bias ? k.bias[oc + j] : 0.f);
    }
  }
  for (; oc < o1; oc++) {
    for (long r = 0; r < k.N; r++) {
      float s = 0;
      for (long c = 0; c < C; c++) s += k.inp[r * C + c] * load1<DT>(k.w, oc * C + c);
      k.out[r * k.OC + oc] = s + (k.bias ? k.bias[oc] : 0.f);
    }
  }
}

template <int DT>
void portable(void* c, long o0, long o1, int) {
  const Ctx& k = *(const Ctx*)c;
  rows<DT>(k, o0, o1, [&](const float* x, long oc, float* s) {
    float acc[4][8] = {};
    long C8 = k.C / 8 * 8;
    for (long i = 0; i < C8; i += 8)
      for (int j = 0; j < 4; j++)
        for (int l = 0; l < 8; l++) acc[j][l] += x[i + l] * load1<DT>(k.w, (oc + j) * k.C + i + l);
    for (int j = 0; j < 4; j++) {
      s[j] = 0;
      for (int l = 0; l < 8; l++) s[j] += acc[j][l];
    }
    return C8;
  });
}

#ifdef MATVEC_AVX2
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

template <int DT>
AVX512 static AI __m512 load16(const void* p, long i, __mmask16 m) {
  if (DT == F32) return _mm512_maskz_loadu_ps(m, (const float*)p + i);
  __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t*)p + i);
  if (DT == BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

// Input rows [r0, r0 + R) x weight rows [oc, oc + W): every weight vector is loaded once and used for the R input
// rows. The next W weight rows are prefetched a cache line per row as this block goes: each block is a short run
// of lines (a 768-wide bf16 row is 24), too short for the hardware prefetcher to catch up (3-6x slower without).
template <int DT, int R, int W>
AVX512 static AI void block512(const Ctx& k, long oc, long r0) {
  const long C = k.C;
  const long line = DT == F32 ? 16 : 32;  // elements per 64-byte line
  const char* next = (const char*)k.w + (oc + W) * C * (DT == F32 ? 4 : 2);
  __m512 acc[R][W];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < W; j++) acc[r][j] = _mm512_setzero_ps();
  for (long i = 0; i < C; i += 16) {
    __mmask16 m = C - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - i)) - 1);
    if (i % line == 0) {
#pragma GCC unroll 4
      for (int j = 0; j < W; j++) _mm_prefetch(next + (j * C + i) * (DT == F32 ? 4 : 2), _MM_HINT_T0);
    }
    __m512 w[W];
#pragma GCC unroll 4
    for (int j = 0; j < W; j++) w[j] = load16<DT>(k.w, (oc + j) * C + i, m);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m512 x = _mm512_maskz_loadu_ps(m, k.inp + (r0 + r) * C + i);
#pragma GCC unroll 4
      for (int j = 0; j < W; j++) acc[r][j] = _mm512_fmadd_ps(x, w[j], acc[r][j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < W; j++)
      k.out[(r0 + r) * k.OC + oc + j] = _mm512_reduce_add_ps(acc[r][j]) + (k.bias ? k.bias[oc + j] : 0.f);
}

// Weight rows [oc, oc + W) for every input row, four input rows at a time: the block stays in L1/L2 between groups.
template <int DT, int W>
AVX512 static AI void all_rows512(const Ctx& k, long oc) {
  long r = 0;
  for (; r + 4 <= k.N; r += 4) block512<DT, 4, W>(k, oc, r);
  switch (k.N - r) {
    case 1: return block512<DT, 1, W>(k, oc, r);
    case 2: return block512<DT, 2, W>(k, oc, r);
    case 3: return block512<DT, 3, W>(k, oc, r);
  }
}

template <int DT>
AVX512 void avx512(void* c, long o0, long o1, int) {
  const Ctx& k = *(const Ctx*)c;
  long oc = o0;
  for (; oc + 4 <= o1; oc += 4) all_rows512<DT, 4>(k, oc);
  for (; oc < o1; oc++) all_rows512<DT, 1>(k, oc);
}

#define AVX2 __attribute__((target("avx2,fma,f16c")))

template <int DT>
AVX2 static AI __m256 load8(const void* p, long i) {
  if (DT == F32) return _mm256_loadu_ps((const float*)p + i);
  __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)p + i));
  if (DT == BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

AVX2 static AI float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

template <int DT>
AVX2 void avx2(void* c, long o0, long o1, int) {
  const Ctx& k = *(const Ctx*)c;
  rows<DT>(k, o0, o1, [&](const float* x, long oc, float* s) AVX2 {
    const long C = k.C, C8 = C / 8 * 8;
    const long line = DT == F32 ? 16 : 32;  // elements per 64-byte line; the next 4 weight rows prefetched as in block512
    const char* next = (const char*)k.w + (oc + 4) * C * (DT == F32 ? 4 : 2);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long i = 0; i < C8; i += 8) {
      if (i % line == 0)
        for (int j = 0; j < 4; j++) _mm_prefetch(next + (j * C + i) * (DT == F32 ? 4 : 2), _MM_HINT_T0);
      __m256 xv = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(xv, load8<DT>(k.w, oc * C + i), a0);
      a1 = _mm256_fmadd_ps(xv, load8<DT>(k.w, (oc + 1) * C + i), a1);
      a2 = _mm256_fmadd_ps(xv, load8<DT>(k.w, (oc + 2) * C + i), a2);
      a3 = _mm256_fmadd_ps(xv, load8<DT>(k.w, (oc + 3) * C + i), a3);
    }
    s[0] = hsum(a0), s[1] = hsum(a1), s[2] = hsum(a2), s[3] = hsum(a3);
    return C8;
  });
}
#endif

int detect() {
#ifdef MATVEC_AVX2
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) return 2;
  if (avx2) return 1;
#endif
  return 0;
}

const int kCpuLevel = detect();
int level = kCpuLevel;  // 2 avx512, 1 avx2, 0 generic; changed only between ops
const char* kLevelNames[] = {"generic", "avx2", "avx512"};

TaskFn pick(int dtype) {
#ifdef MATVEC_AVX2
  if (level == 2) return dtype == F32 ? avx512<F32> : dtype == BF16 ? avx512<BF16> : avx512<F16>;
  if (level == 1) return dtype == F32 ? avx2<F32> : dtype == BF16 ? avx2<BF16> : avx2<F16>;
#endif
  return dtype == F32 ? portable<F32> : dtype == BF16 ? portable<BF16> : portable<F16>;
}

struct QuantCtx {
  float* out;
  const float* inp;
  const QuantDesc* q;
  const float* bias;
  long N, C, OC;
  TaskFn dot;  // pick(F32)
};

const long kTileRows = 4;

void quant_rows(void* c, long o0, long o1, int tid) {
  const QuantCtx& k = *(const QuantCtx*)c;
  for (long r = 0; r < k.N; r++)
    for (long o = o0; o < o1; o++) k.out[r * k.OC + o] = k.bias ? k.bias[o] : 0.f;
  if (matvec_4bit_fused(k.out, k.inp, *k.q, o0, o1, k.N, k.OC)) return;
  float* tile = pool_scratch(tid, kTileRows * k.C);
  for (long oc = o0; oc < o1; oc += kTileRows) {
    long nr = lmin(kTileRows, o1 - oc);
    dequant_range(tile, *k.q, oc * k.C, nr * k.C);
    Ctx sub{k.out + oc, k.inp, tile, k.bias ? k.bias + oc : nullptr, k.N, k.C, k.OC};
    k.dot(&sub, 0, nr, tid);
  }
}

}  // namespace

const char* matvec_isa() { return kLevelNames[level]; }

const char* set_matvec_isa(const char* name) {
  for (int l = 0; l <= kCpuLevel; l++)
    if (strcmp(name, kLevelNames[l]) == 0) level = l;
  return matvec_isa();
}

void matvec(float* out, const float* inp, const void* w, int w_dtype, const float* bias, long N, long C, long OC) {
  Ctx k{out, inp, w, bias, N, C, OC};
  pool_run(OC, (pool_grain(OC, C * N) + 3) / 4 * 4, pick(w_dtype), &k);
}

void matvec_quant(float* out, const float* inp, const QuantDesc& q, const float* bias, long N, long C, long OC) {
  QuantCtx k{out, inp, &q, bias, N, C, OC, pick(F32)};
  pool_run(OC, (pool_grain(OC, C * (N + 1)) + kTileRows - 1) / kTileRows * kTileRows, quant_rows, &k);
}

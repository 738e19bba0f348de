// The GEMM in bf16 products for a bf16 B (the bf16 compute mode, --compute_dtype bf16, or a bf16 A): A is read as
// bf16, float32 rounded to it (nearest even), as it is packed, and AVX512_BF16's vdpbf16ps sums pairs of bf16 products into float32 accumulators, PyTorch CPU
// autocast's numerics. Blocked like gemm-own.cpp (packed panels, an MR x 32 register tile), K in pairs.
// Only with AVX512_BF16 (gemm_bf16_available); not a general mixed-precision GEMM.
#include <cstring>

#include "../pool.h"
#include "gemm.h"
#include "half.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define BF16_X86 1
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
#endif

static bool detect_bf16() {
#ifdef BF16_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool gemm_bf16_available() {
  static const bool available = detect_bf16();
  return available;
}

#ifdef BF16_X86
namespace {

const long KP = 256;   // k pairs of a packed panel (depth 512)
const long NC = 2048;  // columns of B packed at once
const int MR = 12, NR = 32;

struct Ctx {
  long M, N, K;
  Operand A, B;
  float* C;
  long ldc;
  long MC;  // rows of A packed per work item (a multiple of MR)
  long jc, nc, pc, kc, kp;  // panel: columns [jc, jc + nc), depth [pc, pc + kc) in kp pairs
  bool add;
  uint32_t* bpack;
  long jgroups, per_group;
};

// B's bf16 bits at (k, n) (both in range), as stored (B.trans: stored (N, K)).
AI uint32_t b_at(const Ctx& k, long kk, long n) {
  const uint16_t* p = (const uint16_t*)k.B.p;
  return k.B.trans ? p[n * k.B.ld + kk] : p[kk * k.B.ld + n];
}

// Two 16-bit values side by side in memory as one u32, the first in the low half.
AI uint32_t pair_at(const uint16_t* p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

// Each NR-sliver as kp rows of NR u32: (B(k0, n), B(k0 + 1, n)) in the low and high halves; zeros past the edges.
// A whole sliver's full pairs take a fast path: adjacent in a stored row (B.trans) or two stored rows interleaved.
void pack_b(void* c, long s0, long s1, int) {
  const Ctx& k = *(const Ctx*)c;
  const uint16_t* B = (const uint16_t*)k.B.p;
  const long ld = k.B.ld, full = k.kc / 2;  // pairs with both halves in the panel
  for (long s = s0; s < s1; s++) {
    uint32_t* dst = k.bpack + s * k.kp * NR;
    long n0 = k.jc + s * NR, nr = lmin(NR, k.jc + k.nc - n0), p = 0;
    if (nr == NR && k.B.trans) {
      for (long j = 0; j < NR; j++) {
        const uint16_t* row = B + (n0 + j) * ld + k.pc;
        for (long q = 0; q < full; q++) dst[q * NR + j] = pair_at(row + 2 * q);
      }
      p = full;
    } else if (nr == NR) {
      for (; p < full; p++) {
        const uint16_t* r0 = B + (k.pc + 2 * p) * ld + n0;
        for (long j = 0; j < NR; j++) dst[p * NR + j] = (uint32_t)r0[j] | (uint32_t)r0[ld + j] << 16;
      }
    }
    for (; p < k.kp; p++) {
      long k0 = k.pc + 2 * p;
      bool second = 2 * p + 1 < k.kc;
      for (long j = 0; j < NR; j++) {
        dst[p * NR + j] = j < nr ? b_at(k, k0, n0 + j) | (second ? b_at(k, k0 + 1, n0 + j) << 16 : 0u) : 0u;
      }
    }
  }
}

// A's element (i, kk) as bf16 bits: stored bf16, or float32 rounded to nearest even.
AI uint32_t a_at(const Ctx& k, long i, long kk) {
  long at = k.A.trans ? kk * k.A.ld + i : i * k.A.ld + kk;
  return k.A.dtype == BF16 ? ((const uint16_t*)k.A.p)[at] : f32_to_bf16(((const float*)k.A.p)[at]);
}

// Rows [i0, i0 + mc) of A as MR-row slivers of kp rows of MR u32 bf16 pairs, rounded to nearest even. An untransposed
// A's full pairs take a fast path (adjacent in its row).
void pack_a(const Ctx& k, uint32_t* dst, long i0, long mc) {
  const long full = k.A.trans ? 0 : k.kc / 2;
  for (long ir = 0; ir < mc; ir += MR) {
    uint32_t* d = dst + ir * k.kp;
    long mr = lmin(MR, mc - ir);
    for (long i = 0; i < mr && full > 0; i++) {
      long at = (i0 + ir + i) * k.A.ld + k.pc;
      if (k.A.dtype == BF16) {
        const uint16_t* row = (const uint16_t*)k.A.p + at;
        for (long p = 0; p < full; p++) d[p * MR + i] = pair_at(row + 2 * p);
      } else {
        const float* row = (const float*)k.A.p + at;
        for (long p = 0; p < full; p++) d[p * MR + i] = f32_to_bf16(row[2 * p]) | (uint32_t)f32_to_bf16(row[2 * p + 1]) << 16;
      }
    }
    for (long p = 0; p < k.kp; p++) {
      long k0 = k.pc + 2 * p;
      bool second = 2 * p + 1 < k.kc;
      for (long i = p < full ? mr : 0; i < MR; i++) {
        if (i >= mr) {
          d[p * MR + i] = 0;
          continue;
        }
        uint32_t lo = a_at(k, i0 + ir + i, k0), hi = second ? a_at(k, i0 + ir + i, k0 + 1) : 0;
        d[p * MR + i] = lo | hi << 16;
      }
    }
  }
}

// C (mr, nr) (+)= the dot products of an A sliver and a B sliver over kp pairs.
AVX512BF16 void micro(long kp, const uint32_t* __restrict a, const uint32_t* __restrict b, float* c, long ldc, long mr, long nr, bool add) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
  for (long p = 0; p < kp; p++) {
    __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR), b1 = (__m512bh)_mm512_loadu_si512(b + p * NR + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
      __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[p * MR + i]);
      c0[i] = _mm512_dpbf16_ps(c0[i], av, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], av, b1);
    }
  }
  __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1), m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
  for (long i = 0; i < mr; i++) {
    float* row = c + i * ldc;
    if (add) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, row));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, c0[i]);
    _mm512_mask_storeu_ps(row + 16, m1, c1[i]);
  }
}

AVX512BF16 void compute(void* c, long item0, long item1, int tid) {
  const Ctx& k = *(const Ctx*)c;
  uint32_t* apack = (uint32_t*)pool_scratch(tid, k.MC * KP);
  long slivers = (k.nc + NR - 1) / NR;
  for (long item = item0; item < item1; item++) {
    long i0 = (item / k.jgroups) * k.MC;
    long mc = lmin(k.MC, k.M - i0);
    long s0 = (item % k.jgroups) * k.per_group, s1 = lmin(slivers, s0 + k.per_group);
    pack_a(k, apack, i0, mc);
    for (long s = s0; s < s1; s++) {
      long n0 = k.jc + s * NR;
      const uint32_t* b = k.bpack + s * k.kp * NR;
      for (long ir = 0; ir < mc; ir += MR)
        micro(k.kp, apack + ir * k.kp, b, k.C + (i0 + ir) * k.ldc + n0, k.ldc, lmin(MR, mc - ir), lmin(NR, k.N - n0), k.add);
    }
  }
}

}  // namespace

void gemm_bf16(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  Ctx k{M, N, K, A, B, C, ldc, 96, 0, 0, 0, 0, 0, false, nullptr, 1, 1};
  k.bpack = (uint32_t*)pool_scratch2(0, KP * (NC + NR));
  long mblocks = (M + k.MC - 1) / k.MC;
  for (k.jc = 0; k.jc < N; k.jc += NC) {
    k.nc = lmin(NC, N - k.jc);
    long slivers = (k.nc + NR - 1) / NR;
    long want = lmin(lmax((2L * pool_threads() + mblocks - 1) / mblocks, 1), slivers);
    k.per_group = (slivers + want - 1) / want;
    k.jgroups = (slivers + k.per_group - 1) / k.per_group;
    for (k.pc = 0; k.pc < K; k.pc += 2 * KP) {
      k.kc = lmin(2 * KP, K - k.pc);
      k.kp = (k.kc + 1) / 2;
      k.add = accumulate || k.pc > 0;
      pool_run(slivers, pool_grain(slivers, k.kc * NR), pack_b, &k);
      pool_run(mblocks * k.jgroups, 1, compute, &k);
    }
  }
}

#else

void gemm_bf16(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  gemm_own(M, N, K, A, B, accumulate, C, ldc);
}

#endif

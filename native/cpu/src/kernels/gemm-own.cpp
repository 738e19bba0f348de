// The addon's own GEMM, used when OpenBLAS is absent or slower (gemm.cpp): packed slivers of A and B (bf16/f16
// widened, quantized weights dequantized, as B is packed) and an MR x NR register tile, one copy per instruction
// set, picked at run time.
#include "../pool.h"
#include "gemm.h"
#include "half.h"
#include "quant.h"
#include "simd.h"

namespace {

const long KC = 512;  // depth of a packed panel
const long NC = 2048;  // columns of B packed at once

struct Ctx {
  long M, N, K;
  Operand A, B;
  float* C;
  long ldc;
  long MC;  // rows of A packed per work item
  long jc, nc, pc, kc;
  bool add;  // accumulate into C for this panel
  float* bpack;
  long jgroups, per_group;  // NR-slivers of the panel are split into jgroups of per_group
};

template <int NR>
AI void pack_b(const Ctx& k, long s0, long s1) {
  for (long s = s0; s < s1; s++) {
    float* dst = k.bpack + s * k.kc * NR;
    long n0 = k.jc + s * NR;
    long nr = lmin(NR, k.jc + k.nc - n0);
    if (!k.B.trans) {
      for (long kk = 0; kk < k.kc; kk++) {
        float* d = dst + kk * NR;
        widen_any(d, k.B.p, k.B.dtype, (k.pc + kk) * k.B.ld + n0, nr);
        for (long j = nr; j < NR; j++) d[j] = 0;
      }
    } else {
      float row[KC];
      for (long j = 0; j < NR; j++) {
        if (j < nr) widen_any(row, k.B.p, k.B.dtype, (n0 + j) * k.B.ld + k.pc, k.kc);
        for (long kk = 0; kk < k.kc; kk++) dst[kk * NR + j] = j < nr ? row[kk] : 0.f;
      }
    }
  }
}

template <int MR>
AI void pack_a(const Ctx& k, float* dst, long i0, long mc) {
  const float* a = (const float*)k.A.p;
  const long ld = k.A.ld, kc = k.kc, pc = k.pc;
  for (long ir = 0; ir < mc; ir += MR) {
    float* d = dst + ir * kc;
    long mr = lmin(MR, mc - ir);
    if (!k.A.trans) {
      for (long i = 0; i < mr; i++) {
        const float* src = a + (i0 + ir + i) * ld + pc;
        for (long kk = 0; kk < kc; kk++) d[kk * MR + i] = src[kk];
      }
      for (long i = mr; i < MR; i++)
        for (long kk = 0; kk < kc; kk++) d[kk * MR + i] = 0.f;
    } else {
      for (long kk = 0; kk < kc; kk++) {
        const float* src = a + (pc + kk) * ld + i0 + ir;
        for (long i = 0; i < mr; i++) d[kk * MR + i] = src[i];
        for (long i = mr; i < MR; i++) d[kk * MR + i] = 0.f;
      }
    }
  }
}

// C (mr, nr) (+)= a (kc x MR sliver) * b (kc x NR sliver), accumulated in MR x 2 registers of NR/2 floats.
template <int MR, int NR>
AI void micro(long kc, const float* __restrict a, const float* __restrict b, float* c, long ldc, long mr, long nr, bool add) {
  typedef float V __attribute__((vector_size(NR * 2)));  // half a row: one native register
  const int W = NR / 2;
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) c0[i] = c1[i] = V{};
  for (long kk = 0; kk < kc; kk++) {
    V b0, b1;
    memcpy(&b0, b + kk * NR, sizeof b0);
    memcpy(&b1, b + kk * NR + W, sizeof b1);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      float av = a[kk * MR + i];
      c0[i] += av * b0;
      c1[i] += av * b1;
    }
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      if (add) {
        V o0, o1;
        memcpy(&o0, c + i * ldc, sizeof o0);
        memcpy(&o1, c + i * ldc + W, sizeof o1);
        c0[i] += o0;
        c1[i] += o1;
      }
      memcpy(c + i * ldc, &c0[i], sizeof c0[i]);
      memcpy(c + i * ldc + W, &c1[i], sizeof c1[i]);
    }
  } else {
    float tile[MR][NR];
    for (int i = 0; i < MR; i++) {
      memcpy(tile[i], &c0[i], sizeof c0[i]);
      memcpy(tile[i] + W, &c1[i], sizeof c1[i]);
    }
    for (long i = 0; i < mr; i++)
      for (long j = 0; j < nr; j++) c[i * ldc + j] = add ? c[i * ldc + j] + tile[i][j] : tile[i][j];
  }
}

template <int MR, int NR>
AI void compute(const Ctx& k, long item0, long item1, int tid) {
  float* apack = pool_scratch(tid, k.MC * KC);
  long slivers = (k.nc + NR - 1) / NR;
  for (long item = item0; item < item1; item++) {
    long i0 = (item / k.jgroups) * k.MC;
    long mc = lmin(k.MC, k.M - i0);
    long s0 = (item % k.jgroups) * k.per_group, s1 = lmin(slivers, s0 + k.per_group);
    pack_a<MR>(k, apack, i0, mc);
    for (long s = s0; s < s1; s++) {
      long n0 = k.jc + s * NR;
      long nr = lmin(NR, k.N - n0);
      const float* b = k.bpack + s * k.kc * NR;
      for (long ir = 0; ir < mc; ir += MR)
        micro<MR, NR>(k.kc, apack + ir * k.kc, b, k.C + (i0 + ir) * k.ldc + n0, k.ldc, lmin(MR, mc - ir), nr, k.add);
    }
  }
}

struct Variant {
  const char* isa;
  int MR, NR;
  TaskFn pack, compute;
};

#define GEMM_VARIANT(NAME, ISA, ATTR, MR_, NR_)                                                             \
  ATTR void NAME##_pack(void* c, long b, long e, int) { pack_b<NR_>(*(const Ctx*)c, b, e); }               \
  ATTR void NAME##_compute(void* c, long b, long e, int tid) { compute<MR_, NR_>(*(const Ctx*)c, b, e, tid); } \
  const Variant NAME = {ISA, MR_, NR_, NAME##_pack, NAME##_compute};

GEMM_VARIANT(generic, "generic", , 4, 8)
#if defined(__x86_64__) && defined(__GNUC__)
GEMM_VARIANT(avx2, "avx2", __attribute__((target("avx2,fma"))), 6, 16)
GEMM_VARIANT(avx512, "avx512", __attribute__((target("avx512f,avx2,fma"))), 12, 32)
#endif

const Variant& variant() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2;
#endif
  return generic;
}

}  // namespace

const char* gemm_own_isa() { return variant().isa; }

void gemm_own(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  const Variant& v = variant();
  Ctx k{M, N, K, A, B, C, ldc, 96 /* a multiple of every MR */, 0, 0, 0, 0, false, nullptr, 1, 1};
  k.bpack = pool_scratch2(0, KC * (NC + v.NR));
  long mblocks = (M + k.MC - 1) / k.MC;
  for (k.jc = 0; k.jc < N; k.jc += NC) {
    k.nc = lmin(NC, N - k.jc);
    long slivers = (k.nc + v.NR - 1) / v.NR;
    long want = (2L * pool_threads() + mblocks - 1) / mblocks;
    k.per_group = (slivers + lmin(lmax(want, 1), slivers) - 1) / lmin(lmax(want, 1), slivers);
    k.jgroups = (slivers + k.per_group - 1) / k.per_group;
    for (k.pc = 0; k.pc < K; k.pc += KC) {
      k.kc = lmin(KC, K - k.pc);
      k.add = accumulate || k.pc > 0;
      pool_run(slivers, pool_grain(slivers, k.kc * v.NR), v.pack, &k);
      pool_run(mblocks * k.jgroups, 1, v.compute, &k);
    }
  }
}

// Packed bf16 weights (Q_BF16_PACKED, quant.h): a frozen bf16 linear weight (OC, C) re-laid for inference in tiles
// of kPackTile output rows, the last one only as wide as OC's remainder rounded up to 16 rows. In a tile of width W
// the columns go in pairs, and for each pair the tile's rows sit side by side: element (o, c) of tile t = o / kPackTile
// is at the tile's start + (c / 2 * W + o % kPackTile) * 2 + c % 2, zeros past OC and C. vdpbf16ps then multiplies
// vectors of 16 rows' pairs by one input pair broadcast to every lane, so each lane is its own output and no lanes
// are summed across; the row layout (matvec-bf16.cpp) ends every output with a 16-lane sum and loads every input
// row once per weight block. A tile is read front to back, so a thread's span of tiles is one sequential stream.
// The products are matvec_bf16's (exact bf16 products summed in float32) up to summation order.
// C++ harness, one Zen core, against matvec_bf16 (calls alternated, medians): tiny-english's head (256 x 32000) at
// 8 rows 610-640 -> 380-460 us, at 1 row 330 -> 350-370 us (the one shape where it is slower); a 7B projection
// (4096 x 4096) at 8 rows 3.4 -> 1.15 ms, at 1 row 1.13 -> 0.88 ms.
#include <cstring>

#include "../pool.h"
#include "matvec.h"
#include "quant.h"
#include "simd.h"

namespace {

// Rows of tile t: kPackTile, or the remainder rounded up to 16 (so a small OC is not padded to a whole tile).
long tile_width(long OC, long t) { return lmin(kPackTile, (OC - t * kPackTile + 15) / 16 * 16); }

// Where tile t starts (every tile before it is whole), for `pairs` column pairs.
long tile_start(long t, long pairs) { return t * pairs * kPackTile * 2; }

long tile_count(long OC) { return (OC + kPackTile - 1) / kPackTile; }

struct Pack {
  uint16_t* dst;
  const uint16_t* w;
  long OC, C;
};

void pack_task(void* c, long t0, long t1, int) {
  const Pack& k = *(const Pack*)c;
  const long pairs = (k.C + 1) / 2;
  for (long t = t0; t < t1; t++) {
    const long width = tile_width(k.OC, t);
    for (long j = 0; j < width; j++) {
      const long o = t * kPackTile + j;
      uint16_t* d = k.dst + tile_start(t, pairs) + j * 2;
      for (long c = 0; c < 2 * pairs; c++) d[(c / 2) * width * 2 + c % 2] = o < k.OC && c < k.C ? k.w[o * k.C + c] : 0;
    }
  }
}

}  // namespace

long packed_bf16_elems(long OC, long C) {
  const long t = tile_count(OC) - 1;
  return tile_start(t, (C + 1) / 2) + tile_width(OC, t) * ((C + 1) / 2) * 2;
}

void pack_bf16(uint16_t* dst, const uint16_t* w, long OC, long C) {
  Pack k{dst, w, OC, C};
  const long tiles = tile_count(OC);
  pool_run(tiles, pool_grain(tiles, kPackTile * C), pack_task, &k);
}

void unpack_bf16_range(float* d, const QuantDesc& q, long off, long n) {
  const long C = q.C, pairs = (C + 1) / 2;
  for (long i = off; i < off + n; i++) {
    const long o = i / C, c = i % C, t = o / kPackTile;
    const uint16_t bits = q.tiles[tile_start(t, pairs) + ((c / 2) * tile_width(q.OC, t) + o % kPackTile) * 2 + c % 2];
    *d++ = bits_to_f32((uint32_t)bits << 16);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* placeholders), not in this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

namespace {

// How far ahead of the pair being read the prefetches run, in elements: 6 KB (C++ harness, tiny-english's head and a
// 4096 x 4096 weight at 1 and 8 rows on one Zen core: 3, 12 and 18 KB measured the same within the VM's noise).
const long kPrefetchAhead = 3072;

struct Ctx {
  float* out;
  const uint16_t* inp;  // (N, C) bf16
  const uint16_t* tiles;
  const float* bias;
  long N, C, OC;
};

// One column pair of a tile of G groups of 16 rows into R input rows' accumulators; HALF: an odd C's last pair,
// which has one input column.
template <int R, int G, bool HALF>
AVX512BF16 static AI void pair_step(const Ctx& k, const uint16_t* tile, long r0, long p, __m512 (&acc)[R][G]) {
  const uint16_t* w = tile + p * G * 32;
  __m512bh wv[G];
#pragma GCC unroll 3
  for (int g = 0; g < G; g++) {
    _mm_prefetch((const char*)(w + kPrefetchAhead + 32 * g), _MM_HINT_T0);
    wv[g] = (__m512bh)_mm512_loadu_si512(w + 32 * g);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    const uint16_t* x = k.inp + (r0 + r) * k.C + 2 * p;
    uint32_t xv = x[0];
    if (!HALF) memcpy(&xv, x, sizeof xv);
    const __m512bh xb = (__m512bh)_mm512_set1_epi32((int)xv);
#pragma GCC unroll 3
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], xb, wv[g]);
  }
}

// Tile t for input rows [r0, r0 + R). Every output sums its pairs in order in one lane, whatever R, so a row's
// result does not depend on the rows beside it (a request batched with others gets its tokens alone). Splitting a
// few rows' sums into evens and odds, for more sums in flight, measured the same (C++ harness, 1 and 2 rows).
template <int R, int G>
AVX512BF16 static AI void tile_rows(const Ctx& k, long t, long r0) {
  const long pairs = (k.C + 1) / 2, whole = k.C / 2;
  const uint16_t* tile = k.tiles + tile_start(t, pairs);
  __m512 acc[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 3
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  for (long p = 0; p < whole; p++) pair_step<R, G, false>(k, tile, r0, p, acc);
  if (whole < pairs) pair_step<R, G, true>(k, tile, r0, whole, acc);
#pragma GCC unroll 3
  for (int g = 0; g < G; g++) {
    const long o = t * kPackTile + 16 * g;
    if (o >= k.OC) break;
    const __mmask16 m = k.OC - o >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k.OC - o)) - 1);
    const __m512 b = k.bias ? _mm512_maskz_loadu_ps(m, k.bias + o) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(k.out + (r0 + r) * k.OC + o, m, _mm512_add_ps(acc[r][g], b));
  }
}

// Tile t (G groups) for every input row, 8 at a time (the tile stays in L1/L2 between groups), then the rest.
template <int G>
AVX512BF16 static AI void all_rows(const Ctx& k, long t) {
  long r = 0;
  for (; r + 8 <= k.N; r += 8) tile_rows<8, G>(k, t, r);
  switch (k.N - r) {
    case 1: return tile_rows<1, G>(k, t, r);
    case 2: return tile_rows<2, G>(k, t, r);
    case 3: return tile_rows<3, G>(k, t, r);
    case 4: return tile_rows<4, G>(k, t, r);
    case 5: return tile_rows<5, G>(k, t, r);
    case 6: return tile_rows<6, G>(k, t, r);
    case 7: return tile_rows<7, G>(k, t, r);
  }
}

AVX512BF16 void tiles_task(void* c, long t0, long t1, int) {
  const Ctx& k = *(const Ctx*)c;
  for (long t = t0; t < t1; t++) {
    switch (tile_width(k.OC, t) / 16) {
      case 3: all_rows<3>(k, t); break;
      case 2: all_rows<2>(k, t); break;
      case 1: all_rows<1>(k, t); break;
    }
  }
}

}  // namespace

// One span of tiles per thread (one stream each, as matvec_bf16), unless the work is too small to share.
void matvec_packed(float* out, const uint16_t* inp, const QuantDesc& q, const float* bias, long N) {
  Ctx k{out, inp, q.tiles, bias, N, q.C, q.OC};
  const long tiles = tile_count(q.OC);
  pool_run(tiles, lmax((tiles + pool_threads() - 1) / pool_threads(), pool_grain(tiles, kPackTile * q.C * N)), tiles_task, &k);
}

#else

void matvec_packed(float*, const uint16_t*, const QuantDesc&, const float*, long) {}

#endif

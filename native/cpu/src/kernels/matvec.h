// The linear layer's forward for a few rows (a decode batch: up to 16 rows, 64 for matvec_bf16): out (N, OC) =
// inp (N, C) @ weight^T + bias.
// Memory-bound: it streams the weight once, widening bf16/f16 in registers. Not a GEMM (see gemm.h).
#pragma once

#include <cstdint>

const long kMatvecRows = 16;  // N at most this (a decode batch); more rows go to the GEMM
// matvec_bf16 takes up to this many: no packing, so it beats gemm_bf16 (which packs all of B per call) up to ~64 rows
// (768x2048 bf16 on 2 Zen 4 cores: 17 rows 0.16 vs 0.44 ms, 64 rows 0.67 vs 0.69 ms; 72 rows 0.76 vs 0.68 ms)
const long kMatvecBf16Rows = 64;

// The SIMD level the dense matvec runs with ("avx512", "avx2" or "generic"); set_matvec_isa lowers it to a level
// the CPU has (tests run each copy) and returns the level now in use.
const char* matvec_isa();
const char* set_matvec_isa(const char* name);

// bias is float32 or null.
void matvec(float* out, const float* inp, const void* w, int w_dtype, const float* bias, long N, long C, long OC);

// bf16 input rows times a bf16 weight in bf16 dot products with float32 sums (matvec-bf16.cpp); only where
// gemm_bf16_available() (AVX512_BF16).
void matvec_bf16(float* out, const uint16_t* inp, const uint16_t* w, const float* bias, long N, long C, long OC);

// The same for a 4-bit weight (quant.h): dequantized in registers into the dot products (AVX-512), else four rows
// at a time into a per-thread float32 tile that the dot products above run on.
struct QuantDesc;
void matvec_quant(float* out, const float* inp, const QuantDesc& q, const float* bias, long N, long C, long OC);

// bf16 weights packed for inference (matvec-packed.cpp): tiles of kPackTile output rows, column pairs interleaved.
const long kPackTile = 48;
// Elements of a packed (OC, C) weight: OC rounded up to 16 rows (the last tile's), C to whole pairs.
long packed_bf16_elems(long OC, long C);
// dst (packed_bf16_elems) = the row-major bf16 weight w (OC, C) in the packed layout.
void pack_bf16(uint16_t* dst, const uint16_t* w, long OC, long C);
// d[0..n) = the packed weight's row-major elements [off, off + n) as float32 (dequant_range's packed case).
void unpack_bf16_range(float* d, const QuantDesc& q, long off, long n);
// out (N, q.OC) = inp (N, q.C, bf16) @ weight^T + bias for any N, in bf16 dot products with float32 sums; only where
// gemm_bf16_available() (AVX512_BF16), which packing requires.
void matvec_packed(float* out, const uint16_t* inp, const QuantDesc& q, const float* bias, long N);

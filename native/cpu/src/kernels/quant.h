// Frozen linear weights in formats of their own, as the kernels see them: bitsandbytes-quantized ones
// (src/engine/quantized.ts) and bf16 ones packed for inference (matvec-packed.cpp). One descriptor of a weight's
// parts, the block-by-block dequantization every linear path reads them through, and LLM.int8's forward. Not the
// storage (binding/quant-ref.h) and not a quantizer.
#pragma once
#include <cstdint>

#include "half.h"

// Operand / weight dtypes beyond the dense DType codes.
enum QuantType { Q_NF4 = 16, Q_FP4 = 17, Q_INT8 = 18, Q_BF16_PACKED = 19 };

static inline bool is_quant(int dtype) { return dtype >= Q_NF4; }

// log2(n) when n is a power of two, else -1 (QuantDesc's *_log2); a / n with it, no division when it is a power.
static inline int log2_exact(long n) { return n > 0 && (n & (n - 1)) == 0 ? __builtin_ctzl((unsigned long)n) : -1; }
static inline long div_by(long a, long n, int log2) { return log2 >= 0 ? a >> log2 : a / n; }

struct QuantDesc {
  int type;  // a QuantType
  long OC, C;
  // 4-bit: codes over the row-major flattened weight, two a byte (first in the high nibble), one absmax per block.
  long blocksize;
  const uint8_t* packed;
  const float* absmax;  // null when double-quantized: absmax[b] = nested_map[absmax_codes[b]] * nested_absmax[b / nb] + offset
  const uint8_t* absmax_codes;
  const float* nested_absmax;
  const float* nested_map;
  long nested_blocksize;
  float offset;
  int blocksize_log2, nested_log2;  // log2 of the block sizes when powers of two (bitsandbytes': always), else -1
  int dtype;  // F32, BF16 or F16 (half.h): each code * absmax is rounded to it, bitsandbytes' quant_state.dtype
  // LLM.int8: value = w * scb[row] / 127; activation columns with |x| >= threshold go through in float.
  const int8_t* w8;
  const float* scb;
  float threshold;
  // Q_BF16_PACKED: the tiles of matvec-packed.cpp's layout
  const uint16_t* tiles;
};

// d[0..n) = the weight's flattened elements [off, off + n) in float32 as the linear layers read them: 4-bit
// code value * block absmax rounded to dtype; int8 w * (scb / 127) (bitsandbytes' backward form); packed bf16 as is.
void dequant_range(float* d, const QuantDesc& q, long off, long n);
// int8 rows r0..r1 as bitsandbytes' int8_vectorwise_dequant: (w * scb) / 127 (download, forward outlier columns).
void dequant_int8_vectorwise(float* d, const QuantDesc& q, long r0, long r1);

// out[r * OC + o] += the dot of 4-bit weight row o with inp row r, for o in [o0, o1) and r < N (1..4), dequantizing
// in registers; false (nothing done) where this CPU or SIMD level has no such kernel (then: tiles, see matvec.cpp).
bool matvec_4bit_fused(float* out, const float* inp, const QuantDesc& q, long o0, long o1, long N, long OC);

// widen() (half.h) for any operand dtype, dense or quantized (src is then a QuantDesc*).
static inline __attribute__((always_inline)) void widen_any(float* d, const void* src, int dtype, long off, long n) {
  if (is_quant(dtype))
    dequant_range(d, *(const QuantDesc*)src, off, n);
  else
    widen(d, src, dtype, off, n);
}

// out (N, OC) = LLM.int8(inp (N, C), weight) + bias, bitsandbytes' MatMul8bitLt forward (quant-int8.cpp).
void int8_matmul_forward(float* out, const float* inp, const QuantDesc& q, const float* bias, long N, long C, long OC);

// The SIMD level the quantized kernels run with ("avx512", "avx2" or "generic"); set_quant_isa caps it (for
// tests of each copy) and returns the level now in use.
const char* quant_isa();
const char* set_quant_isa(const char* name);
int quant_isa_level();  // 2 avx512, 1 avx2, 0 generic

// A float32 value the compiler may not fuse into a following add (bitsandbytes rounds each step).
static inline __attribute__((always_inline)) float no_fuse(float v) {
#if defined(__GNUC__) && defined(__x86_64__)
  __asm__("" : "+x"(v));
  return v;
#else
  volatile float t = v;
  return t;
#endif
}

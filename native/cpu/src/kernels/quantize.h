// Quantizing a float32 weight on the host the bitsandbytes way (formats/bnb-4bit.ts, formats/bnb-int8.ts are the
// spec): 4-bit blocks and LLM.int8 rows, on the pool. Not the quantized matmuls (quant.h) nor double quantization.
#pragma once
#include <cstdint>

// n values in blocks of `blocksize` (even): absmax[b] and two codes a byte in packed (ceil(n / 2), an odd n padded
// with a 0). A scaled value x gets order[number of bounds < x], bounds being the 15 sorted code midpoints.
void k_quantize_4bit(const float* w, long n, long blocksize, const float* bounds, const uint8_t* order, uint8_t* packed,
                     float* absmax);

// (OC, C) rows rounded to float16, then q = round-half-even(v * (1 / absmax) * 127) and scb[o] = absmax.
void k_quantize_int8_rows(const float* w, long OC, long C, int8_t* q, float* scb);

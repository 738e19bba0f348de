// The linear layer's forward for a few rows (batch-1 decoding): out (N, OC) = inp (N, C) @ weight^T + bias.
// Memory-bound: it streams the weight once, widening bf16/f16 in registers. Not a GEMM (see gemm.h).
#pragma once

const long kMatvecRows = 4;  // N at most this

// bias is float32 or null.
void matvec(float* out, const float* inp, const void* w, int w_dtype, const float* bias, long N, long C, long OC);

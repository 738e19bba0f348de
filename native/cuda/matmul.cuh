// Linear layers, nn.Linear layout: out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias. Weights may be
// f32, bf16 or f16; activations and gradients are f32. See matmul.cu for how each precision rounds.
#pragma once
#include "common.cuh"

void op_matmul_forward(float* out, const float* inp, const void* w, int w_dtype, const void* bias, int bias_dtype, long N, long C,
                       long OC, int precision);
// dinp = dout @ weight (overwrite), dweight += dout^T @ inp, dbias += column sums of dout; each skipped when null.
void op_matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const void* w, int w_dtype,
                        long N, long C, long OC, int precision);

// Every op that writes device memory reports the bytes it wrote, so a cached 16-bit copy of a matmul
// input (the q/k/v and gate/up projections share theirs) is dropped once its source changes.
void invalidate_conversions(const void* p, size_t bytes);

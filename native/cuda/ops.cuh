// Host-side launchers of the non-matmul, non-attention ops: each enqueues its kernels on the stream and
// returns. Semantics are those of src/engine/backend.ts (the js backend is the spec); sizes and dtypes
// were checked by the TypeScript side.
#pragma once
#include "common.cuh"

// ---- elementwise (elementwise.cu) ----
void op_fill(void* t, int dtype, size_t n, double value);
void op_convert(void* dst, int dst_dtype, const void* src, int src_dtype, size_t n);  // equal dtypes copy bytes
void op_add(float* out, const float* a, const float* b, size_t n);
void op_axpy(float* dst, const float* src, double s, size_t n);
void op_scale(float* t, double s, size_t n);
void op_dropout(float* out, const float* inp, size_t n, double p, uint32_t seed);
void op_copy_time(void* dst, const void* src, size_t elem_bytes, long B, long W, long Tdst, long dst_t0, long Tsrc, long src_t0,
                  long count);

// ---- layers (layers.cu) ----
void op_embedding_forward(float* out, const int32_t* ids, const void* table, int table_dtype, long V, long N, long C);
void op_embedding_backward(float* dtable, const float* dout, const int32_t* ids, long V, long N, long C);
void op_rmsnorm_forward(float* out, float* rstd, const float* inp, const void* w, int w_dtype, long N, long C, float eps);
void op_rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const void* w, int w_dtype,
                         const float* rstd, long N, long C);
void op_rope(float* x, const float* cos, const float* sin, long B, long T, long H, long HD, bool inverse);
void op_swiglu_forward(float* out, const float* gate, const float* up, size_t n);
void op_swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n);
// dst[c] += (cs ? cs[c] : 1) * sum over rows n of a[n, c] * (b ? b[n, c] : 1) * (r ? r[n] : 1)
void op_column_sums(float* dst, const float* a, const float* b, const float* r, const float* cs, long N, long C);
// out[n, c] = inp[n, c] * scale[c] + (bias ? bias[c] : 0); out may alias inp
void op_scale_columns(float* out, const float* inp, const float* scale, const void* bias, int bias_dtype, long N, long C);

// ---- loss and optimizer (loss-optim.cu) ----
void op_cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, long N, long V, float grad_scale);
void op_sum_squares(float* out, const float* x, size_t n);
// step_size = lr / (1 - beta1^step), bc2_sqrt = sqrt(1 - beta2^step), computed by the caller as torch does
void op_adamw(float* param, const float* grad, float* m, float* v, size_t n, double lr, double beta1, double beta2, double eps,
              double weight_decay, double step_size, double bc2_sqrt);

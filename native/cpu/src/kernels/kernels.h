// The math behind every Backend op, on raw pointers: no N-API, no validation (binding/ checks sizes,
// dtypes and ids first). Semantics are those of src/engine/backend.ts; the js backend is the spec.
#pragma once
#include <cstdint>

#include "half.h"

// ---- elementwise (elementwise.cpp) ----
void k_fill(void* p, int dtype, long n, double value);
void k_convert(void* dst, int dst_dtype, const void* src, int src_dtype, long n);  // any float dtypes, or equal dtypes
// Act arguments may be 16-bit (half.h); the rest is f32.
void k_add(Act out, Act a, Act b, long n);
void k_axpy(Act dst, Act src, float s, long n);
void k_scale(Act t, float s, long n);
void k_dropout(Act out, Act inp, long n, double p, uint32_t seed);
void k_copy_time(void* dst, const void* src, long elem_bytes, long B, long W, long Tdst, long dst_t0, long Tsrc, long src_t0,
                 long count);

// ---- per-output-feature (columns.cpp) ----
void k_scale_columns(Act out, Act inp, const float* scale, Act bias, long N, long OC);  // bias.p may be null
void k_column_dot(float* out, const float* a, const float* b, const float* scale, long N, long OC);

// ---- layers (layers.cpp) ----
void k_embedding_forward(Act out, const int32_t* ids, const void* table, int table_dtype, long N, long C);
void k_embedding_backward(float* dtable, Act dout, const int32_t* ids, long N, long C);
void k_rmsnorm_forward(Act out, float* rstd, Act inp, const void* w, int w_dtype, long N, long C, float eps);
void k_rmsnorm_backward(Act dinp, float* dweight, Act dout, Act inp, const void* w, int w_dtype, const float* rstd, long N,
                        long C);
void k_rope(Act x, const float* cos, const float* sin, long B, long T, long H, long HD, bool inverse);
void k_swiglu_forward(Act out, Act gate, Act up, long n);
void k_swiglu_backward(Act dgate, Act dup, Act dout, Act gate, Act up, long n);

// ---- linear (matmul.cpp, on gemm.h; w_dtype may be a quant.h QuantType with w its QuantDesc*) ----
void k_matmul_forward(Act out, Act inp, const void* w, int w_dtype, const void* bias, int bias_dtype, long N, long C,
                      long OC);
void k_matmul_backward(Act dinp, float* dweight, float* dbias, Act dout, Act inp, const void* w, int w_dtype, long N, long C,
                       long OC);

// ---- attention (attention.cpp) ----
// seg (B, Tkv) or null: packed segments, each a contiguous run; a query sees only its own run's keys (mask null then).
void k_attention_forward(Act out, float* lse, Act q, Act k, Act v, const int32_t* mask, const int32_t* seg, long B, long Tq,
                         long Tk, long Tkv, long NH, long NKV, long HD);
void k_attention_backward(Act dq, Act dk, Act dv, Act dout, Act out, const float* lse, Act q, Act k, Act v,
                          const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV, long HD);

// ---- decode attention over a paged KV cache (attention-paged.cpp) ----
// kc, vc: the cache's chunk tables, all of cache_dt; rows (R, 3) n0, Tq, Tk; blocks (R, maxBlocks). See backend.ts.
void k_attention_paged(Act out, Act q, Act k, Act v, void* const* kc, void* const* vc, int cache_dt, const int32_t* rows,
                       const int32_t* blocks, long R, long maxBlocks, long NH, long NKV, long HD, long BT, long BPC);

// ---- loss and optimizer (loss-optim.cpp) ----
void k_cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, long N, long V,
                     float grad_scale);
double k_sum_squares(const float* x, long n);
// out[r] = the first index of row r's largest value (x (R, V)); a NaN never wins, except at index 0, which stays.
void k_argmax_rows(int32_t* out, const float* x, long R, long V);
void k_adamw(float* param, const float* grad, float* m, float* v, long n, double lr, double beta1, double beta2, double eps,
             double weight_decay, double step);

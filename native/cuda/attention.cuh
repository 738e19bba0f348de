// Causal attention with GQA, a key-padding mask and the uniform rule for rows with no allowed key
// (see src/engine/backend.ts). Layouts: q (B, Tq, NH, HD), k/v (B, Tkv, NKV, HD), lse (B, NH, Tq).
// seg (B, Tkv) or null: packed segments; a query sees only keys of its own segment (mask is null then, so no
// row is uniform).
#pragma once
#include "common.cuh"

void op_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                          long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD, int precision);
// Training shape (Tq = Tk = Tkv = T); dq, dk, dv overwrite.
void op_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q,
                           const float* k, const float* v, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                           long HD, int precision);

// ---- the two implementations behind them ----
// Exact float32, one block per query (or key) row, warps splitting the other axis: any HD <= 256, any Tq.
void attn_forward_simt(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                       long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD);
// D (B, NH, T) = rowsum(dout * out), the softmax backward's correction term.
void attn_row_dot(float* D, const float* dout, const float* out, long B, long T, long NH, long HD);
// uniform_only: only the rows with no allowed key (lse NaN): dq rows overwritten, dk/dv accumulated.
void attn_backward_simt(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                        const float* lse, const float* D, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                        long HD, bool uniform_only);
// bf16 tensor cores (WMMA), 64x64 tiles, online softmax; HD in {32, 64, 128}. Rows with no allowed key
// are finished by the SIMT kernels (forward: in its own epilogue).
bool attn_tc_supports(long HD);
void attn_forward_tc(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                     long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD);
void attn_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                      const float* lse, const float* D, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                      long HD);

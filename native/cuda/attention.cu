// Chooses the attention implementation: bf16 tensor cores under PREC_BF16 when the head dim and the
// alignment allow (and the query block is not a short decode step), exact float32 SIMT otherwise.
#include "attention.cuh"
#include "device.cuh"

static bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

static bool use_tc(int precision, long HD, const float* q, const float* k, const float* v, const float* other) {
  return precision == PREC_BF16 && attn_tc_supports(HD) && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(other);
}

void op_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                          long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD, int precision) {
  if (B == 0 || Tq == 0 || NH == 0) return;
  if (use_tc(precision, HD, q, k, v, out) && (Tq == Tk || Tq >= 16))
    attn_forward_tc(out, lse, q, k, v, mask, seg, B, Tq, Tk, Tkv, NH, NKV, HD);
  else attn_forward_simt(out, lse, q, k, v, mask, seg, B, Tq, Tk, Tkv, NH, NKV, HD);
}

void op_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q,
                           const float* k, const float* v, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                           long HD, int precision) {
  if (B == 0 || T == 0 || NH == 0) return;
  float* D = (float*)scratch(SLOT_ATTN, (size_t)B * NH * T * sizeof(float));
  attn_row_dot(D, dout, out, B, T, NH, HD);
  if (use_tc(precision, HD, q, k, v, dout)) {
    attn_backward_tc(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV, HD);
    attn_backward_simt(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV, HD, true);
  } else {
    attn_backward_simt(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV, HD, false);
  }
}

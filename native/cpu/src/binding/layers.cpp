// JavaScript entry points of the layer ops: embedding, matmul, RMSNorm, rope, attention, SwiGLU.
// Each checks dtypes and sizes (and token ids) before any memory is touched. Activations may be f32, bf16 or
// f16 (kFloat); what accumulates (dtable, dweight, dbias) and lse, rstd, cos, sin are f32 (backend.ts).
#include "../kernels/kernels.h"
#include "args.h"
#include "bindings.h"

namespace {

// embeddingForward(out, ids, table, N, C)
napi_value embedding_forward(napi_env env, napi_callback_info info) {
  Args a(env, info, "embeddingForward");
  long N = a.dim(3, "N"), C = a.dim(4, "C");
  TensorArg out = a.tensor(0, "out", N * C, kFloat);
  TensorArg ids = a.tensor(1, "ids", N, kI32);
  TensorArg table = a.tensor(2, "table", C, kFloat);
  long V = C > 0 ? table.n / C : 0;
  for (long n = 0; a.ok() && n < N; n++)
    if (ids.i()[n] < 0 || ids.i()[n] >= V)
      a.fail("token id %d at position %ld is outside the vocabulary (size %ld)", ids.i()[n], n, V);
  if (a.ok()) k_embedding_forward(out.act(), ids.i(), table.p, table.dtype, N, C);
  return nullptr;
}

// embeddingBackward(dtable, dout, ids, N, C)
napi_value embedding_backward(napi_env env, napi_callback_info info) {
  Args a(env, info, "embeddingBackward");
  long N = a.dim(3, "N"), C = a.dim(4, "C");
  TensorArg dtable = a.tensor(0, "dtable", C, kF32);
  TensorArg dout = a.tensor(1, "dout", N * C, kFloat);
  TensorArg ids = a.tensor(2, "ids", N, kI32);
  long V = C > 0 ? dtable.n / C : 0;
  for (long n = 0; a.ok() && n < N; n++)
    if (ids.i()[n] < 0 || ids.i()[n] >= V)
      a.fail("token id %d at position %ld is outside the vocabulary (size %ld)", ids.i()[n], n, V);
  if (a.ok()) k_embedding_backward(dtable.f(), dout.act(), ids.i(), N, C);
  return nullptr;
}

// matmulForward(out, inp, weight, bias, N, C, OC)
napi_value matmul_forward(napi_env env, napi_callback_info info) {
  Args a(env, info, "matmulForward");
  long N = a.dim(4, "N"), C = a.dim(5, "C"), OC = a.dim(6, "OC");
  TensorArg out = a.tensor(0, "out", N * OC, kFloat);
  TensorArg inp = a.tensor(1, "inp", N * C, kFloat);
  TensorArg w = a.weight(2, "weight", C, OC);
  TensorArg bias = a.optional(3, "bias", OC, kFloat);
  if (a.ok()) k_matmul_forward(out.act(), inp.act(), w.p, w.dtype, bias.p, bias.dtype, N, C, OC);
  return nullptr;
}

// matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
napi_value matmul_backward(napi_env env, napi_callback_info info) {
  Args a(env, info, "matmulBackward");
  long N = a.dim(6, "N"), C = a.dim(7, "C"), OC = a.dim(8, "OC");
  TensorArg dinp = a.optional(0, "dinp", N * C, kFloat);
  TensorArg dw = a.optional(1, "dweight", OC * C, kF32);
  TensorArg db = a.optional(2, "dbias", OC, kF32);
  TensorArg dout = a.tensor(3, "dout", N * OC, kFloat);
  TensorArg inp = dw.p ? a.tensor(4, "inp", N * C, kFloat) : a.optional(4, "inp", 0, kAnyDtype);
  TensorArg w = dinp.p ? a.weight(5, "weight", C, OC) : TensorArg{nullptr, F32, 0};
  if (a.ok() && dw.p && a.quant(5, "weight"))
    a.fail("the weight is quantized (%s) and frozen, so it has no dweight: full fine-tuning needs 16/32-bit base weights",
           quant_name(a.quant(5, "weight")->q.type));
  if (a.ok()) k_matmul_backward(dinp.act(), dw.f(), db.f(), dout.act(), inp.act(), w.p, w.dtype, N, C, OC);
  return nullptr;
}

// rmsnormForward(out, rstd, inp, weight, N, C, eps)
napi_value rmsnorm_forward(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnormForward");
  long N = a.dim(4, "N"), C = a.dim(5, "C");
  double eps = a.number(6, "eps");
  TensorArg out = a.tensor(0, "out", N * C, kFloat);
  TensorArg rstd = a.tensor(1, "rstd", N, kF32);
  TensorArg inp = a.tensor(2, "inp", N * C, kFloat);
  TensorArg w = a.tensor(3, "weight", C, kFloat);
  if (a.ok()) k_rmsnorm_forward(out.act(), rstd.f(), inp.act(), w.p, w.dtype, N, C, (float)eps);
  return nullptr;
}

// rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
napi_value rmsnorm_backward(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnormBackward");
  long N = a.dim(6, "N"), C = a.dim(7, "C");
  TensorArg dinp = a.tensor(0, "dinp", N * C, kFloat);
  TensorArg dw = a.optional(1, "dweight", C, kF32);
  TensorArg dout = a.tensor(2, "dout", N * C, kFloat);
  TensorArg inp = a.tensor(3, "inp", N * C, kFloat);
  TensorArg w = a.tensor(4, "weight", C, kFloat);
  TensorArg rstd = a.tensor(5, "rstd", N, kF32);
  if (a.ok()) k_rmsnorm_backward(dinp.act(), dw.f(), dout.act(), inp.act(), w.p, w.dtype, rstd.f(), N, C);
  return nullptr;
}

// rope(x, cos, sin, B, T, H, HD, inverse)
napi_value rope(napi_env env, napi_callback_info info) {
  Args a(env, info, "rope");
  long B = a.dim(3, "B"), T = a.dim(4, "T"), H = a.dim(5, "H"), HD = a.dim(6, "HD");
  bool inverse = a.flag(7, "inverse");
  if (a.ok() && HD % 2) a.fail("HD must be even, got %ld", HD);
  TensorArg x = a.tensor(0, "x", B * T * H * HD, kFloat);
  TensorArg cos = a.tensor(1, "cos", T * HD / 2, kF32);
  TensorArg sin = a.tensor(2, "sin", T * HD / 2, kF32);
  if (a.ok()) k_rope(x.act(), cos.f(), sin.f(), B, T, H, HD, inverse);
  return nullptr;
}

// attentionForward(out, lse, q, k, v, mask, segments, B, Tq, Tk, Tkv, NH, NKV, HD)
napi_value attention_forward(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionForward");
  long B = a.dim(7, "B"), Tq = a.dim(8, "Tq"), Tk = a.dim(9, "Tk"), Tkv = a.dim(10, "Tkv");
  long NH = a.dim(11, "NH"), NKV = a.dim(12, "NKV"), HD = a.dim(13, "HD");
  if (a.ok() && (Tq > Tk || Tk > Tkv)) a.fail("needs Tq <= Tk <= Tkv, got %ld, %ld, %ld", Tq, Tk, Tkv);
  if (a.ok() && (NKV == 0 || NH % NKV)) a.fail("NH (%ld) must be a multiple of NKV (%ld)", NH, NKV);
  TensorArg out = a.tensor(0, "out", B * Tq * NH * HD, kFloat);
  TensorArg lse = a.tensor(1, "lse", B * NH * Tq, kF32);
  TensorArg q = a.tensor(2, "q", B * Tq * NH * HD, kFloat);
  TensorArg k = a.tensor(3, "k", B * Tkv * NKV * HD, kFloat);
  TensorArg v = a.tensor(4, "v", B * Tkv * NKV * HD, kFloat);
  TensorArg mask = a.optional(5, "mask", B * Tkv, kI32);
  TensorArg seg = a.optional(6, "segments", B * Tkv, kI32);
  if (a.ok() && mask.i() && seg.i()) a.fail("pass segments or a key mask, not both");
  if (a.ok()) k_attention_forward(out.act(), lse.f(), q.act(), k.act(), v.act(), mask.i(), seg.i(), B, Tq, Tk, Tkv, NH, NKV, HD);
  return nullptr;
}

// attentionPaged(out, q, k, v, kCache[], vCache[], rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk, R, maxBlocks)
// Block ids and row ranges are checked by the TypeScript wrapper (src/backends/arg-checks.ts) before this runs.
napi_value attention_paged(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionPaged");
  long N = a.dim(8, "N"), NH = a.dim(9, "NH"), NKV = a.dim(10, "NKV"), HD = a.dim(11, "HD");
  long BT = a.dim(12, "blockTokens"), BPC = a.dim(13, "blocksPerChunk"), R = a.dim(14, "R"), maxBlocks = a.dim(15, "maxBlocks");
  if (a.ok() && (NKV == 0 || NH % NKV)) a.fail("NH (%ld) must be a multiple of NKV (%ld)", NH, NKV);
  TensorArg out = a.tensor(0, "out", N * NH * HD, kFloat), q = a.tensor(1, "q", N * NH * HD, kFloat);
  TensorArg k = a.tensor(2, "k", N * NKV * HD, kFloat), v = a.tensor(3, "v", N * NKV * HD, kFloat);
  std::vector<TensorArg> kc = a.tensors(4, "kCache", BPC * BT * NKV * HD, kFloat), vc = a.tensors(5, "vCache", BPC * BT * NKV * HD, kFloat);
  auto* rows = (const int32_t*)a.typed(6, "rows", napi_int32_array, "Int32Array", 3 * R);
  auto* blocks = (const int32_t*)a.typed(7, "blocks", napi_int32_array, "Int32Array", R * maxBlocks);
  if (a.ok() && kc.size() != vc.size()) a.fail("%zu key chunks but %zu value chunks", kc.size(), vc.size());
  int cache_dt = kc.empty() ? F32 : kc[0].dtype;
  for (size_t c = 0; a.ok() && c < kc.size(); c++)
    if (kc[c].dtype != cache_dt || vc[c].dtype != cache_dt) a.fail("the cache chunks must share one dtype");
  if (!a.ok()) return nullptr;
  std::vector<void*> kp, vp;
  for (size_t c = 0; c < kc.size(); c++) kp.push_back(kc[c].p), vp.push_back(vc[c].p);
  k_attention_paged(out.act(), q.act(), k.act(), v.act(), kp.data(), vp.data(), cache_dt, rows, blocks, R, maxBlocks, NH, NKV, HD, BT,
                    BPC);
  return nullptr;
}

// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, segments, B, T, NH, NKV, HD)
napi_value attention_backward(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionBackward");
  long B = a.dim(11, "B"), T = a.dim(12, "T"), NH = a.dim(13, "NH"), NKV = a.dim(14, "NKV"), HD = a.dim(15, "HD");
  if (a.ok() && (NKV == 0 || NH % NKV)) a.fail("NH (%ld) must be a multiple of NKV (%ld)", NH, NKV);
  long qn = B * T * NH * HD, kn = B * T * NKV * HD;
  TensorArg dq = a.tensor(0, "dq", qn, kFloat), dk = a.tensor(1, "dk", kn, kFloat), dv = a.tensor(2, "dv", kn, kFloat);
  TensorArg dout = a.tensor(3, "dout", qn, kFloat), out = a.tensor(4, "out", qn, kFloat);
  TensorArg lse = a.tensor(5, "lse", B * NH * T, kF32);
  TensorArg q = a.tensor(6, "q", qn, kFloat), k = a.tensor(7, "k", kn, kFloat), v = a.tensor(8, "v", kn, kFloat);
  TensorArg mask = a.optional(9, "mask", B * T, kI32);
  TensorArg seg = a.optional(10, "segments", B * T, kI32);
  if (a.ok() && mask.i() && seg.i()) a.fail("pass segments or a key mask, not both");
  if (a.ok())
    k_attention_backward(dq.act(), dk.act(), dv.act(), dout.act(), out.act(), lse.f(), q.act(), k.act(), v.act(), mask.i(), seg.i(),
                         B, T, NH, NKV, HD);
  return nullptr;
}

// swigluForward(out, gate, up, n)
napi_value swiglu_forward(napi_env env, napi_callback_info info) {
  Args a(env, info, "swigluForward");
  long n = a.dim(3, "n");
  TensorArg out = a.tensor(0, "out", n, kFloat), gate = a.tensor(1, "gate", n, kFloat), up = a.tensor(2, "up", n, kFloat);
  if (a.ok()) k_swiglu_forward(out.act(), gate.act(), up.act(), n);
  return nullptr;
}

// swigluBackward(dgate, dup, dout, gate, up, n)
napi_value swiglu_backward(napi_env env, napi_callback_info info) {
  Args a(env, info, "swigluBackward");
  long n = a.dim(5, "n");
  TensorArg dgate = a.tensor(0, "dgate", n, kFloat), dup = a.tensor(1, "dup", n, kFloat), dout = a.tensor(2, "dout", n, kFloat);
  TensorArg gate = a.tensor(3, "gate", n, kFloat), up = a.tensor(4, "up", n, kFloat);
  if (a.ok()) k_swiglu_backward(dgate.act(), dup.act(), dout.act(), gate.act(), up.act(), n);
  return nullptr;
}

}  // namespace

const Binding layer_bindings[] = {
    {"embeddingForward", embedding_forward},
    {"embeddingBackward", embedding_backward},
    {"matmulForward", matmul_forward},
    {"matmulBackward", matmul_backward},
    {"rmsnormForward", rmsnorm_forward},
    {"rmsnormBackward", rmsnorm_backward},
    {"rope", rope},
    {"attentionForward", attention_forward},
    {"attentionBackward", attention_backward},
    {"attentionPaged", attention_paged},
    {"swigluForward", swiglu_forward},
    {"swigluBackward", swiglu_backward},
    {nullptr, nullptr},
};

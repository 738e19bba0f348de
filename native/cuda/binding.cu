// The N-API surface of the CUDA addon: one function per Backend op, taking device addresses as numbers
// (exact below 2^53) and sizes as numbers; exceptions become JavaScript errors. Every function that
// writes device memory reports what it wrote (see invalidate_conversions). No math lives here.
#include <node_api.h>

#include "attention.cuh"
#include "device.cuh"
#include "matmul.cuh"
#include "memory.cuh"
#include "nccl.cuh"
#include "ops.cuh"

namespace {

struct Args {
  napi_env env;
  napi_value v[20];
  size_t n = 20;
  Args(napi_env e, napi_callback_info info) : env(e) { napi_get_cb_info(e, info, &n, v, nullptr, nullptr); }
  double num(int i) const {
    double d = 0;
    if (napi_get_value_double(env, v[i], &d) != napi_ok) throw std::runtime_error("argument " + std::to_string(i) + " is not a number");
    return d;
  }
  long i64(int i) const { return (long)num(i); }
  int i32(int i) const { return (int)num(i); }
  bool flag(int i) const {
    bool b = false;
    napi_get_value_bool(env, v[i], &b);
    return b;
  }
  // A device address (0 = null).
  template <typename T = void>
  T* ptr(int i) const { return (T*)(uintptr_t)num(i); }
  // A device address the op writes `bytes` to.
  template <typename T = void>
  T* out(int i, size_t bytes) const {
    T* p = ptr<T>(i);
    if (p) invalidate_conversions(p, bytes);
    return p;
  }
};

napi_value number(napi_env env, double x) {
  napi_value r;
  napi_create_double(env, x, &r);
  return r;
}

napi_value string(napi_env env, const std::string& s) {
  napi_value r;
  napi_create_string_utf8(env, s.c_str(), s.size(), &r);
  return r;
}

napi_value undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

typedef napi_value (*Op)(napi_env, const Args&);

template <Op F>
napi_value call(napi_env env, napi_callback_info info) {
  try {
    Args a(env, info);
    return F(env, a);
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

constexpr size_t F4 = sizeof(float);

// ---- device and memory ----
napi_value init(napi_env env, const Args&) { return string(env, device_init()); }
napi_value name(napi_env env, const Args&) { return string(env, device_name()); }
napi_value alloc(napi_env env, const Args& a) { return number(env, (double)(uintptr_t)arena_alloc(a.i32(0), (size_t)a.num(1))); }
napi_value free_block(napi_env env, const Args& a) {
  arena_free_block(a.ptr(0));
  return undefined(env);
}
napi_value free_arena(napi_env env, const Args& a) {
  arena_release(a.i32(0));
  return undefined(env);
}
napi_value memory_stats(napi_env env, const Args&) {
  size_t free_bytes = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "reserved", number(env, (double)reserved_bytes()));
  napi_set_named_property(env, o, "peak", number(env, (double)peak_reserved_bytes()));
  napi_set_named_property(env, o, "deviceFree", number(env, (double)free_bytes));
  napi_set_named_property(env, o, "deviceTotal", number(env, (double)total));
  return o;
}
napi_value reset_peak(napi_env env, const Args&) {
  reset_peak_reserved();
  return undefined(env);
}
napi_value sync(napi_env env, const Args&) {
  device_sync();
  return undefined(env);
}

// upload(ptr, dtype, typedArray): Float32Array converts to the tensor's dtype; 16-bit and int32 arrays copy.
napi_value upload(napi_env env, const Args& a) {
  int dtype = a.i32(1);
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, a.v[2], &type, &length, &data, &buffer, &offset) != napi_ok)
    throw std::runtime_error("upload: the data is not a typed array");
  void* dst = a.out(0, length * dtype_bytes(dtype));
  if (length == 0) return undefined(env);
  if (type == napi_float32_array && dtype != F32) {
    void* stage = scratch(SLOT_STAGE, length * F4);
    CUDA_CHECK(cudaMemcpyAsync(stage, data, length * F4, cudaMemcpyHostToDevice, stream()));
    op_convert(dst, dtype, stage, F32, length);
  } else {
    size_t elem = type == napi_uint16_array ? 2 : 4;
    CUDA_CHECK(cudaMemcpyAsync(dst, data, length * elem, cudaMemcpyHostToDevice, stream()));
  }
  return undefined(env);
}

// download(ptr, dtype, n) -> Float32Array (float dtypes) or Int32Array; waits for the stream.
napi_value download(napi_env env, const Args& a) {
  int dtype = a.i32(1);
  size_t n = (size_t)a.num(2);
  void* host;
  napi_value buffer, result;
  napi_create_arraybuffer(env, n * F4, &host, &buffer);
  napi_create_typedarray(env, dtype == I32 ? napi_int32_array : napi_float32_array, n, buffer, 0, &result);
  const void* src = a.ptr(0);
  if (n > 0 && (dtype == BF16 || dtype == F16)) {
    void* wide = scratch(SLOT_STAGE, n * F4);
    op_convert(wide, F32, src, dtype, n);
    src = wide;
  }
  if (n > 0) CUDA_CHECK(cudaMemcpyAsync(host, src, n * F4, cudaMemcpyDeviceToHost, stream()));
  device_sync();
  return result;
}

// ---- elementwise ----
napi_value fill(napi_env env, const Args& a) {
  int dtype = a.i32(1);
  size_t n = (size_t)a.num(2);
  op_fill(a.out(0, n * dtype_bytes(dtype)), dtype, n, a.num(3));
  return undefined(env);
}
napi_value copy(napi_env env, const Args& a) {
  int dst_dtype = a.i32(1);
  size_t n = (size_t)a.num(4);
  op_convert(a.out(0, n * dtype_bytes(dst_dtype)), dst_dtype, a.ptr(2), a.i32(3), n);
  return undefined(env);
}
napi_value add(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(3);
  op_add(a.out<float>(0, n * F4), a.ptr<float>(1), a.ptr<float>(2), n);
  return undefined(env);
}
napi_value axpy(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(3);
  op_axpy(a.out<float>(0, n * F4), a.ptr<float>(1), a.num(2), n);
  return undefined(env);
}
napi_value scale(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(2);
  op_scale(a.out<float>(0, n * F4), a.num(1), n);
  return undefined(env);
}
// copyTime(dst, src, elemBytes, B, W, Tdst, dstT0, Tsrc, srcT0, count)
napi_value copy_time(napi_env env, const Args& a) {
  size_t elem = (size_t)a.num(2);
  long B = a.i64(3), W = a.i64(4), Tdst = a.i64(5);
  op_copy_time(a.out(0, B * Tdst * W * elem), a.ptr(1), elem, B, W, Tdst, a.i64(6), a.i64(7), a.i64(8), a.i64(9));
  return undefined(env);
}
// dropout(out, inp, n, p, seed)
napi_value dropout(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(2);
  op_dropout(a.out<float>(0, n * F4), a.ptr<float>(1), n, a.num(3), (uint32_t)a.num(4));
  return undefined(env);
}

// scaleColumns(out, inp, scale, bias, biasDtype, N, OC)
napi_value scale_columns(napi_env env, const Args& a) {
  long N = a.i64(5), OC = a.i64(6);
  op_scale_columns(a.out<float>(0, N * OC * F4), a.ptr<float>(1), a.ptr<float>(2), a.ptr(3), a.i32(4), N, OC);
  return undefined(env);
}
// columnDot(out, a, b, scale, N, OC)
napi_value column_dot(napi_env env, const Args& a) {
  long N = a.i64(4), OC = a.i64(5);
  op_column_sums(a.out<float>(0, OC * F4), a.ptr<float>(1), a.ptr<float>(2), nullptr, a.ptr<float>(3), N, OC);
  return undefined(env);
}

// ---- layers ----
// embeddingForward(out, ids, table, tableDtype, V, N, C)
napi_value embedding_forward(napi_env env, const Args& a) {
  long V = a.i64(4), N = a.i64(5), C = a.i64(6);
  op_embedding_forward(a.out<float>(0, N * C * F4), a.ptr<int32_t>(1), a.ptr(2), a.i32(3), V, N, C);
  return undefined(env);
}
// embeddingBackward(dtable, dout, ids, V, N, C)
napi_value embedding_backward(napi_env env, const Args& a) {
  long V = a.i64(3), N = a.i64(4), C = a.i64(5);
  op_embedding_backward(a.out<float>(0, V * C * F4), a.ptr<float>(1), a.ptr<int32_t>(2), V, N, C);
  return undefined(env);
}
// matmulForward(out, inp, w, wDtype, bias, biasDtype, N, C, OC, precision)
napi_value matmul_forward(napi_env env, const Args& a) {
  long N = a.i64(6), C = a.i64(7), OC = a.i64(8);
  op_matmul_forward(a.out<float>(0, N * OC * F4), a.ptr<float>(1), a.ptr(2), a.i32(3), a.ptr(4), a.i32(5), N, C, OC, a.i32(9));
  return undefined(env);
}
// matmulBackward(dinp, dweight, dbias, dout, inp, w, wDtype, N, C, OC, precision)
napi_value matmul_backward(napi_env env, const Args& a) {
  long N = a.i64(7), C = a.i64(8), OC = a.i64(9);
  op_matmul_backward(a.out<float>(0, N * C * F4), a.out<float>(1, OC * C * F4), a.out<float>(2, OC * F4), a.ptr<float>(3),
                     a.ptr<float>(4), a.ptr(5), a.i32(6), N, C, OC, a.i32(10));
  return undefined(env);
}
// rmsnormForward(out, rstd, inp, w, wDtype, N, C, eps)
napi_value rmsnorm_forward(napi_env env, const Args& a) {
  long N = a.i64(5), C = a.i64(6);
  op_rmsnorm_forward(a.out<float>(0, N * C * F4), a.out<float>(1, N * F4), a.ptr<float>(2), a.ptr(3), a.i32(4), N, C, (float)a.num(7));
  return undefined(env);
}
// rmsnormBackward(dinp, dweight, dout, inp, w, wDtype, rstd, N, C)
napi_value rmsnorm_backward(napi_env env, const Args& a) {
  long N = a.i64(7), C = a.i64(8);
  op_rmsnorm_backward(a.out<float>(0, N * C * F4), a.out<float>(1, C * F4), a.ptr<float>(2), a.ptr<float>(3), a.ptr(4), a.i32(5),
                      a.ptr<float>(6), N, C);
  return undefined(env);
}
// rope(x, cos, sin, B, T, H, HD, inverse)
napi_value rope(napi_env env, const Args& a) {
  long B = a.i64(3), T = a.i64(4), H = a.i64(5), HD = a.i64(6);
  op_rope(a.out<float>(0, B * T * H * HD * F4), a.ptr<float>(1), a.ptr<float>(2), B, T, H, HD, a.flag(7));
  return undefined(env);
}
// attentionForward(out, lse, q, k, v, mask, segments, B, Tq, Tk, Tkv, NH, NKV, HD, precision)
napi_value attention_forward(napi_env env, const Args& a) {
  long B = a.i64(7), Tq = a.i64(8), Tk = a.i64(9), Tkv = a.i64(10), NH = a.i64(11), NKV = a.i64(12), HD = a.i64(13);
  op_attention_forward(a.out<float>(0, B * Tq * NH * HD * F4), a.out<float>(1, B * NH * Tq * F4), a.ptr<float>(2), a.ptr<float>(3),
                       a.ptr<float>(4), a.ptr<int32_t>(5), a.ptr<int32_t>(6), B, Tq, Tk, Tkv, NH, NKV, HD, a.i32(14));
  return undefined(env);
}
// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, segments, B, T, NH, NKV, HD, precision)
napi_value attention_backward(napi_env env, const Args& a) {
  long B = a.i64(11), T = a.i64(12), NH = a.i64(13), NKV = a.i64(14), HD = a.i64(15);
  op_attention_backward(a.out<float>(0, B * T * NH * HD * F4), a.out<float>(1, B * T * NKV * HD * F4), a.out<float>(2, B * T * NKV * HD * F4),
                        a.ptr<float>(3), a.ptr<float>(4), a.ptr<float>(5), a.ptr<float>(6), a.ptr<float>(7), a.ptr<float>(8),
                        a.ptr<int32_t>(9), a.ptr<int32_t>(10), B, T, NH, NKV, HD, a.i32(16));
  return undefined(env);
}
// swigluForward(out, gate, up, n)
napi_value swiglu_forward(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(3);
  op_swiglu_forward(a.out<float>(0, n * F4), a.ptr<float>(1), a.ptr<float>(2), n);
  return undefined(env);
}
// swigluBackward(dgate, dup, dout, gate, up, n)
napi_value swiglu_backward(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(5);
  op_swiglu_backward(a.out<float>(0, n * F4), a.out<float>(1, n * F4), a.ptr<float>(2), a.ptr<float>(3), a.ptr<float>(4), n);
  return undefined(env);
}

// ---- loss and optimizer ----
// crossEntropy(losses, dlogits, logits, targets, N, V, gradScale)
napi_value cross_entropy(napi_env env, const Args& a) {
  long N = a.i64(4), V = a.i64(5);
  op_cross_entropy(a.out<float>(0, N * F4), a.out<float>(1, N * V * F4), a.ptr<float>(2), a.ptr<int32_t>(3), N, V, (float)a.num(6));
  return undefined(env);
}
// sumSquares(out, t, n)
napi_value sum_squares(napi_env env, const Args& a) {
  op_sum_squares(a.out<float>(0, F4), a.ptr<float>(1), (size_t)a.num(2));
  return undefined(env);
}
// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt)
napi_value adamw(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(4);
  op_adamw(a.out<float>(0, n * F4), a.ptr<float>(1), a.out<float>(2, n * F4), a.out<float>(3, n * F4), n, a.num(5), a.num(6), a.num(7),
           a.num(8), a.num(9), a.num(10), a.num(11));
  return undefined(env);
}

// ---- NCCL (multi-rank runs) ----
napi_value nccl_load_(napi_env env, const Args&) { return string(env, nccl_load()); }
napi_value nccl_unique_id_(napi_env env, const Args&) {
  void* data;
  napi_value buffer, array;
  napi_create_arraybuffer(env, kNcclIdBytes, &data, &buffer);
  nccl_unique_id((uint8_t*)data);
  napi_create_typedarray(env, napi_uint8_array, kNcclIdBytes, buffer, 0, &array);
  return array;
}
// ncclInit(id: Uint8Array of 128 bytes, nranks, rank)
napi_value nccl_init_(napi_env env, const Args& a) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, a.v[0], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array ||
      length != kNcclIdBytes)
    throw std::runtime_error("ncclInit: the id is not a Uint8Array of 128 bytes (from ncclUniqueId)");
  nccl_init((const uint8_t*)data, a.i32(1), a.i32(2));
  return undefined(env);
}
napi_value nccl_all_reduce_sum_(napi_env env, const Args& a) {
  size_t n = (size_t)a.num(1);
  nccl_all_reduce_sum(a.out<float>(0, n * F4), n);
  return undefined(env);
}

struct Entry {
  const char* name;
  napi_callback fn;
};

const Entry kEntries[] = {
    {"init", call<init>},
    {"deviceName", call<name>},
    {"alloc", call<alloc>},
    {"free", call<free_block>},
    {"freeArena", call<free_arena>},
    {"memoryStats", call<memory_stats>},
    {"resetPeak", call<reset_peak>},
    {"sync", call<sync>},
    {"upload", call<upload>},
    {"download", call<download>},
    {"fill", call<fill>},
    {"copy", call<copy>},
    {"add", call<add>},
    {"axpy", call<axpy>},
    {"scale", call<scale>},
    {"copyTime", call<copy_time>},
    {"dropout", call<dropout>},
    {"scaleColumns", call<scale_columns>},
    {"columnDot", call<column_dot>},
    {"embeddingForward", call<embedding_forward>},
    {"embeddingBackward", call<embedding_backward>},
    {"matmulForward", call<matmul_forward>},
    {"matmulBackward", call<matmul_backward>},
    {"rmsnormForward", call<rmsnorm_forward>},
    {"rmsnormBackward", call<rmsnorm_backward>},
    {"rope", call<rope>},
    {"attentionForward", call<attention_forward>},
    {"attentionBackward", call<attention_backward>},
    {"swigluForward", call<swiglu_forward>},
    {"swigluBackward", call<swiglu_backward>},
    {"crossEntropy", call<cross_entropy>},
    {"sumSquares", call<sum_squares>},
    {"adamw", call<adamw>},
    {"ncclLoad", call<nccl_load_>},
    {"ncclUniqueId", call<nccl_unique_id_>},
    {"ncclInit", call<nccl_init_>},
    {"ncclAllReduceSum", call<nccl_all_reduce_sum_>},
};

napi_value module_init(napi_env env, napi_value exports) {
  for (const Entry& e : kEntries) {
    napi_value f;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &f);
    napi_set_named_property(env, exports, e.name, f);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)

// JavaScript entry points of the elementwise ops: fill, copy, add, axpy, scale, copyTime, dropout, and the
// per-output-feature scaleColumns and columnDot.
#include "../kernels/kernels.h"
#include "args.h"
#include "bindings.h"

namespace {

// fill(t, value)
napi_value fill(napi_env env, napi_callback_info info) {
  Args a(env, info, "fill");
  TensorArg t = a.tensor(0, "t", 0, kAnyDtype);
  double value = a.number(1, "value");
  if (a.ok()) k_fill(t.p, t.dtype, t.n, value);
  return nullptr;
}

// copy(dst, src): equal sizes; float dtypes convert, i32 copies to i32 only
napi_value copy(napi_env env, napi_callback_info info) {
  Args a(env, info, "copy");
  TensorArg dst = a.tensor(0, "dst", 0, kAnyDtype);
  TensorArg src = a.tensor(1, "src", 0, kAnyDtype);
  if (a.ok() && dst.n != src.n) a.fail("%ld elements into %ld", src.n, dst.n);
  if (a.ok() && dst.dtype != src.dtype && (dst.dtype == I32 || src.dtype == I32)) a.fail("cannot convert between i32 and floats");
  if (a.ok()) k_convert(dst.p, dst.dtype, src.p, src.dtype, dst.n);
  return nullptr;
}

// add(out, a, b): out.size elements
napi_value add(napi_env env, napi_callback_info info) {
  Args a(env, info, "add");
  TensorArg out = a.tensor(0, "out", 0, kFloat);
  TensorArg x = a.tensor(1, "a", out.n, kFloat);
  TensorArg y = a.tensor(2, "b", out.n, kFloat);
  if (a.ok()) k_add(out.act(), x.act(), y.act(), out.n);
  return nullptr;
}

// axpy(dst, src, s): dst += s * src
napi_value axpy(napi_env env, napi_callback_info info) {
  Args a(env, info, "axpy");
  TensorArg dst = a.tensor(0, "dst", 0, kFloat);
  TensorArg src = a.tensor(1, "src", dst.n, kFloat);
  double s = a.number(2, "scale");
  if (a.ok()) k_axpy(dst.act(), src.act(), (float)s, dst.n);
  return nullptr;
}

// scale(t, s)
napi_value scale(napi_env env, napi_callback_info info) {
  Args a(env, info, "scale");
  TensorArg t = a.tensor(0, "t", 0, kFloat);
  double s = a.number(1, "scale");
  if (a.ok()) k_scale(t.act(), (float)s, t.n);
  return nullptr;
}

// copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count)
napi_value copy_time(napi_env env, napi_callback_info info) {
  Args a(env, info, "copyTime");
  long B = a.dim(2, "B"), W = a.dim(3, "W"), Tdst = a.dim(4, "Tdst"), dstT0 = a.dim(5, "dstT0");
  long Tsrc = a.dim(6, "Tsrc"), srcT0 = a.dim(7, "srcT0"), count = a.dim(8, "count");
  if (a.ok() && (dstT0 + count > Tdst || srcT0 + count > Tsrc)) a.fail("time range past the end");
  TensorArg dst = a.tensor(0, "dst", B * Tdst * W, kAnyDtype);
  TensorArg src = a.tensor(1, "src", B * Tsrc * W, kAnyDtype);
  if (a.ok() && dst.dtype != src.dtype) a.fail("needs matching dtypes, got %s and %s", dtype_name(dst.dtype), dtype_name(src.dtype));
  if (a.ok()) k_copy_time(dst.p, src.p, TensorRef::elem_bytes(dst.dtype), B, W, Tdst, dstT0, Tsrc, srcT0, count);
  return nullptr;
}

// dropout(out, inp, p, seed)
napi_value dropout(napi_env env, napi_callback_info info) {
  Args a(env, info, "dropout");
  TensorArg out = a.tensor(0, "out", 0, kFloat);
  TensorArg inp = a.tensor(1, "inp", out.n, kFloat);
  double p = a.number(2, "p");
  uint32_t seed = a.u32(3, "seed");
  if (a.ok()) k_dropout(out.act(), inp.act(), out.n, p, seed);
  return nullptr;
}

// scaleColumns(out, inp, scale, bias, N, OC): out = inp * scale[col] + bias[col]
napi_value scale_columns(napi_env env, napi_callback_info info) {
  Args a(env, info, "scaleColumns");
  long N = a.dim(4, "N"), OC = a.dim(5, "OC");
  TensorArg out = a.tensor(0, "out", N * OC, kFloat);
  TensorArg inp = a.tensor(1, "inp", N * OC, kFloat);
  TensorArg scale = a.tensor(2, "scale", OC, kF32);
  TensorArg bias = a.optional(3, "bias", OC, kFloat);
  if (a.ok()) k_scale_columns(out.act(), inp.act(), scale.f(), Act{bias.p, bias.dtype}, N, OC);
  return nullptr;
}

// columnDot(out, a, b, scale, N, OC): out[col] += scale[col] * sum over rows of a * b
napi_value column_dot(napi_env env, napi_callback_info info) {
  Args a(env, info, "columnDot");
  long N = a.dim(4, "N"), OC = a.dim(5, "OC");
  TensorArg out = a.tensor(0, "out", OC, kF32);
  TensorArg x = a.tensor(1, "a", N * OC, kF32);
  TensorArg y = a.tensor(2, "b", N * OC, kF32);
  TensorArg scale = a.tensor(3, "scale", OC, kF32);
  if (a.ok()) k_column_dot(out.f(), x.f(), y.f(), scale.f(), N, OC);
  return nullptr;
}

}  // namespace

const Binding elementwise_bindings[] = {
    {"fill", fill}, {"copy", copy},         {"add", add},         {"axpy", axpy},
    {"scale", scale}, {"copyTime", copy_time}, {"dropout", dropout},
    {"scaleColumns", scale_columns}, {"columnDot", column_dot}, {nullptr, nullptr},
};

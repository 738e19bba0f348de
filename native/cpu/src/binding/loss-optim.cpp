// JavaScript entry points of crossEntropy, argmaxRows, sumSquares and adamw.
#include "../kernels/kernels.h"
#include "args.h"
#include "bindings.h"

namespace {

// crossEntropy(losses, dlogits, logits, targets, N, V, gradScale)
napi_value cross_entropy(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropy");
  long N = a.dim(4, "N"), V = a.dim(5, "V");
  double grad_scale = a.number(6, "gradScale");
  TensorArg losses = a.tensor(0, "losses", N, kF32);
  TensorArg dlogits = a.optional(1, "dlogits", N * V, kF32);
  TensorArg logits = a.tensor(2, "logits", N * V, kF32);
  TensorArg targets = a.tensor(3, "targets", N, kI32);
  for (long n = 0; a.ok() && n < N; n++) {
    int32_t t = targets.i()[n];
    if (t != -100 && (t < 0 || t >= V)) a.fail("label %d at row %ld is outside the vocabulary (size %ld)", t, n, V);
  }
  if (a.ok()) k_cross_entropy(losses.f(), dlogits.f(), logits.f(), targets.i(), N, V, (float)grad_scale);
  return nullptr;
}

// argmaxRows(out, x, R, V)
napi_value argmax_rows(napi_env env, napi_callback_info info) {
  Args a(env, info, "argmaxRows");
  long R = a.dim(2, "R"), V = a.dim(3, "V");
  if (a.ok() && V < 1) a.fail("V must be at least 1");
  TensorArg out = a.tensor(0, "out", R, kI32);
  TensorArg x = a.tensor(1, "x", R * V, kF32);
  if (a.ok()) k_argmax_rows(out.i(), x.f(), R, V);
  return nullptr;
}

// sumSquares(out, t): out[0] += sum of t^2
napi_value sum_squares(napi_env env, napi_callback_info info) {
  Args a(env, info, "sumSquares");
  TensorArg out = a.tensor(0, "out", 1, kF32);
  TensorArg t = a.tensor(1, "t", 0, kF32);
  if (a.ok()) out.f()[0] = (float)(out.f()[0] + k_sum_squares(t.f(), t.n));
  return nullptr;
}

// adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step)
napi_value adamw(napi_env env, napi_callback_info info) {
  Args a(env, info, "adamw");
  TensorArg p = a.tensor(0, "param", 0, kF32);
  TensorArg g = a.tensor(1, "grad", p.n, kF32), m = a.tensor(2, "m", p.n, kF32), v = a.tensor(3, "v", p.n, kF32);
  double lr = a.number(4, "lr"), b1 = a.number(5, "beta1"), b2 = a.number(6, "beta2"), eps = a.number(7, "eps");
  double wd = a.number(8, "weightDecay"), step = a.number(9, "step");
  if (a.ok()) k_adamw(p.f(), g.f(), m.f(), v.f(), p.n, lr, b1, b2, eps, wd, step);
  return nullptr;
}

}  // namespace

const Binding loss_optim_bindings[] = {
    {"crossEntropy", cross_entropy}, {"argmaxRows", argmax_rows}, {"sumSquares", sum_squares}, {"adamw", adamw}, {nullptr, nullptr}};

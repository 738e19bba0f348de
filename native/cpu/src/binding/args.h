// Reading an op's JavaScript arguments: tensor handles checked for dtype and size, dimensions checked
// to be non-negative integers. The first problem throws a JavaScript Error naming the op and argument.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "quant-ref.h"
#include "tensor-ref.h"

const unsigned kF32 = 1u << F32, kI32 = 1u << I32, kFloat = (1u << F32) | (1u << BF16) | (1u << F16), kAnyDtype = 15;

struct TensorArg {
  void* p;
  int dtype;
  long n;
  float* f() const { return (float*)p; }
  int32_t* i() const { return (int32_t*)p; }
  Act act() const { return Act{p, dtype}; }
};

class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* op);
  // Argument i as a tensor of a dtype in `dtypes` holding at least `need` elements.
  TensorArg tensor(size_t i, const char* name, long need, unsigned dtypes);
  // The same, or {nullptr} when the argument is null or undefined.
  TensorArg optional(size_t i, const char* name, long need, unsigned dtypes);
  // Argument i as an array of such tensors (name[e] in errors).
  std::vector<TensorArg> tensors(size_t i, const char* name, long need, unsigned dtypes);
  TensorRef* ref(size_t i, const char* name);
  // A linear weight (OC, C): a float tensor, or a quantized weight of exactly that shape (p is its QuantDesc).
  TensorArg weight(size_t i, const char* name, long C, long OC);
  // The same, or {nullptr} when the argument is null or undefined.
  TensorArg optional_weight(size_t i, const char* name, long C, long OC);
  QuantRef* quant(size_t i, const char* name);  // a quantized weight handle, or nullptr (not failing) otherwise
  // Argument i's memory when it is a typed array of `type` (named `type_name` in errors) holding exactly n
  // elements; nullptr for null/undefined when `optional`.
  void* typed(size_t i, const char* name, napi_typedarray_type type, const char* type_name, long n, bool optional = false);
  long dim(size_t i, const char* name);
  double number(size_t i, const char* name);
  std::string text(size_t i, const char* name);  // a string argument ("" after a failure)
  uint32_t u32(size_t i, const char* name);
  bool flag(size_t i, const char* name);
  napi_value value(size_t i) const { return i < argc_ ? argv_[i] : nullptr; }
  bool ok() const { return !failed_; }
  void fail(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  napi_env env;

 private:
  TensorRef* ref_of(napi_value value, const char* name);
  TensorArg tensor_of(napi_value value, const char* name, long need, unsigned dtypes);
  static const size_t kMax = 16;
  napi_value argv_[kMax];
  size_t argc_ = kMax;
  const char* op_;
  bool failed_ = false;
};

const char* dtype_name(int dtype);

// JavaScript entry points of the host quantizers (kernels/quantize.h): plain typed arrays in and out, no tensors.
#include "../kernels/quantize.h"
#include "args.h"
#include "bindings.h"

namespace {

// Argument i's memory, when it is a typed array of `type` holding exactly n elements.
void* host(Args& a, size_t i, const char* name, napi_typedarray_type type, const char* type_name, long n) {
  if (!a.ok()) return nullptr;
  bool is_typed = false;
  napi_typedarray_type got;
  size_t length = 0;
  void* p = nullptr;
  napi_is_typedarray(a.env, a.value(i), &is_typed);
  if (!is_typed || napi_get_typedarray_info(a.env, a.value(i), &got, &length, &p, nullptr, nullptr) != napi_ok || got != type)
    a.fail("%s must be a %s", name, type_name);
  else if ((long)length != n)
    a.fail("%s has %zu values, expected %ld", name, length, n);
  return a.ok() ? p : nullptr;
}

long length_of(Args& a, size_t i) {
  size_t length = 0;
  bool is_typed = false;
  if (a.ok()) napi_is_typedarray(a.env, a.value(i), &is_typed);
  if (is_typed) napi_get_typedarray_info(a.env, a.value(i), nullptr, &length, nullptr, nullptr, nullptr);
  return (long)length;
}

// quantize4bit(weight: Float32Array, blocksize, bounds: Float32Array(15), order: Uint8Array(16),
//              packed: Uint8Array(ceil(n / 2)), absmax: Float32Array(ceil(n / blocksize)))
napi_value quantize_4bit(napi_env env, napi_callback_info info) {
  Args a(env, info, "quantize4bit");
  long n = length_of(a, 0);
  auto* w = (const float*)host(a, 0, "weight", napi_float32_array, "Float32Array", n);
  long blocksize = a.dim(1, "blocksize");
  if (a.ok() && (blocksize < 2 || blocksize > 4096 || blocksize % 2)) a.fail("blocksize must be even, 2..4096, got %ld", blocksize);
  auto* bounds = (const float*)host(a, 2, "bounds", napi_float32_array, "Float32Array", 15);
  auto* order = (const uint8_t*)host(a, 3, "order", napi_uint8_array, "Uint8Array", 16);
  auto* packed = (uint8_t*)host(a, 4, "packed", napi_uint8_array, "Uint8Array", (n + 1) / 2);
  long blocks = a.ok() ? (n + blocksize - 1) / blocksize : 0;
  auto* absmax = (float*)host(a, 5, "absmax", napi_float32_array, "Float32Array", blocks);
  if (a.ok()) k_quantize_4bit(w, n, blocksize, bounds, order, packed, absmax);
  return nullptr;
}

// quantizeInt8Rows(weight: Float32Array(OC * C), OC, C, q: Int8Array(OC * C), scb: Float32Array(OC))
napi_value quantize_int8_rows(napi_env env, napi_callback_info info) {
  Args a(env, info, "quantizeInt8Rows");
  long OC = a.dim(1, "OC"), C = a.dim(2, "C");
  auto* w = (const float*)host(a, 0, "weight", napi_float32_array, "Float32Array", OC * C);
  auto* q = (int8_t*)host(a, 3, "q", napi_int8_array, "Int8Array", OC * C);
  auto* scb = (float*)host(a, 4, "scb", napi_float32_array, "Float32Array", OC);
  if (a.ok()) k_quantize_int8_rows(w, OC, C, q, scb);
  return nullptr;
}

}  // namespace

const Binding quantize_bindings[] = {
    {"quantize4bit", quantize_4bit}, {"quantizeInt8Rows", quantize_int8_rows}, {nullptr, nullptr},
};

// JavaScript entry points of the host quantizers (kernels/quantize.h): plain typed arrays in and out, no tensors.
#include "../kernels/quantize.h"
#include "args.h"
#include "bindings.h"

namespace {

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
  auto* w = (const float*)a.typed(0, "weight", napi_float32_array, "Float32Array", n);
  long blocksize = a.dim(1, "blocksize");
  if (a.ok() && (blocksize < 2 || blocksize > 4096 || blocksize % 2)) a.fail("blocksize must be even, 2..4096, got %ld", blocksize);
  auto* bounds = (const float*)a.typed(2, "bounds", napi_float32_array, "Float32Array", 15);
  auto* order = (const uint8_t*)a.typed(3, "order", napi_uint8_array, "Uint8Array", 16);
  auto* packed = (uint8_t*)a.typed(4, "packed", napi_uint8_array, "Uint8Array", (n + 1) / 2);
  long blocks = a.ok() ? (n + blocksize - 1) / blocksize : 0;
  auto* absmax = (float*)a.typed(5, "absmax", napi_float32_array, "Float32Array", blocks);
  if (a.ok()) k_quantize_4bit(w, n, blocksize, bounds, order, packed, absmax);
  return nullptr;
}

// quantizeInt8Rows(weight: Float32Array(OC * C), OC, C, q: Int8Array(OC * C), scb: Float32Array(OC))
napi_value quantize_int8_rows(napi_env env, napi_callback_info info) {
  Args a(env, info, "quantizeInt8Rows");
  long OC = a.dim(1, "OC"), C = a.dim(2, "C");
  auto* w = (const float*)a.typed(0, "weight", napi_float32_array, "Float32Array", OC * C);
  auto* q = (int8_t*)a.typed(3, "q", napi_int8_array, "Int8Array", OC * C);
  auto* scb = (float*)a.typed(4, "scb", napi_float32_array, "Float32Array", OC);
  if (a.ok()) k_quantize_int8_rows(w, OC, C, q, scb);
  return nullptr;
}

}  // namespace

const Binding quantize_bindings[] = {
    {"quantize4bit", quantize_4bit}, {"quantizeInt8Rows", quantize_int8_rows}, {nullptr, nullptr},
};

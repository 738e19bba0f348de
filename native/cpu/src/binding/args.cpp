// Argument checks for args.h.
#include "args.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

const char* dtype_name(int dtype) {
  static const char* names[] = {"f32", "bf16", "f16", "i32"};
  return dtype >= 0 && dtype < 4 ? names[dtype] : is_quant(dtype) ? quant_name(dtype) : "?";
}

const char* quant_name(int type) { return type == Q_NF4 ? "nf4" : type == Q_FP4 ? "fp4" : type == Q_INT8 ? "int8" : "bf16-packed"; }

Args::Args(napi_env e, napi_callback_info info, const char* op) : env(e), op_(op) {
  if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) != napi_ok) fail("cannot read arguments");
  if (argc_ > kMax) argc_ = kMax;
}

void Args::fail(const char* fmt, ...) {
  if (failed_) return;
  failed_ = true;
  char msg[400], full[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(full, sizeof full, "cpu backend: %s: %s", op_, msg);
  napi_throw_error(env, nullptr, full);
}

TensorRef* Args::ref(size_t i, const char* name) { return ref_of(i < argc_ ? argv_[i] : nullptr, name); }

TensorRef* Args::ref_of(napi_value value, const char* name) {
  if (failed_) return nullptr;
  void* p = nullptr;
  napi_valuetype type;
  if (!value || napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, value, &p) != napi_ok || !p) {
    fail("%s is not a cpu backend tensor", name);
    return nullptr;
  }
  if (*(uint32_t*)p == QuantRef::kMagic) {
    const int type = ((QuantRef*)p)->q.type;
    if (type == Q_BF16_PACKED)
      fail("%s is a packed bf16 weight; only matmulForward and matmulBackward's dinp read one", name);
    else
      fail("%s is a quantized (%s) weight; only matmulForward and matmulBackward's dinp read one", name, quant_name(type));
    return nullptr;
  }
  if (*(uint32_t*)p != TensorRef::kMagic) {
    fail("%s is not a cpu backend tensor", name);
    return nullptr;
  }
  TensorRef* r = (TensorRef*)p;
  if (!r->data()) {
    fail("%s was used after it was freed", name);
    return nullptr;
  }
  return r;
}

TensorArg Args::tensor(size_t i, const char* name, long need, unsigned dtypes) {
  return tensor_of(i < argc_ ? argv_[i] : nullptr, name, need, dtypes);
}

TensorArg Args::tensor_of(napi_value value, const char* name, long need, unsigned dtypes) {
  TensorRef* r = ref_of(value, name);
  if (!r) return TensorArg{nullptr, F32, 0};
  if (!(dtypes & (1u << r->dtype))) {
    fail("%s is %s, expected %s", name, dtype_name(r->dtype),
         dtypes == kF32 ? "f32" : dtypes == kI32 ? "i32" : dtypes == kFloat ? "f32, bf16 or f16" : "another dtype");
  } else if (r->n < need) {
    fail("%s has %ld elements, the op needs %ld", name, r->n, need);
  }
  return TensorArg{r->data(), r->dtype, r->n};
}

std::vector<TensorArg> Args::tensors(size_t i, const char* name, long need, unsigned dtypes) {
  std::vector<TensorArg> out;
  bool is_array = false;
  uint32_t n = 0;
  if (failed_) return out;
  if (i >= argc_ || napi_is_array(env, argv_[i], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv_[i], &n) != napi_ok) {
    fail("%s must be an array of cpu backend tensors", name);
    return out;
  }
  for (uint32_t e = 0; e < n && !failed_; e++) {
    napi_value item = nullptr;
    napi_get_element(env, argv_[i], e, &item);
    std::string label = std::string(name) + "[" + std::to_string(e) + "]";
    out.push_back(tensor_of(item, label.c_str(), need, dtypes));
  }
  return out;
}

TensorArg Args::optional(size_t i, const char* name, long need, unsigned dtypes) {
  napi_valuetype type = napi_undefined;
  if (i < argc_) napi_typeof(env, argv_[i], &type);
  if (type == napi_null || type == napi_undefined) return TensorArg{nullptr, F32, 0};
  return tensor(i, name, need, dtypes);
}

double Args::number(size_t i, const char* name) {
  double v = 0;
  if (failed_) return 0;
  if (i >= argc_ || napi_get_value_double(env, argv_[i], &v) != napi_ok) fail("%s must be a number", name);
  return v;
}

long Args::dim(size_t i, const char* name) {
  double v = number(i, name);
  if (!failed_ && (!(v >= 0) || v != std::floor(v) || v > 9.0e15)) fail("%s must be a non-negative integer, got %g", name, v);
  return failed_ ? 0 : (long)v;
}

uint32_t Args::u32(size_t i, const char* name) {
  uint32_t v = 0;
  if (failed_) return 0;
  if (i >= argc_ || napi_get_value_uint32(env, argv_[i], &v) != napi_ok) fail("%s must be a number", name);
  return v;
}

bool Args::flag(size_t i, const char* name) {
  bool v = false;
  if (failed_) return false;
  if (i >= argc_ || napi_get_value_bool(env, argv_[i], &v) != napi_ok) fail("%s must be a boolean", name);
  return v;
}

QuantRef* Args::quant(size_t i, const char* name) {
  void* p = nullptr;
  napi_valuetype type;
  if (failed_ || i >= argc_ || napi_typeof(env, argv_[i], &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, argv_[i], &p) != napi_ok || !p || *(uint32_t*)p != QuantRef::kMagic)
    return nullptr;
  QuantRef* r = (QuantRef*)p;
  if (!r->mem.data) fail("%s was used after it was freed", name);
  return r;
}

std::string Args::text(size_t i, const char* name) {
  size_t len = 0;
  if (failed_ || napi_get_value_string_utf8(env, value(i), nullptr, 0, &len) != napi_ok) {
    fail("%s must be a string", name);
    return "";
  }
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, value(i), &s[0], len + 1, &len);
  return s;
}

void* Args::typed(size_t i, const char* name, napi_typedarray_type type, const char* type_name, long n, bool optional) {
  if (failed_) return nullptr;
  napi_valuetype vt = napi_undefined;
  napi_typeof(env, value(i), &vt);
  if (optional && (vt == napi_null || vt == napi_undefined)) return nullptr;
  bool is_typed = false;
  napi_typedarray_type got;
  size_t length = 0;
  void* p = nullptr;
  napi_is_typedarray(env, value(i), &is_typed);
  if (!is_typed || napi_get_typedarray_info(env, value(i), &got, &length, &p, nullptr, nullptr) != napi_ok || got != type)
    fail("%s must be a %s", name, type_name);
  else if ((long)length != n)
    fail("%s has %zu values, expected %ld", name, length, n);
  return failed_ ? nullptr : p;
}

TensorArg Args::weight(size_t i, const char* name, long C, long OC) {
  if (QuantRef* r = quant(i, name)) {
    if (failed_) return TensorArg{nullptr, F32, 0};
    if (r->q.OC != OC || r->q.C != C)
      fail("%s is a %s weight [%ld, %ld], the op needs [%ld, %ld]", name, quant_name(r->q.type), r->q.OC, r->q.C, OC, C);
    return TensorArg{&r->q, r->q.type, OC * C};
  }
  return tensor(i, name, OC * C, kFloat);
}

TensorArg Args::optional_weight(size_t i, const char* name, long C, long OC) {
  napi_valuetype type = napi_undefined;
  if (i < argc_) napi_typeof(env, argv_[i], &type);
  if (type == napi_null || type == napi_undefined) return TensorArg{nullptr, F32, 0};
  return weight(i, name, C, OC);
}

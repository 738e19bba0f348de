// Tensor memory for JavaScript: alloc (zeroed, like typed arrays), view, free, upload, download, and frozen weights
// in formats of their own (upload4bit, uploadInt8, packBf16). Handles are napi externals; a handle's finalizer drops
// its reference to the shared buffer (a frozen weight's: frees it).
#include <cstring>
#include <initializer_list>
#include <new>
#include <utility>

#include "../kernels/gemm.h"
#include "../kernels/kernels.h"
#include "../kernels/matvec.h"
#include "../pool.h"
#include "args.h"
#include "bindings.h"

namespace {

void finalize_ref(napi_env env, void* data, void*) {
  TensorRef* r = (TensorRef*)data;
  if (r->storage.use_count() == 1 && r->storage->mem.data) {
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)r->storage->mem.bytes, &ignored);
  }
  delete r;
}

napi_value wrap(napi_env env, TensorRef* r) {
  napi_value out;
  if (napi_create_external(env, r, finalize_ref, nullptr, &out) != napi_ok) {
    delete r;
    napi_throw_error(env, nullptr, "cpu backend: cannot create a tensor handle");
    return nullptr;
  }
  return out;
}

// alloc(n, dtype[, weight: a model weight, packed with others when small (tensor-memory.h)]) -> handle
napi_value alloc(napi_env env, napi_callback_info info) {
  Args a(env, info, "alloc");
  long n = a.dim(0, "n");
  long dtype = a.dim(1, "dtype");
  bool weight = a.value(2) && a.flag(2, "weight");
  if (a.ok() && dtype > I32) a.fail("unknown dtype code %ld", dtype);
  if (!a.ok()) return nullptr;
  size_t bytes = (size_t)(n > 0 ? n : 1) * TensorRef::elem_bytes((int)dtype);
  TensorMemory mem = TensorMemory::alloc(bytes, weight);
  if (!mem.data) {
    a.fail("out of memory allocating %zu bytes", bytes);
    return nullptr;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)bytes, &ignored);
  auto storage = std::shared_ptr<Storage>(new Storage{mem});
  return wrap(env, new TensorRef{TensorRef::kMagic, storage, 0, n, (int)dtype, true});
}

// view(handle, offset, n) -> handle aliasing the same buffer
napi_value view(napi_env env, napi_callback_info info) {
  Args a(env, info, "view");
  TensorRef* r = a.ref(0, "tensor");
  long offset = a.dim(1, "offset"), n = a.dim(2, "n");
  if (a.ok() && offset + n > r->n) a.fail("view of %ld at %ld past the end of %ld elements", n, offset, r->n);
  if (!a.ok()) return nullptr;
  return wrap(env, new TensorRef{TensorRef::kMagic, r->storage, r->offset + offset, n, r->dtype, false});
}

// free(handle): releases the buffer of a handle made by alloc (views of it become unusable) or of a quantized weight.
napi_value free_tensor(napi_env env, napi_callback_info info) {
  Args a(env, info, "free");
  if (QuantRef* q = a.quant(0, "tensor")) {
    if (!a.ok()) return nullptr;
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)q->mem.bytes, &ignored);
    q->release();
    return nullptr;
  }
  TensorRef* r = a.ref(0, "tensor");
  if (!a.ok() || !r->root) return nullptr;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)r->storage->mem.bytes, &ignored);
  r->storage->release();
  return nullptr;
}

// upload(handle, Float32Array | Uint16Array (raw half bits) | Int32Array)
napi_value upload(napi_env env, napi_callback_info info) {
  Args a(env, info, "upload");
  TensorRef* r = a.ref(0, "tensor");
  napi_typedarray_type type;
  size_t length = 0;
  void* src = nullptr;
  bool is_typed = false;
  if (a.ok()) napi_is_typedarray(env, a.value(1), &is_typed);
  if (a.ok() && (!is_typed || napi_get_typedarray_info(env, a.value(1), &type, &length, &src, nullptr, nullptr) != napi_ok))
    a.fail("data must be a Float32Array, Uint16Array or Int32Array");
  if (!a.ok()) return nullptr;
  if ((long)length != r->n) return a.fail("%zu values for a tensor of %ld", length, r->n), nullptr;
  if (type == napi_float32_array) {
    if (r->dtype == I32) return a.fail("float values into an i32 tensor"), nullptr;
    k_convert(r->data(), r->dtype, src, F32, r->n);
  } else if (type == napi_uint16_array) {
    if (r->dtype != BF16 && r->dtype != F16) return a.fail("16-bit values into a %s tensor", dtype_name(r->dtype)), nullptr;
    memcpy(r->data(), src, r->n * 2);
  } else if (type == napi_int32_array) {
    if (r->dtype != I32) return a.fail("int32 values into a %s tensor", dtype_name(r->dtype)), nullptr;
    memcpy(r->data(), src, r->n * 4);
  } else {
    a.fail("data must be a Float32Array, Uint16Array or Int32Array");
  }
  return nullptr;
}

struct Dequant {
  const QuantDesc* q;
  float* out;
};

void dequant_rows_task(void* c, long b, long e, int) {
  Dequant& k = *(Dequant*)c;
  if (k.q->type == Q_INT8)
    dequant_int8_vectorwise(k.out + b * k.q->C, *k.q, b, e);
  else
    dequant_range(k.out + b * k.q->C, *k.q, b * k.q->C, (e - b) * k.q->C);
}

// The dequantized float32 values of a quantized weight (int8: bitsandbytes' int8_vectorwise_dequant).
napi_value download_quant(napi_env env, const QuantRef* q) {
  long n = q->q.OC * q->q.C;
  void* dst = nullptr;
  napi_value buffer, out;
  if (napi_create_arraybuffer(env, n * 4, &dst, &buffer) != napi_ok) return nullptr;
  Dequant k{&q->q, (float*)dst};
  pool_run(q->q.OC, pool_grain(q->q.OC, q->q.C), dequant_rows_task, &k);
  napi_create_typedarray(env, napi_float32_array, n, buffer, 0, &out);
  return out;
}

// download(handle[, into]) -> a new Float32Array (float tensors, widened; quantized weights, dequantized) or Int32Array;
// with `into` (a Float32Array of the tensor's size; dense float tensors) the values go there and it is returned.
napi_value download(napi_env env, napi_callback_info info) {
  Args a(env, info, "download");
  if (QuantRef* q = a.quant(0, "tensor")) return a.ok() ? download_quant(env, q) : nullptr;
  TensorRef* r = a.ref(0, "tensor");
  if (!a.ok()) return nullptr;
  if (void* into = a.typed(1, "into", napi_float32_array, "Float32Array", r->n, true)) {
    if (r->dtype == I32) return a.fail("into is for float tensors"), nullptr;
    k_convert(into, F32, r->data(), r->dtype, r->n);
    return a.value(1);
  }
  if (!a.ok()) return nullptr;
  void* dst = nullptr;
  napi_value buffer, out;
  if (napi_create_arraybuffer(env, r->n * 4, &dst, &buffer) != napi_ok) return nullptr;
  if (r->dtype == I32)
    memcpy(dst, r->data(), r->n * 4);
  else
    k_convert(dst, F32, r->data(), r->dtype, r->n);
  napi_create_typedarray(env, r->dtype == I32 ? napi_int32_array : napi_float32_array, r->n, buffer, 0, &out);
  return out;
}

void finalize_quant(napi_env env, void* data, void*) {
  QuantRef* r = (QuantRef*)data;
  if (r->mem.data) {
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)r->mem.bytes, &ignored);
    r->release();
  }
  delete r;
}

// Wraps q, whose parts point into mem, in a handle that owns mem.
napi_value wrap_quant_memory(Args& a, const QuantDesc& q, TensorMemory mem) {
  QuantRef* r = new QuantRef{QuantRef::kMagic, q, mem};
  int64_t ignored;
  napi_adjust_external_memory(a.env, (int64_t)mem.bytes, &ignored);
  napi_value out;
  if (napi_create_external(a.env, r, finalize_quant, nullptr, &out) != napi_ok) {
    finalize_quant(a.env, r, nullptr);
    return a.fail("cannot create a tensor handle"), nullptr;
  }
  return out;
}

// Copies the parts (fields of q, with their sizes in bytes) into one buffer, each 64-byte aligned, points q's
// fields at the copies and wraps q in a handle.
napi_value wrap_quant(Args& a, QuantDesc& q, std::initializer_list<std::pair<const void**, size_t>> parts) {
  size_t bytes = 0;
  for (auto& part : parts) bytes += (part.second + 63) / 64 * 64;
  TensorMemory big = TensorMemory::alloc(bytes, false);
  char* mem = (char*)big.data;
  if (!mem) return a.fail("out of memory allocating %zu bytes", bytes), nullptr;
  size_t at = 0;
  for (auto& part : parts) {
    if (*part.first) memcpy(mem + at, *part.first, part.second);
    *part.first = *part.first ? mem + at : nullptr;
    at += (part.second + 63) / 64 * 64;
  }
  return wrap_quant_memory(a, q, big);
}

// upload4bit(type 'nf4'|'fp4', OC, C, blocksize, packed: Uint8Array, absmax: Float32Array | null,
//            absmaxCodes: Uint8Array | null, nestedAbsmax: Float32Array | null, nestedMap: Float32Array | null,
//            nestedBlocksize, offset, dtype) -> handle; absmax null means double-quantized; dtype (F32, BF16 or
//            F16) the one dequantized values are rounded to
napi_value upload_4bit(napi_env env, napi_callback_info info) {
  Args a(env, info, "upload4bit");
  std::string type = a.text(0, "type");
  if (a.ok() && type != "nf4" && type != "fp4") a.fail("type must be 'nf4' or 'fp4'");
  long OC = a.dim(1, "OC"), C = a.dim(2, "C"), bs = a.dim(3, "blocksize"), dtype = a.dim(11, "dtype");
  if (a.ok() && (OC <= 0 || C <= 0 || bs <= 0)) a.fail("OC, C and blocksize must be positive");
  if (a.ok() && dtype != F32 && dtype != BF16 && dtype != F16) a.fail("dtype must be f32, bf16 or f16 (%ld)", dtype);
  if (!a.ok()) return nullptr;
  long n = OC * C, blocks = (n + bs - 1) / bs;
  QuantDesc q{};
  q.type = type == "nf4" ? Q_NF4 : Q_FP4;
  q.OC = OC, q.C = C, q.blocksize = bs, q.blocksize_log2 = log2_exact(bs), q.nested_log2 = -1, q.dtype = (int)dtype;
  q.packed = (const uint8_t*)a.typed(4, "packed", napi_uint8_array, "Uint8Array", (n + 1) / 2);
  q.absmax = (const float*)a.typed(5, "absmax", napi_float32_array, "Float32Array", blocks, true);
  long nb = 1;
  if (a.ok() && !q.absmax) {
    nb = a.dim(9, "nestedBlocksize");
    if (a.ok() && nb <= 0) a.fail("nestedBlocksize must be positive");
    q.absmax_codes = (const uint8_t*)a.typed(6, "absmaxCodes", napi_uint8_array, "Uint8Array", blocks);
    q.nested_absmax = (const float*)a.typed(7, "nestedAbsmax", napi_float32_array, "Float32Array", (blocks + nb - 1) / nb);
    q.nested_map = (const float*)a.typed(8, "nestedMap", napi_float32_array, "Float32Array", 256);
    q.nested_blocksize = nb, q.nested_log2 = log2_exact(nb);
    q.offset = (float)a.number(10, "offset");
  }
  if (!a.ok()) return nullptr;
  bool nested = !q.absmax;
  return wrap_quant(a, q, {{(const void**)&q.packed, (size_t)(n + 1) / 2},
                           {(const void**)&q.absmax, nested ? 0 : (size_t)blocks * 4},
                           {(const void**)&q.absmax_codes, nested ? (size_t)blocks : 0},
                           {(const void**)&q.nested_absmax, nested ? (size_t)((blocks + nb - 1) / nb) * 4 : 0},
                           {(const void**)&q.nested_map, nested ? 256 * 4 : 0}});
}

// uploadInt8(OC, C, weight: Int8Array, scb: Float32Array, threshold) -> handle
napi_value upload_int8(napi_env env, napi_callback_info info) {
  Args a(env, info, "uploadInt8");
  long OC = a.dim(0, "OC"), C = a.dim(1, "C");
  double threshold = a.number(4, "threshold");
  if (a.ok() && (OC <= 0 || C <= 0)) a.fail("OC and C must be positive");
  if (a.ok() && !(threshold >= 0)) a.fail("threshold must be >= 0");
  if (!a.ok()) return nullptr;
  QuantDesc q{};
  q.type = Q_INT8;
  q.OC = OC, q.C = C, q.threshold = (float)threshold;
  q.w8 = (const int8_t*)a.typed(2, "weight", napi_int8_array, "Int8Array", OC * C);
  q.scb = (const float*)a.typed(3, "scb", napi_float32_array, "Float32Array", OC);
  if (!a.ok()) return nullptr;
  return wrap_quant(a, q, {{(const void**)&q.w8, (size_t)(OC * C)}, {(const void**)&q.scb, (size_t)OC * 4}});
}

// packBf16(weight, OC, C) -> handle: a copy of a bf16 (OC, C) weight in matvec-packed.cpp's layout, read only as a
// linear weight; needs AVX512_BF16 (info().bf16Dot)
napi_value pack_bf16_weight(napi_env env, napi_callback_info info) {
  Args a(env, info, "packBf16");
  long OC = a.dim(1, "OC"), C = a.dim(2, "C");
  if (a.ok() && (OC <= 0 || C <= 0)) a.fail("OC and C must be positive");
  if (a.ok() && !gemm_bf16_available()) a.fail("this CPU has no AVX512_BF16, which packed bf16 weights are read with");
  TensorArg w = a.tensor(0, "weight", OC * C, 1u << BF16);
  if (!a.ok()) return nullptr;
  const size_t bytes = packed_bf16_elems(OC, C) * sizeof(uint16_t);
  TensorMemory mem = TensorMemory::alloc(bytes, true);
  if (!mem.data) return a.fail("out of memory allocating %zu bytes", bytes), nullptr;
  pack_bf16((uint16_t*)mem.data, (const uint16_t*)w.p, OC, C);
  QuantDesc q{};
  q.type = Q_BF16_PACKED, q.OC = OC, q.C = C, q.tiles = (const uint16_t*)mem.data;
  return wrap_quant_memory(a, q, mem);
}

}  // namespace

const Binding memory_bindings[] = {
    {"alloc", alloc}, {"view", view}, {"free", free_tensor}, {"upload", upload}, {"download", download},
    {"upload4bit", upload_4bit}, {"uploadInt8", upload_int8}, {"packBf16", pack_bf16_weight}, {nullptr, nullptr},
};

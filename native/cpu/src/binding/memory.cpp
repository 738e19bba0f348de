// Tensor memory for JavaScript: alloc (zeroed, like typed arrays), view, free, upload, download.
// Handles are napi externals; a handle's finalizer drops its reference to the shared buffer.
#include <cstring>
#include <new>

#include "../kernels/kernels.h"
#include "args.h"
#include "bindings.h"

namespace {

void finalize_ref(napi_env env, void* data, void*) {
  TensorRef* r = (TensorRef*)data;
  if (r->storage.use_count() == 1 && r->storage->data) {
    int64_t ignored;
    napi_adjust_external_memory(env, -(int64_t)r->storage->bytes, &ignored);
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

// alloc(n, dtype) -> handle
napi_value alloc(napi_env env, napi_callback_info info) {
  Args a(env, info, "alloc");
  long n = a.dim(0, "n");
  long dtype = a.dim(1, "dtype");
  if (a.ok() && dtype > I32) a.fail("unknown dtype code %ld", dtype);
  if (!a.ok()) return nullptr;
  size_t bytes = (size_t)(n > 0 ? n : 1) * TensorRef::elem_bytes((int)dtype);
  void* data = calloc(1, bytes);
  if (!data) {
    a.fail("out of memory allocating %zu bytes", bytes);
    return nullptr;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)bytes, &ignored);
  auto storage = std::shared_ptr<Storage>(new Storage{data, bytes});
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

// free(handle): releases the buffer of a handle made by alloc; views of it become unusable.
napi_value free_tensor(napi_env env, napi_callback_info info) {
  Args a(env, info, "free");
  TensorRef* r = a.ref(0, "tensor");
  if (!a.ok() || !r->root) return nullptr;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)r->storage->bytes, &ignored);
  free(r->storage->data);
  r->storage->data = nullptr;
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

// download(handle) -> a new Float32Array (float tensors, widened) or Int32Array
napi_value download(napi_env env, napi_callback_info info) {
  Args a(env, info, "download");
  TensorRef* r = a.ref(0, "tensor");
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

}  // namespace

const Binding memory_bindings[] = {
    {"alloc", alloc}, {"view", view}, {"free", free_tensor}, {"upload", upload}, {"download", download}, {nullptr, nullptr},
};

// What a JavaScript tensor handle points at: a shared buffer (tensor-memory.h) plus an element offset (views
// alias their parent's buffer). Freed buffers stay registered as null so stale handles fail cleanly.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "../kernels/half.h"
#include "tensor-memory.h"

struct Storage {
  TensorMemory mem;  // mem.data null once freed
  void release() { mem.release(); }
  ~Storage() { release(); }
};

struct TensorRef {
  static const uint32_t kMagic = 0xa1ca7e25;
  uint32_t magic = kMagic;
  std::shared_ptr<Storage> storage;
  long offset;  // elements
  long n;  // elements
  int dtype;
  bool root;  // made by alloc (not a view): free() releases the buffer

  void* data() const { return storage->mem.data ? (char*)storage->mem.data + offset * elem_bytes(dtype) : nullptr; }
  static long elem_bytes(int dtype) { return dtype == BF16 || dtype == F16 ? 2 : 4; }
};

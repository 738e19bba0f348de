// What a JavaScript handle to a quantized weight points at: its QuantDesc and the one buffer holding all its parts
// (codes, absmax, nested absmax and map; or int8 rows and SCB). Freed weights keep the struct with a null buffer.
#pragma once
#include <cstdint>

#include "../kernels/quant.h"
#include "tensor-memory.h"

struct QuantRef {
  static const uint32_t kMagic = 0xa1ca7e26;
  uint32_t magic = kMagic;  // first, like TensorRef's, so a handle's kind can be told apart
  QuantDesc q;
  TensorMemory mem;  // mem.data null once freed
  void release() { mem.release(); }
};

// "nf4", "fp4" or "int8"
const char* quant_name(int type);

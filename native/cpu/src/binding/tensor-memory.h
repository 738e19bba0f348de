// Zeroed buffers for tensors and quantized weights, all starting on a cache line (calloc's start 16 bytes into one
// split every 64-byte load of a row over two lines: the 134M model's decode step at 8 rows on 2 Zen 4 cores, 12.7 ->
// 9.7 ms), in 2 MB pages (Linux's transparent huge pages, asked for with madvise(MADV_HUGEPAGE) where the system
// allows them) wherever that wastes no memory: fewer TLB misses, and the hardware prefetchers run on past what
// would be 4 KB page ends (the same model's single-stream decode step 5-10% faster).
// - from kOwnMapping bytes on: a mapping of its own, starting on a 2 MB boundary (its tail keeps 4 KB pages);
// - smaller model weights: packed one after another into shared 64 MB mappings (weights are loaded together and
//   live long; a freed one gives its whole 4 KB pages back at once, the mapping goes when its last one does);
// - anything else: the C heap.
#pragma once
#include <cstddef>
#include <memory>

const size_t kOwnMapping = 2 << 20;

struct Mapping;  // an mmap'd range, unmapped when the last buffer in it is released

struct TensorMemory {
  void* data = nullptr;  // null when out of memory, and once released
  size_t bytes = 0;
  std::shared_ptr<Mapping> mapping;  // null for heap buffers

  // weight: a model weight (packed when small)
  static TensorMemory alloc(size_t bytes, bool weight);
  void release();
};

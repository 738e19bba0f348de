// tensor-memory.h: own and shared mappings on Linux, the heap elsewhere and for small non-weight buffers.
#include "tensor-memory.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#ifdef __linux__
#include <sys/mman.h>
#endif

struct Mapping {
  char* base;
  size_t size;
  size_t used = 0;  // bytes handed out (shared mappings fill from the start)
#ifdef __linux__
  ~Mapping() { munmap(base, size); }
#endif
};

namespace {

const size_t kHuge = 2 << 20, kSmallPage = 4096, kShared = 64 << 20;

#ifdef __linux__
// `size` bytes (a multiple of 4 KB) starting on a 2 MB boundary, zeroed, or null
std::shared_ptr<Mapping> map_aligned(size_t size) {
  // map a 2 MB page more than needed, then unmap the ends so that what stays starts on a 2 MB boundary
  char* raw = (char*)mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == (char*)MAP_FAILED) return nullptr;
  char* start = (char*)(((uintptr_t)raw + kHuge - 1) / kHuge * kHuge);
  if (start > raw) munmap(raw, start - raw);
  munmap(start + size, raw + size + kHuge - (start + size));
  madvise(start, size, MADV_HUGEPAGE);  // a hint: on systems without huge pages the range keeps 4 KB pages
  return std::shared_ptr<Mapping>(new Mapping{start, size});
}

std::mutex shared_mu;  // addons in several worker threads share these
std::shared_ptr<Mapping> shared_now;  // the shared mapping small weights go to
#endif

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

TensorMemory TensorMemory::alloc(size_t bytes, bool weight) {
  TensorMemory m;
  m.bytes = bytes;
#ifdef __linux__
  if (bytes >= kOwnMapping) {
    m.mapping = map_aligned(round_up(bytes, kSmallPage));
    if (m.mapping) m.data = m.mapping->base;
    return m;
  }
  if (weight && bytes > 0) {
    std::lock_guard<std::mutex> lock(shared_mu);
    const size_t need = round_up(bytes, 64);
    if (!shared_now || shared_now->used + need > shared_now->size) shared_now = map_aligned(kShared);
    if (shared_now) {
      m.mapping = shared_now;
      m.data = shared_now->base + shared_now->used;
      shared_now->used += need;
    }
    return m;
  }
#endif
  const size_t size = round_up(bytes > 0 ? bytes : 1, 64);  // 64-byte aligned, as quantized weights' parts expect
  m.data = aligned_alloc(64, size);
  if (m.data) memset(m.data, 0, size);
  return m;
}

void TensorMemory::release() {
  if (!data) return;
  if (!mapping) {
    free(data);
  } else {
#ifdef __linux__
    // give back the whole 4 KB pages now: a shared mapping stays until its last buffer goes
    char* first = (char*)round_up((uintptr_t)data, kSmallPage);
    char* end = (char*)(((uintptr_t)data + bytes) / kSmallPage * kSmallPage);
    if (mapping.use_count() > 1 && end > first) madvise(first, end - first, MADV_DONTNEED);
#endif
    mapping.reset();
  }
  data = nullptr;
}

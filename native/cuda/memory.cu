// Arena allocator: slabs grow from 4 MiB to 256 MiB; requests above 64 MiB get a slab of their own.
#include <unordered_map>
#include <vector>

#include "device.cuh"
#include "memory.cuh"

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kFirstSlab = 4ull << 20, kMaxSlab = 256ull << 20, kOwnSlab = 64ull << 20;

struct Slab {
  char* base;
  size_t bytes;
};

struct Arena {
  std::vector<Slab> slabs;  // every slab, for release
  char* bump = nullptr;     // the slab small blocks are carved from
  size_t bump_bytes = 0, used = 0;
  size_t next_slab = kFirstSlab;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // by rounded size
};

std::unordered_map<int, Arena> arenas;
struct Block {
  int arena;
  size_t bytes;
};
std::unordered_map<void*, Block> blocks;
size_t reserved = 0, peak = 0;

char* new_slab(Arena& a, size_t bytes, int id) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("CUDA out of memory: " + std::to_string(bytes >> 20) + " MiB more for arena " + std::to_string(id % 8) +
                             " with " + std::to_string(reserved >> 20) + " MiB already reserved");
  }
  count_reserved((long long)bytes);
  a.slabs.push_back({(char*)p, bytes});
  return (char*)p;
}

}  // namespace

void* arena_alloc(int id, size_t bytes) {
  size_t size = (bytes + kAlign - 1) / kAlign * kAlign;
  if (size == 0) size = kAlign;
  Arena& a = arenas[id];
  auto reuse = a.free_blocks.find(size);
  if (reuse != a.free_blocks.end() && !reuse->second.empty()) {
    void* p = reuse->second.back();
    reuse->second.pop_back();
    blocks[p] = {id, size};
    return p;
  }
  char* p;
  if (size > kOwnSlab) {
    p = new_slab(a, size, id);
  } else {
    if (!a.bump || a.used + size > a.bump_bytes) {
      a.bump_bytes = a.next_slab > size ? a.next_slab : size;
      if (a.next_slab < kMaxSlab) a.next_slab *= 2;
      a.bump = new_slab(a, a.bump_bytes, id);
      a.used = 0;
    }
    p = a.bump + a.used;
    a.used += size;
  }
  blocks[p] = {id, size};
  return p;
}

void arena_free_block(void* p) {
  auto it = blocks.find(p);
  if (it == blocks.end()) return;
  arenas[it->second.arena].free_blocks[it->second.bytes].push_back(p);
  blocks.erase(it);
}

void arena_release(int id) {
  auto it = arenas.find(id);
  if (it == arenas.end()) return;
  CUDA_CHECK(cudaStreamSynchronize(stream()));
  for (auto b = blocks.begin(); b != blocks.end();) b = b->second.arena == id ? blocks.erase(b) : std::next(b);
  for (const Slab& s : it->second.slabs) {
    CUDA_CHECK(cudaFree(s.base));
    count_reserved(-(long long)s.bytes);
  }
  arenas.erase(it);
}

void count_reserved(long long delta) {
  reserved = (size_t)((long long)reserved + delta);
  if (reserved > peak) peak = reserved;
}

size_t reserved_bytes() { return reserved; }
size_t peak_reserved_bytes() { return peak; }
void reset_peak_reserved() { peak = reserved; }

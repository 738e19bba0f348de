// Device memory by lifetime: an arena carves blocks out of large cudaMalloc slabs (bump allocation),
// keeps freed blocks for reuse by size, and returns all its slabs at once. Not the scratch slots.
#pragma once
#include <cstddef>

// Arena ids are chosen by the caller (one per backend instance and lifetime).
void* arena_alloc(int arena, size_t bytes);
void arena_free_block(void* block);  // a block from arena_alloc; its arena may hand it out again
void arena_release(int arena);       // waits for the stream, then frees every slab of the arena

// Bytes this addon holds on the device (slabs, scratch, cuBLASLt workspace), now and at most since reset.
void count_reserved(long long delta);
size_t reserved_bytes();
size_t peak_reserved_bytes();
void reset_peak_reserved();

// The one device this addon drives: its stream, the error word kernels raise instead of throwing, and
// the growable scratch buffers ops borrow between stream-ordered calls. Not the arenas (memory.cuh).
#pragma once
#include <string>

#include "common.cuh"

// Codes a kernel stores in the error word (the first one wins), with the row and value it saw.
enum DeviceError { ERR_NONE = 0, ERR_TOKEN_ID = 1, ERR_LABEL = 2 };

// "" when the device and cuBLASLt are ready, else why this backend is unavailable.
std::string device_init();
std::string device_name();
cudaStream_t stream();
int* error_word();  // int[3]: code, row, value
// Waits for every queued op; throws on an asynchronous CUDA error or a raised error word.
void device_sync();

// Each slot is one buffer, reused by every op that needs it (ops run in stream order, so an op's use
// ends before the next op's begins). Growing a slot waits for the stream first.
enum ScratchSlot { SLOT_STAGE, SLOT_INPUT, SLOT_WEIGHT, SLOT_CONVERTED, SLOT_REDUCE, SLOT_ATTN, SLOT_COUNT };
void* scratch(ScratchSlot slot, size_t bytes);

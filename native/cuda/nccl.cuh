// Sums over the ranks of a data-parallel job on GPU buffers through NCCL, which is loaded at run time
// (dlopen of libnccl.so.2): the addon builds without NCCL, and only a multi-rank cuda run asks for it.
// The rendezvous (who makes the unique id, how it travels) is the caller's: src/distributed/device-reduce.ts.
#pragma once
#include <cstdint>
#include <string>

#include "common.cuh"

constexpr size_t kNcclIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES

std::string nccl_load();            // "" or why libnccl.so.2 could not be loaded
void nccl_unique_id(uint8_t* out);  // kNcclIdBytes bytes; throws when libnccl cannot be loaded
// Joins the communicator every rank builds from the same id (collective: blocks until all ranks join).
void nccl_init(const uint8_t* id, int nranks, int rank);
// In place on this addon's stream: every rank's n floats become their sum over the ranks.
void nccl_all_reduce_sum(float* buf, size_t n);

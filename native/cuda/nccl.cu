// The NCCL entry points, declared by hand with the values of NVIDIA/nccl's src/nccl.h.in (ncclUniqueId is
// `char internal[NCCL_UNIQUE_ID_BYTES = 128]`, ncclSuccess = 0, ncclFloat32 = 7, ncclSum = 0; the signatures
// of ncclGetUniqueId, ncclCommInitRank, ncclAllReduce and ncclGetErrorString, stable since NCCL 2.0) and
// loaded at run time (shared-library.cuh). One communicator per process.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device.cuh"
#include "nccl.cuh"
#include "shared-library.cuh"

namespace {

typedef int Result;  // ncclResult_t; 0 = success
typedef void* Comm;  // ncclComm_t
struct UniqueId {
  char internal[kNcclIdBytes];
};
enum : int { NCCL_FLOAT32 = 7, NCCL_SUM = 0 };

struct Api {
  Result (*getUniqueId)(UniqueId*);
  Result (*commInitRank)(Comm*, int nranks, UniqueId id, int rank);
  Result (*allReduce)(const void* send, void* recv, size_t count, int datatype, int op, Comm, cudaStream_t);
  const char* (*errorString)(Result);
} api;

Comm comm = nullptr;

void ok(Result r, const char* what) {
  if (r != 0) throw std::runtime_error(std::string("NCCL ") + what + " failed: " + api.errorString(r));
}

}  // namespace

std::string nccl_load() {
  if (api.allReduce) return "";
  std::vector<std::string> names;
  if (const char* env = getenv("ALPACA_NCCL")) names.push_back(env);
  names.push_back("libnccl.so.2");
  names.push_back("libnccl.so");
  return load_shared_library(names, "libnccl.so.2", "install NCCL, or set ALPACA_NCCL to its path",
                             {{(void**)&api.getUniqueId, "ncclGetUniqueId"},
                              {(void**)&api.commInitRank, "ncclCommInitRank"},
                              {(void**)&api.errorString, "ncclGetErrorString"},
                              {(void**)&api.allReduce, "ncclAllReduce"}});
}

void nccl_unique_id(uint8_t* out) {
  std::string why = nccl_load();
  if (!why.empty()) throw std::runtime_error(why);
  UniqueId id;
  ok(api.getUniqueId(&id), "GetUniqueId");
  memcpy(out, id.internal, kNcclIdBytes);
}

void nccl_init(const uint8_t* bytes, int nranks, int rank) {
  std::string why = nccl_load();
  if (!why.empty()) throw std::runtime_error(why);
  if (comm) throw std::runtime_error("NCCL is already initialised in this process");
  UniqueId id;
  memcpy(id.internal, bytes, kNcclIdBytes);
  ok(api.commInitRank(&comm, nranks, id, rank), "CommInitRank");
}

void nccl_all_reduce_sum(float* buf, size_t n) {
  if (!comm) throw std::runtime_error("ncclAllReduceSum before ncclInit");
  if (n == 0) return;
  ok(api.allReduce(buf, buf, n, NCCL_FLOAT32, NCCL_SUM, comm, stream()), "AllReduce");
}

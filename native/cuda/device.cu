// Device start-up (the first device, one non-blocking stream, cuBLASLt), the error word and the scratch slots.
#include <cstdio>

#include "cublaslt.cuh"
#include "device.cuh"
#include "memory.cuh"

static cudaStream_t g_stream = nullptr;
static int* g_error = nullptr;
static std::string g_name;
static void* g_slots[SLOT_COUNT] = {};
static size_t g_slot_bytes[SLOT_COUNT] = {};

void check_cuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") in " + what);
}

std::string device_init() {
  if (g_stream) return "";
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return std::string("no CUDA device (") + (err == cudaSuccess ? "none found" : cudaGetErrorString(err)) + ")";
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cannot read the properties of CUDA device 0";
  if (prop.major < 8) {
    char buf[160];
    snprintf(buf, sizeof buf, "CUDA device 0 (%s) is sm_%d%d; this backend needs sm_80 or newer", prop.name, prop.major, prop.minor);
    return buf;
  }
  std::string blas = cublaslt_load();
  if (!blas.empty()) return blas;
  try {
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&g_error, 3 * sizeof(int)));
    CUDA_CHECK(cudaMemset(g_error, 0, 3 * sizeof(int)));
    cublaslt_init(g_stream);
  } catch (const std::exception& e) {
    g_stream = nullptr;
    return e.what();
  }
  g_name = prop.name;
  return "";
}

std::string device_name() { return g_name; }
cudaStream_t stream() { return g_stream; }
int* error_word() { return g_error; }

void device_sync() {
  int word[3];
  CUDA_CHECK(cudaMemcpyAsync(word, g_error, sizeof word, cudaMemcpyDeviceToHost, g_stream));
  CUDA_CHECK(cudaStreamSynchronize(g_stream));
  if (word[0] == ERR_NONE) return;
  CUDA_CHECK(cudaMemsetAsync(g_error, 0, sizeof word, g_stream));
  char buf[200];
  if (word[0] == ERR_TOKEN_ID)
    snprintf(buf, sizeof buf, "token id %d at position %d is outside the vocabulary (embedding)", word[2], word[1]);
  else
    snprintf(buf, sizeof buf, "label %d at row %d is outside the vocabulary (cross-entropy)", word[2], word[1]);
  throw std::runtime_error(buf);
}

void* scratch(ScratchSlot slot, size_t bytes) {
  if (bytes <= g_slot_bytes[slot]) return g_slots[slot];
  size_t grown = bytes + bytes / 4;
  CUDA_CHECK(cudaStreamSynchronize(g_stream));
  if (g_slots[slot]) {
    CUDA_CHECK(cudaFree(g_slots[slot]));
    count_reserved(-(long long)g_slot_bytes[slot]);
    g_slots[slot] = nullptr;
    g_slot_bytes[slot] = 0;
  }
  void* p = nullptr;
  if (cudaMalloc(&p, grown) != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("CUDA out of memory: " + std::to_string(grown >> 20) + " MiB of scratch");
  }
  count_reserved((long long)grown);
  g_slots[slot] = p;
  g_slot_bytes[slot] = grown;
  return p;
}

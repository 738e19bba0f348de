// The cuBLASLt entry points, declared by hand with the values of cublasLt.h / cublas_api.h (stable since
// CUDA 11), loaded at run time (shared-library.cuh); one cached plan (descriptors + heuristic algorithm) per product shape.
#include <array>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "cublaslt.cuh"
#include "device.cuh"
#include "memory.cuh"
#include "shared-library.cuh"

namespace {

typedef int Status;  // cublasStatus_t; 0 = success
typedef void* Handle;
typedef void* Desc;
typedef void* Layout;
typedef void* Pref;
struct Algo {
  uint64_t data[8];
};
struct HeuristicResult {
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

enum : int {
  OP_N = 0, OP_T = 1,                                   // cublasOperation_t
  COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77,         // cublasComputeType_t
  DESC_TRANSA = 3, DESC_TRANSB = 4,                     // cublasLtMatmulDescAttributes_t
  PREF_MAX_WORKSPACE_BYTES = 1,                         // cublasLtMatmulPreferenceAttributes_t
  PREF_MIN_ALIGNMENT_A = 5, PREF_MIN_ALIGNMENT_B = 6, PREF_MIN_ALIGNMENT_C = 7, PREF_MIN_ALIGNMENT_D = 8,
};

struct Api {
  Status (*create)(Handle*);
  Status (*descCreate)(Desc*, int compute, int scaleType);
  Status (*descSet)(Desc, int attr, const void* buf, size_t bytes);
  Status (*layoutCreate)(Layout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
  Status (*prefCreate)(Pref*);
  Status (*prefSet)(Pref, int attr, const void* buf, size_t bytes);
  Status (*prefDestroy)(Pref);
  Status (*heuristic)(Handle, Desc, Layout, Layout, Layout, Layout, Pref, int requested, HeuristicResult*, int* returned);
  Status (*matmul)(Handle, Desc, const void* alpha, const void* A, Layout, const void* B, Layout, const void* beta,
                   const void* C, Layout, void* D, Layout, const Algo*, void* workspace, size_t workspaceBytes, cudaStream_t);
} api;

Handle handle = nullptr;
void* workspace = nullptr;
constexpr size_t kWorkspace = 32ull << 20;
cudaStream_t lt_stream = nullptr;

struct Plan {
  Desc desc;
  Layout a, b, d;
  Algo algo;
};
using Key = std::array<int64_t, 14>;
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ (size_t)v) * 1099511628211ull;
    return h;
  }
};
std::unordered_map<Key, Plan, KeyHash> plans;

void ok(Status s, const char* what) {
  if (s != 0) throw std::runtime_error(std::string("cuBLASLt ") + what + " failed with status " + std::to_string(s));
}

// The largest power of two (up to 256) dividing the address: cuBLASLt picks kernels that need no more.
uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (a > 1 && ((uintptr_t)p % a) != 0) a /= 2;
  return a;
}

Layout layout(cudaDataType_t type, long rows, long cols, long ld) {
  Layout l;
  ok(api.layoutCreate(&l, type, (uint64_t)rows, (uint64_t)cols, (int64_t)ld), "MatrixLayoutCreate");
  return l;
}

}  // namespace

std::string cublaslt_load() {
  if (api.matmul) return "";
  std::vector<std::string> names;
  if (const char* env = getenv("ALPACA_CUBLASLT")) names.push_back(env);
  for (const char* so : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
    names.push_back(so);
    for (const char* dir : {"/usr/local/cuda/lib64/", "/usr/local/cuda/targets/x86_64-linux/lib/"}) names.push_back(std::string(dir) + so);
  }
  return load_shared_library(names, "libcublasLt", "set ALPACA_CUBLASLT to its path",
                             {{(void**)&api.create, "cublasLtCreate"},
                              {(void**)&api.descCreate, "cublasLtMatmulDescCreate"},
                              {(void**)&api.descSet, "cublasLtMatmulDescSetAttribute"},
                              {(void**)&api.layoutCreate, "cublasLtMatrixLayoutCreate"},
                              {(void**)&api.prefCreate, "cublasLtMatmulPreferenceCreate"},
                              {(void**)&api.prefSet, "cublasLtMatmulPreferenceSetAttribute"},
                              {(void**)&api.prefDestroy, "cublasLtMatmulPreferenceDestroy"},
                              {(void**)&api.heuristic, "cublasLtMatmulAlgoGetHeuristic"},
                              {(void**)&api.matmul, "cublasLtMatmul"}});
}

void cublaslt_init(cudaStream_t s) {
  ok(api.create(&handle), "Create");
  CUDA_CHECK(cudaMalloc(&workspace, kWorkspace));
  count_reserved((long long)kWorkspace);
  lt_stream = s;
}

void gemm(bool trans_a, bool trans_b, long m, long n, long k, const void* A, long lda, const void* B, long ldb,
          cudaDataType_t ab_type, bool tf32, float* D, long ldd, float beta) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: D = beta * D (every caller passes ldd == m)
    if (beta == 0) CUDA_CHECK(cudaMemsetAsync(D, 0, (size_t)m * n * sizeof(float), lt_stream));
    return;
  }
  int compute = ab_type == CUDA_R_32F && tf32 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F;
  uint32_t al_a = alignment(A), al_b = alignment(B), al_d = alignment(D);
  Key key = {trans_a, trans_b, m, n, k, lda, ldb, ldd, (int64_t)ab_type, compute, beta != 0, al_a, al_b, al_d};
  auto it = plans.find(key);
  if (it == plans.end()) {
    Plan p;
    ok(api.descCreate(&p.desc, compute, CUDA_R_32F), "MatmulDescCreate");
    int ta = trans_a ? OP_T : OP_N, tb = trans_b ? OP_T : OP_N;
    ok(api.descSet(p.desc, DESC_TRANSA, &ta, sizeof ta), "MatmulDescSetAttribute(TRANSA)");
    ok(api.descSet(p.desc, DESC_TRANSB, &tb, sizeof tb), "MatmulDescSetAttribute(TRANSB)");
    p.a = trans_a ? layout(ab_type, k, m, lda) : layout(ab_type, m, k, lda);
    p.b = trans_b ? layout(ab_type, n, k, ldb) : layout(ab_type, k, n, ldb);
    p.d = layout(CUDA_R_32F, m, n, ldd);
    Pref pref;
    ok(api.prefCreate(&pref), "MatmulPreferenceCreate");
    uint64_t ws = kWorkspace;
    ok(api.prefSet(pref, PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), "MatmulPreferenceSetAttribute");
    ok(api.prefSet(pref, PREF_MIN_ALIGNMENT_A, &al_a, sizeof al_a), "MatmulPreferenceSetAttribute");
    ok(api.prefSet(pref, PREF_MIN_ALIGNMENT_B, &al_b, sizeof al_b), "MatmulPreferenceSetAttribute");
    ok(api.prefSet(pref, PREF_MIN_ALIGNMENT_C, &al_d, sizeof al_d), "MatmulPreferenceSetAttribute");
    ok(api.prefSet(pref, PREF_MIN_ALIGNMENT_D, &al_d, sizeof al_d), "MatmulPreferenceSetAttribute");
    HeuristicResult result;
    int found = 0;
    Status s = api.heuristic(handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
    api.prefDestroy(pref);
    if (s != 0 || found == 0)
      throw std::runtime_error("cuBLASLt has no algorithm for a " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                               std::to_string(k) + " product of type " + std::to_string((int)ab_type));
    p.algo = result.algo;
    it = plans.emplace(key, p).first;
  }
  const Plan& p = it->second;
  float alpha = 1.0f;
  ok(api.matmul(handle, p.desc, &alpha, A, p.a, B, p.b, &beta, D, p.d, D, p.d, &p.algo, workspace, kWorkspace, lt_stream),
     "Matmul");
}

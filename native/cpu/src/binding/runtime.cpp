// JavaScript entry points that configure the addon: thread count, GEMM choice, the quantized kernels' SIMD level,
// and a summary of them.
#include <string>

#include "../kernels/gemm.h"
#include "../kernels/quant.h"
#include "../pool.h"
#include "args.h"
#include "bindings.h"

#ifdef HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif

void runtime_set_threads(int n) {
  pool_set_threads(n);
#ifdef HAVE_OPENBLAS
  openblas_set_num_threads(pool_threads());
#endif
}

namespace {

napi_value string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

// The instruction set the HOT kernel clones run with on this CPU.
const char* kernel_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
  return "x86-64";
#else
  return "generic";
#endif
}

// info() -> { threads, gemm, gemmIsa, isa, quantIsa, blasCore }
napi_value info(napi_env env, napi_callback_info) {
  napi_value out, threads;
  napi_create_object(env, &out);
  napi_create_int32(env, pool_threads(), &threads);
  napi_set_named_property(env, out, "threads", threads);
  napi_set_named_property(env, out, "gemm", string(env, gemm_name()));
  napi_set_named_property(env, out, "gemmIsa", string(env, gemm_own_isa()));
  napi_set_named_property(env, out, "isa", string(env, kernel_isa()));
  napi_set_named_property(env, out, "quantIsa", string(env, quant_isa()));
#ifdef HAVE_OPENBLAS
  napi_set_named_property(env, out, "blasCore", string(env, openblas_get_corename()));
#endif
  return out;
}

// setThreads(n): n <= 0 means one per available CPU
napi_value set_threads(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setThreads");
  double n = a.number(0, "n");
  if (a.ok()) runtime_set_threads((int)n);
  return nullptr;
}

// setGemm('openblas' | 'own') -> the kernel now in use
napi_value set_gemm(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setGemm");
  std::string name = a.text(0, "name");
  if (!a.ok()) return nullptr;
  return string(env, gemm_select(name != "own"));
}

// setQuantIsa('avx512' | 'avx2' | 'generic') -> the SIMD level the quantized kernels now run with (at most the CPU's)
napi_value set_quant_isa_fn(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setQuantIsa");
  std::string name = a.text(0, "name");
  if (!a.ok()) return nullptr;
  return string(env, set_quant_isa(name.c_str()));
}

}  // namespace

const Binding runtime_bindings[] = {
    {"info", info}, {"setThreads", set_threads}, {"setGemm", set_gemm}, {"setQuantIsa", set_quant_isa_fn}, {nullptr, nullptr},
};

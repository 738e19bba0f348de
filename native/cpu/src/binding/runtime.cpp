// JavaScript entry points that configure the addon: thread count, GEMM choice, the quantized kernels' SIMD level,
// and a summary of them.
#include <string>

#include "../kernels/gemm.h"
#include "../kernels/matvec.h"
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

napi_value boolean(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

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

// info() -> { threads, gemm, gemmTable, gemmIsa, isa, matvecIsa, quantIsa, build, computeDtype, bf16Dot, blasCore,
// blasConfig }; build: when this addon was compiled (a measured GEMM choice is kept per build); bf16Dot: whether the
// CPU has AVX512_BF16 (computeDtype bf16 possible).
napi_value info(napi_env env, napi_callback_info) {
  napi_value out, threads;
  napi_create_object(env, &out);
  napi_create_int32(env, pool_threads(), &threads);
  napi_set_named_property(env, out, "threads", threads);
  napi_set_named_property(env, out, "gemm", string(env, gemm_name()));
  napi_set_named_property(env, out, "gemmTable", string(env, gemm_table()));
  napi_set_named_property(env, out, "build", string(env, __DATE__ " " __TIME__));
  napi_set_named_property(env, out, "computeDtype", string(env, gemm_bf16_compute() ? "bf16" : "f32"));
  napi_set_named_property(env, out, "bf16Dot", boolean(env, gemm_bf16_available()));
  napi_set_named_property(env, out, "gemmIsa", string(env, gemm_own_isa()));
  napi_set_named_property(env, out, "isa", string(env, kernel_isa()));
  napi_set_named_property(env, out, "matvecIsa", string(env, matvec_isa()));
  napi_set_named_property(env, out, "quantIsa", string(env, quant_isa()));
#ifdef HAVE_OPENBLAS
  napi_set_named_property(env, out, "blasCore", string(env, openblas_get_corename()));
  napi_set_named_property(env, out, "blasConfig", string(env, gemm_blas_config()));
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

// setGemm('openblas' | 'own'[, 'f32' | 'bf16' | 'f16', 'large' | 'skinny']) -> the kernel that entry (all
// entries without the last two) now uses
napi_value set_gemm(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setGemm");
  std::string name = a.text(0, "name");
  bool one = a.value(1) != nullptr;
  std::string dtype = one ? a.text(1, "dtype") : "", cls = one ? a.text(2, "shapeClass") : "";
  if (!a.ok()) return nullptr;
  if (name != "own" && name != "openblas") a.fail("name must be 'own' or 'openblas', not '%s'", name.c_str());
  int dt = dtype == "f32" ? F32 : dtype == "bf16" ? BF16 : dtype == "f16" ? F16 : -1;
  if (one && dt < 0) a.fail("dtype must be 'f32', 'bf16' or 'f16', not '%s'", dtype.c_str());
  if (one && cls != "large" && cls != "skinny") a.fail("shapeClass must be 'large' or 'skinny', not '%s'", cls.c_str());
  if (!a.ok()) return nullptr;
  return string(env, gemm_select(name == "openblas", dt, cls == "skinny" ? G_SKINNY : G_LARGE));
}

// setQuantIsa('avx512' | 'avx2' | 'generic') -> the SIMD level the quantized kernels now run with (at most the CPU's)
napi_value set_quant_isa_fn(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setQuantIsa");
  std::string name = a.text(0, "name");
  if (!a.ok()) return nullptr;
  return string(env, set_quant_isa(name.c_str()));
}

// setComputeDtype('f32' | 'bf16') -> the dtype GEMMs with bf16 weights now multiply in; bf16 needs AVX512_BF16
napi_value set_compute_dtype(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setComputeDtype");
  std::string name = a.text(0, "dtype");
  if (a.ok() && name != "f32" && name != "bf16") a.fail("dtype must be 'f32' or 'bf16', not '%s'", name.c_str());
  if (a.ok() && name == "bf16" && !gemm_bf16_available()) a.fail("bf16 compute needs a CPU with AVX512_BF16 (AMX CPUs have it); this one has none");
  if (!a.ok()) return nullptr;
  return string(env, gemm_set_bf16_compute(name == "bf16") ? "bf16" : "f32");
}

// setMatvecIsa('avx512' | 'avx2' | 'generic') -> the SIMD level the dense matvec now runs with (at most the CPU's)
napi_value set_matvec_isa_fn(napi_env env, napi_callback_info cb) {
  Args a(env, cb, "setMatvecIsa");
  std::string name = a.text(0, "name");
  if (!a.ok()) return nullptr;
  return string(env, set_matvec_isa(name.c_str()));
}

}  // namespace

const Binding runtime_bindings[] = {
    {"info", info}, {"setThreads", set_threads}, {"setGemm", set_gemm}, {"setQuantIsa", set_quant_isa_fn},
    {"setMatvecIsa", set_matvec_isa_fn}, {"setComputeDtype", set_compute_dtype}, {nullptr, nullptr},
};

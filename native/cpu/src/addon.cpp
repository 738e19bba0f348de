// The N-API module: installs every binding table on the exports and starts the thread pool (ALPACA_CPU_THREADS,
// else one per CPU this process may run on); ALPACA_CPU_GEMM=own|openblas overrides kernels/gemm.cpp's pick.
#include <node_api.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "binding/bindings.h"
#include "kernels/gemm.h"
#include "pool.h"

void runtime_set_threads(int n);

// Worker threads must be joined before exit: glibc blocks destroying a condition variable with waiters.
static void stop(void*) { pool_stop(); }

static napi_value init(napi_env env, napi_value exports) {
  napi_add_env_cleanup_hook(env, stop, nullptr);
  const char* threads = getenv("ALPACA_CPU_THREADS");
  runtime_set_threads(threads ? atoi(threads) : 0);
  const char* gemm = getenv("ALPACA_CPU_GEMM");
  if (gemm && *gemm) gemm_select(strcmp(gemm, "own") != 0);
  for (const Binding* table : {memory_bindings, elementwise_bindings, layer_bindings, loss_optim_bindings, runtime_bindings, quantize_bindings}) {
    for (const Binding* b = table; b->name; b++) {
      napi_value fn;
      napi_create_function(env, b->name, NAPI_AUTO_LENGTH, b->fn, nullptr, &fn);
      napi_set_named_property(env, exports, b->name, fn);
    }
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

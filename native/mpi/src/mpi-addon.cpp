// The N-API face of MPI for data-parallel training: init, rank/size (world and this node), in-place sum
// all-reduce of float arrays, broadcast of bytes, barrier, abort. No training logic lives here.
#include <dlfcn.h>
#include <mpi.h>
#include <node_api.h>

#include <string>

static int world_rank = 0, world_size = 1, local_rank = 0, local_size = 1;

static napi_value fail(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

static bool check(napi_env env, int rc, const char* what) {
  if (rc == MPI_SUCCESS) return true;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(env, std::string(what) + " failed: " + std::string(text, len));
  return false;
}

static void set_int(napi_env env, napi_value obj, const char* key, int v) {
  napi_value n;
  napi_create_int32(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

// init(): { rank, size, localRank, localSize }. Idempotent.
static napi_value init(napi_env env, napi_callback_info) {
  int started = 0;
  MPI_Initialized(&started);
  if (!started) {
    // Open MPI's plugins resolve libmpi's symbols globally; Node loads addons with RTLD_LOCAL.
    dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    if (!check(env, MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread")) return nullptr;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
  }
  napi_value out;
  napi_create_object(env, &out);
  set_int(env, out, "rank", world_rank);
  set_int(env, out, "size", world_size);
  set_int(env, out, "localRank", local_rank);
  set_int(env, out, "localSize", local_size);
  return out;
}

static bool typed_arg(napi_env env, napi_callback_info info, size_t want, napi_value* argv, void** data, size_t* length,
                      napi_typedarray_type* type) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  bool is_typed = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    fail(env, "expected a typed array");
    return false;
  }
  napi_get_typedarray_info(env, argv[0], type, length, data, nullptr, nullptr);
  return true;
}

// allreduceSum(buf: Float32Array | Float64Array): every rank's buf becomes the elementwise sum over ranks.
static napi_value allreduce_sum(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void* data;
  size_t n;
  napi_typedarray_type type;
  if (!typed_arg(env, info, 1, argv, &data, &n, &type)) return nullptr;
  MPI_Datatype dt;
  if (type == napi_float32_array) dt = MPI_FLOAT;
  else if (type == napi_float64_array) dt = MPI_DOUBLE;
  else return fail(env, "allreduceSum takes a Float32Array or a Float64Array");
  // MPI counts are int: reduce in pieces of at most 2^30 elements.
  const size_t piece = size_t(1) << 30, elem = type == napi_float32_array ? 4 : 8;
  for (size_t off = 0; off < n; off += piece) {
    int count = int(n - off < piece ? n - off : piece);
    if (!check(env, MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + off * elem, count, dt, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce")) return nullptr;
  }
  return nullptr;
}

// broadcast(buf: Uint8Array, root): root's bytes copied into every rank's buf (same length on all ranks).
static napi_value broadcast(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void* data;
  size_t n;
  napi_typedarray_type type;
  if (!typed_arg(env, info, 2, argv, &data, &n, &type)) return nullptr;
  if (type != napi_uint8_array) return fail(env, "broadcast takes a Uint8Array");
  int32_t root = 0;
  napi_get_value_int32(env, argv[1], &root);
  check(env, MPI_Bcast(data, int(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  return nullptr;
}

static napi_value barrier(napi_env env, napi_callback_info) {
  check(env, MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return nullptr;
}

// abort(code): ends every rank of the job (mpirun reports which rank called it).
static napi_value abort_all(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t code = 1;
  if (argc > 0) napi_get_value_int32(env, argv[0], &code);
  MPI_Abort(MPI_COMM_WORLD, code);
  return nullptr;
}

static napi_value finalize(napi_env env, napi_callback_info) {
  int started = 0, done = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&done);
  if (started && !done) check(env, MPI_Finalize(), "MPI_Finalize");
  return nullptr;
}

static napi_value module_init(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback fn; } fns[] = {
    {"init", init}, {"allreduceSum", allreduce_sum}, {"broadcast", broadcast},
    {"barrier", barrier}, {"abort", abort_all}, {"finalize", finalize},
  };
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)

// Embedding, RMSNorm, rotary embedding, SwiGLU and the column sums behind weight and bias gradients.
// RMSNorm works one block per row; everything else is a flat grid-stride loop.
#include "device.cuh"
#include "ops.cuh"

__global__ void k_embedding_forward(float* out, const int32_t* ids, const void* table, int dtype, long V, long N, long C, int* err) {
  GRID_STRIDE(i, (size_t)N * C) {
    long n = (long)(i / C), c = (long)(i % C);
    int id = ids[n];
    if (id < 0 || id >= V) {
      if (c == 0) raise_error(err, ERR_TOKEN_ID, n, id);
      out[i] = 0.0f;
    } else {
      out[i] = load_f(table, dtype, (size_t)id * C + c);
    }
  }
}

__global__ void k_embedding_backward(float* dtable, const float* dout, const int32_t* ids, long V, long N, long C, int* err) {
  GRID_STRIDE(i, (size_t)N * C) {
    long n = (long)(i / C), c = (long)(i % C);
    int id = ids[n];
    if (id < 0 || id >= V) {
      if (c == 0) raise_error(err, ERR_TOKEN_ID, n, id);
    } else {
      atomicAdd(&dtable[(size_t)id * C + c], dout[i]);
    }
  }
}

// One block per row: rstd = 1 / sqrt(mean(x^2) + eps), out = x * rstd * w.
__global__ void k_rmsnorm_forward(float* out, float* rstd, const float* inp, const void* w, int w_dtype, long C, float eps) {
  size_t row = (size_t)blockIdx.x * C;
  float ss = 0.0f;
  for (long c = threadIdx.x; c < C; c += blockDim.x) ss += inp[row + c] * inp[row + c];
  ss = block_sum(ss);
  float rs = 1.0f / sqrtf(ss / (float)C + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = rs;
  for (long c = threadIdx.x; c < C; c += blockDim.x) out[row + c] = inp[row + c] * rs * load_f(w, w_dtype, c);
}

// dinp = rstd * w * dout - rstd^3 / C * x * sum(w * dout * x), one block per row.
__global__ void k_rmsnorm_backward(float* dinp, const float* dout, const float* inp, const void* w, int w_dtype, const float* rstd, long C) {
  size_t row = (size_t)blockIdx.x * C;
  float dot = 0.0f;
  for (long c = threadIdx.x; c < C; c += blockDim.x) dot += load_f(w, w_dtype, c) * dout[row + c] * inp[row + c];
  dot = block_sum(dot);
  float rs = rstd[blockIdx.x];
  float k = rs * rs * rs * dot / (float)C;
  for (long c = threadIdx.x; c < C; c += blockDim.x) dinp[row + c] = rs * load_f(w, w_dtype, c) * dout[row + c] - k * inp[row + c];
}

// x (B, T, H, HD) in place, rotate-half: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin); inverse negates sin.
__global__ void k_rope(float* x, const float* cos, const float* sin, long T, long H, long HD, float sign, size_t n) {
  long half = HD / 2;
  GRID_STRIDE(idx, n) {
    long i = (long)(idx % half);
    size_t rest = idx / half;
    long h = (long)(rest % H);
    rest /= H;
    long t = (long)(rest % T);
    size_t b = rest / T;
    size_t base = ((b * T + t) * H + h) * HD;
    float c = cos[t * half + i], s = sign * sin[t * half + i];
    float x1 = x[base + i], x2 = x[base + i + half];
    x[base + i] = x1 * c - x2 * s;
    x[base + i + half] = x2 * c + x1 * s;
  }
}

__global__ void k_swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  GRID_STRIDE(i, n) {
    float x = gate[i];
    out[i] = x / (1.0f + expf(-x)) * up[i];
  }
}

__global__ void k_swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n) {
  GRID_STRIDE(i, n) {
    float x = gate[i], dy = dout[i], u = up[i];
    float sig = 1.0f / (1.0f + expf(-x));
    dup[i] = dy * x * sig;
    dgate[i] = dy * u * sig * (1.0f + x * (1.0f - sig));
  }
}

constexpr int kColRows = 128;  // rows one block of k_column_sums reduces

// Block (32, 8) sums kColRows rows of 32 columns, then adds its partial sums (times cs[c] when given) to dst
// with atomics.
__global__ void k_column_sums(float* dst, const float* a, const float* b, const float* r, const float* cs, long N, long C) {
  __shared__ float part[8][33];
  long c = blockIdx.x * 32L + threadIdx.x;
  long n0 = blockIdx.y * (long)kColRows, n1 = min(N, n0 + kColRows);
  float acc = 0.0f;
  if (c < C) {
    for (long n = n0 + threadIdx.y; n < n1; n += 8) {
      float v = a[n * C + c];
      if (b) v *= b[n * C + c];
      if (r) v *= r[n];
      acc += v;
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float sum = 0.0f;
    for (int y = 0; y < 8; y++) sum += part[y][threadIdx.x];
    atomicAdd(&dst[c], cs ? cs[c] * sum : sum);
  }
}

__global__ void k_scale_columns(float* out, const float* inp, const float* scale, const void* bias, int bias_dtype, long C,
                                size_t n) {
  GRID_STRIDE(i, n) {
    long c = (long)(i % (size_t)C);
    out[i] = inp[i] * scale[c] + (bias ? load_f(bias, bias_dtype, c) : 0.0f);
  }
}

static unsigned row_threads(long C) { return C >= 1024 ? 256 : C >= 256 ? 128 : 64; }

void op_embedding_forward(float* out, const int32_t* ids, const void* table, int table_dtype, long V, long N, long C) {
  if (N == 0 || C == 0) return;
  k_embedding_forward<<<grid_for((size_t)N * C), 256, 0, stream()>>>(out, ids, table, table_dtype, V, N, C, error_word());
  LAUNCH_CHECK("embeddingForward");
}

void op_embedding_backward(float* dtable, const float* dout, const int32_t* ids, long V, long N, long C) {
  if (N == 0 || C == 0) return;
  k_embedding_backward<<<grid_for((size_t)N * C), 256, 0, stream()>>>(dtable, dout, ids, V, N, C, error_word());
  LAUNCH_CHECK("embeddingBackward");
}

void op_rmsnorm_forward(float* out, float* rstd, const float* inp, const void* w, int w_dtype, long N, long C, float eps) {
  if (N == 0) return;
  k_rmsnorm_forward<<<(unsigned)N, row_threads(C), 0, stream()>>>(out, rstd, inp, w, w_dtype, C, eps);
  LAUNCH_CHECK("rmsnormForward");
}

void op_rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const void* w, int w_dtype,
                         const float* rstd, long N, long C) {
  if (N == 0) return;
  if (dweight) op_column_sums(dweight, dout, inp, rstd, nullptr, N, C);  // first: dinp may alias dout
  k_rmsnorm_backward<<<(unsigned)N, row_threads(C), 0, stream()>>>(dinp, dout, inp, w, w_dtype, rstd, C);
  LAUNCH_CHECK("rmsnormBackward");
}

void op_rope(float* x, const float* cos, const float* sin, long B, long T, long H, long HD, bool inverse) {
  size_t n = (size_t)B * T * H * (HD / 2);
  if (n == 0) return;
  k_rope<<<grid_for(n), 256, 0, stream()>>>(x, cos, sin, T, H, HD, inverse ? -1.0f : 1.0f, n);
  LAUNCH_CHECK("rope");
}

void op_swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  if (n == 0) return;
  k_swiglu_forward<<<grid_for(n), 256, 0, stream()>>>(out, gate, up, n);
  LAUNCH_CHECK("swigluForward");
}

void op_swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n) {
  if (n == 0) return;
  k_swiglu_backward<<<grid_for(n), 256, 0, stream()>>>(dgate, dup, dout, gate, up, n);
  LAUNCH_CHECK("swigluBackward");
}

void op_column_sums(float* dst, const float* a, const float* b, const float* r, const float* cs, long N, long C) {
  if (N == 0 || C == 0) return;
  dim3 grid((unsigned)((C + 31) / 32), (unsigned)((N + kColRows - 1) / kColRows));
  k_column_sums<<<grid, dim3(32, 8), 0, stream()>>>(dst, a, b, r, cs, N, C);
  LAUNCH_CHECK("column sums");
}

void op_scale_columns(float* out, const float* inp, const float* scale, const void* bias, int bias_dtype, long N, long C) {
  size_t n = (size_t)N * C;
  if (n == 0) return;
  k_scale_columns<<<grid_for(n), 256, 0, stream()>>>(out, inp, scale, bias, bias_dtype, C, n);
  LAUNCH_CHECK("scaleColumns");
}

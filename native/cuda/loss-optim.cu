// Fused softmax cross-entropy (one block per row, logits read twice, never stored as probabilities),
// the deterministic two-pass sum of squares, and AdamW in double precision as the js backend computes it.
#include "device.cuh"
#include "ops.cuh"

constexpr int kIgnoreIndex = -100;

// (max, sum of exp(x - max)) pairs, merged.
__device__ __forceinline__ void merge_lse(float& m, float& s, float m2, float s2) {
  float M = fmaxf(m, m2);
  if (M == -INFINITY) return;
  s = (m == -INFINITY ? 0.0f : s * expf(m - M)) + (m2 == -INFINITY ? 0.0f : s2 * expf(m2 - M));
  m = M;
}

__global__ void k_cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, long V, float grad_scale,
                                int* err) {
  __shared__ float ms[32], ss[32];
  size_t row = (size_t)blockIdx.x * V;
  int target = targets[blockIdx.x];
  bool counted = target != kIgnoreIndex;
  if (counted && (target < 0 || target >= V)) {
    if (threadIdx.x == 0) raise_error(err, ERR_LABEL, blockIdx.x, target);
    counted = false;
  }
  if (!counted) {
    if (threadIdx.x == 0) losses[blockIdx.x] = 0.0f;
    if (dlogits)
      for (long v = threadIdx.x; v < V; v += blockDim.x) dlogits[row + v] = 0.0f;
    return;
  }
  float x_target = logits[row + target];
  float m = -INFINITY, s = 0.0f;
  for (long v = threadIdx.x; v < V; v += blockDim.x) {
    float x = logits[row + v];
    if (x > m) {
      s = s * expf(m - x) + 1.0f;
      m = x;
    } else if (x != -INFINITY) {
      s += expf(x - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) merge_lse(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    ms[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  m = -INFINITY;
  s = 0.0f;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) merge_lse(m, s, ms[w], ss[w]);
  float logz = m + logf(s);
  if (threadIdx.x == 0) losses[blockIdx.x] = logz - x_target;
  if (!dlogits) return;
  for (long v = threadIdx.x; v < V; v += blockDim.x) {
    float g = expf(logits[row + v] - logz) * grad_scale;
    dlogits[row + v] = v == target ? g - grad_scale : g;
  }
}

__global__ void k_sum_squares_partial(double* partial, const float* x, size_t n) {
  double acc = 0.0;
  GRID_STRIDE(i, n) acc += (double)x[i] * (double)x[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void k_sum_squares_final(float* out, const double* partial, int blocks) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = (float)((double)out[0] + acc);
}

__global__ void k_adamw(float* param, const float* grad, float* m, float* v, size_t n, double lr, double beta1, double beta2,
                        double eps, double weight_decay, double step_size, double bc2_sqrt) {
  GRID_STRIDE(i, n) {
    double g = grad[i];
    float p = (float)((double)param[i] * (1.0 - lr * weight_decay));
    float mi = (float)(beta1 * (double)m[i] + (1.0 - beta1) * g);
    float vi = (float)(beta2 * (double)v[i] + (1.0 - beta2) * g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = (float)((double)p - step_size * (double)mi / (sqrt((double)vi) / bc2_sqrt + eps));
  }
}

void op_cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, long N, long V, float grad_scale) {
  if (N == 0) return;
  k_cross_entropy<<<(unsigned)N, V >= 4096 ? 512 : 128, 0, stream()>>>(losses, dlogits, logits, targets, V, grad_scale, error_word());
  LAUNCH_CHECK("crossEntropy");
}

void op_sum_squares(float* out, const float* x, size_t n) {
  unsigned blocks = grid_for(n);
  if (blocks > 1024) blocks = 1024;
  double* partial = (double*)scratch(SLOT_REDUCE, blocks * sizeof(double));
  k_sum_squares_partial<<<blocks, 256, 0, stream()>>>(partial, x, n);
  LAUNCH_CHECK("sumSquares");
  k_sum_squares_final<<<1, 256, 0, stream()>>>(out, partial, (int)blocks);
  LAUNCH_CHECK("sumSquares");
}

void op_adamw(float* param, const float* grad, float* m, float* v, size_t n, double lr, double beta1, double beta2, double eps,
              double weight_decay, double step_size, double bc2_sqrt) {
  if (n == 0) return;
  k_adamw<<<grid_for(n), 256, 0, stream()>>>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt);
  LAUNCH_CHECK("adamw");
}

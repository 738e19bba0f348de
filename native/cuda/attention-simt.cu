// Exact float32 attention: a block of kWarps warps per query row (forward, dq) or key row (dk, dv); lanes
// split the head dimension, warps split the other sequence axis and merge through shared memory. Serves
// the f32 precision, decoding (Tq = 1 against a KV cache) and the uniform rows of the tensor-core path.
#include "attention.cuh"
#include "device.cuh"

namespace {

constexpr int kWarps = 4;

// Dot product of this lane's DPL elements (d = lane + 32 t) with a row, summed over the warp.
template <int DPL>
__device__ __forceinline__ float warp_dot(const float (&reg)[DPL], const float* row, int HD, int lane) {
  float s = 0.0f;
  for (int t = 0; t < DPL; t++) {
    int d = lane + 32 * t;
    if (d < HD) s += reg[t] * row[d];
  }
  return warp_sum(s);
}

template <int DPL>
__device__ __forceinline__ float reg_dot(const float (&a)[DPL], const float (&b)[DPL]) {
  float s = 0.0f;
  for (int t = 0; t < DPL; t++) s += a[t] * b[t];
  return warp_sum(s);
}

template <int DPL>
__device__ __forceinline__ void load_row(float (&reg)[DPL], const float* row, int HD, int lane) {
  for (int t = 0; t < DPL; t++) {
    int d = lane + 32 * t;
    reg[t] = d < HD ? row[d] : 0.0f;
  }
}

template <int DPL>
__global__ void __launch_bounds__(kWarps * 32) k_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                                         const int32_t* mask, const int32_t* seg, int Tq, int Tk, int Tkv, int NH,
                                                         int NKV, int HD, float scale) {
  __shared__ float sm[kWarps], sl[kWarps], so[kWarps][32 * DPL];
  int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int kh = h / (NH / NKV);
  long pos = (long)Tk - Tq + i;
  size_t orow = (((size_t)b * Tq + i) * NH + h) * HD;
  float qr[DPL], acc[DPL] = {};
  load_row(qr, q + orow, HD, lane);
  float m = -INFINITY, l = 0.0f;
  for (long j = warp; j <= pos; j += kWarps) {
    if (mask && mask[(size_t)b * Tkv + j] == 0) continue;
    if (seg && seg[(size_t)b * Tkv + j] != seg[(size_t)b * Tkv + pos]) continue;
    size_t kv = (((size_t)b * Tkv + j) * NKV + kh) * HD;
    float s = warp_dot(qr, k + kv, HD, lane) * scale;
    if (s > m) {
      float c = expf(m - s);
      l *= c;
      for (int t = 0; t < DPL; t++) acc[t] *= c;
      m = s;
    }
    float p = expf(s - m);
    l += p;
    for (int t = 0; t < DPL; t++) {
      int d = lane + 32 * t;
      if (d < HD) acc[t] += p * v[kv + d];
    }
  }
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
  for (int t = 0; t < DPL; t++) so[warp][lane + 32 * t] = acc[t];
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < kWarps; w++) M = fmaxf(M, sm[w]);
  size_t lrow = ((size_t)b * NH + h) * Tq + i;
  if (M == -INFINITY) {  // no allowed key: uniform over all Tk keys
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      float s = 0.0f;
      for (long j = 0; j < Tk; j++) s += v[(((size_t)b * Tkv + j) * NKV + kh) * HD + d];
      out[orow + d] = s / (float)Tk;
    }
    if (threadIdx.x == 0) lse[lrow] = NAN;
    return;
  }
  float L = 0.0f;
  for (int w = 0; w < kWarps; w++) L += sl[w] * expf(sm[w] - M);
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kWarps; w++) o += so[w][d] * expf(sm[w] - M);
    out[orow + d] = o / L;
  }
  if (threadIdx.x == 0) lse[lrow] = M + logf(L);
}

__global__ void k_row_dot(float* D, const float* dout, const float* out, int T, int NH, int HD, size_t rows) {
  size_t r = blockIdx.x * 8ull + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (r >= rows) return;
  float s = 0.0f;
  for (int d = lane; d < HD; d += 32) s += dout[r * HD + d] * out[r * HD + d];
  s = warp_sum(s);
  size_t h = r % NH, bt = r / NH, t = bt % T, b = bt / T;
  if (lane == 0) D[(b * NH + h) * T + t] = s;
}

// dq for query row i of head h: sum over its keys of ds_ij k_j, ds = p (dp - D_i) scale.
template <int DPL>
__global__ void __launch_bounds__(kWarps * 32) k_dq(float* dq, const float* dout, const float* q, const float* k, const float* v,
                                                    const float* lse, const float* D, const int32_t* mask, const int32_t* seg, int T,
                                                    int NH, int NKV, int HD, float scale, bool uniform_only) {
  __shared__ float so[kWarps][32 * DPL];
  int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int kh = h / (NH / NKV);
  size_t li = ((size_t)b * NH + h) * T + i;
  float L = lse[li];
  bool uniform = isnan(L);
  if (uniform_only && !uniform) return;
  float Di = D[li];
  size_t row = (((size_t)b * T + i) * NH + h) * HD;
  float qr[DPL], dor[DPL], acc[DPL] = {};
  load_row(qr, q + row, HD, lane);
  load_row(dor, dout + row, HD, lane);
  long last = uniform ? T - 1 : i;
  for (long j = warp; j <= last; j += kWarps) {
    if (!uniform && mask && mask[(size_t)b * T + j] == 0) continue;
    if (!uniform && seg && seg[(size_t)b * T + j] != seg[(size_t)b * T + i]) continue;
    size_t kv = (((size_t)b * T + j) * NKV + kh) * HD;
    float dp = warp_dot(dor, v + kv, HD, lane);
    float p = uniform ? 1.0f / (float)T : expf(warp_dot(qr, k + kv, HD, lane) * scale - L);
    float ds = p * (dp - Di) * scale;
    for (int t = 0; t < DPL; t++) {
      int d = lane + 32 * t;
      if (d < HD) acc[t] += ds * k[kv + d];
    }
  }
  for (int t = 0; t < DPL; t++) so[warp][lane + 32 * t] = acc[t];
  __syncthreads();
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float s = 0.0f;
    for (int w = 0; w < kWarps; w++) s += so[w][d];
    dq[row + d] = s;
  }
}

// dk, dv for key row j of kv head kh, over every query head of its group. Rows with no allowed key form a
// prefix of each sequence (lse NaN) and see every key with p = 1/T; the others see key j when i >= j.
template <int DPL>
__global__ void __launch_bounds__(kWarps * 32) k_dkdv(float* dk, float* dv, const float* dout, const float* q, const float* k,
                                                      const float* v, const float* lse, const float* D, const int32_t* mask,
                                                      const int32_t* seg, int T, int NH, int NKV, int HD, float scale,
                                                      bool uniform_only) {
  __shared__ float sk[kWarps][32 * DPL], sv[kWarps][32 * DPL];
  int j = blockIdx.x, kh = blockIdx.y, b = blockIdx.z;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int group = NH / NKV;
  size_t kv = (((size_t)b * T + j) * NKV + kh) * HD;
  float kr[DPL], vr[DPL], dka[DPL] = {}, dva[DPL] = {};
  load_row(kr, k + kv, HD, lane);
  load_row(vr, v + kv, HD, lane);
  bool key_allowed = !mask || mask[(size_t)b * T + j] != 0;
  auto contribute = [&](int h, long i, float L, bool uniform) {
    size_t row = (((size_t)b * T + i) * NH + h) * HD;
    float qr[DPL], dor[DPL];
    load_row(qr, q + row, HD, lane);
    load_row(dor, dout + row, HD, lane);
    float dp = reg_dot(dor, vr);
    float p = uniform ? 1.0f / (float)T : expf(reg_dot(qr, kr) * scale - L);
    float ds = p * (dp - D[((size_t)b * NH + h) * T + i]) * scale;
    for (int t = 0; t < DPL; t++) {
      dva[t] += p * dor[t];
      dka[t] += ds * qr[t];
    }
  };
  for (int h = kh * group; h < (kh + 1) * group; h++) {
    const float* lrow = lse + ((size_t)b * NH + h) * T;
    for (long i = warp; i < T; i += kWarps) {
      float L = lrow[i];
      if (!isnan(L)) break;
      contribute(h, i, L, true);
    }
    if (uniform_only || !key_allowed) continue;
    for (long i = j + warp; i < T; i += kWarps) {
      if (seg && seg[(size_t)b * T + i] != seg[(size_t)b * T + j]) continue;
      float L = lrow[i];
      if (!isnan(L)) contribute(h, i, L, false);
    }
  }
  for (int t = 0; t < DPL; t++) {
    sk[warp][lane + 32 * t] = dka[t];
    sv[warp][lane + 32 * t] = dva[t];
  }
  __syncthreads();
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float a = 0.0f, c = 0.0f;
    for (int w = 0; w < kWarps; w++) {
      a += sk[w][d];
      c += sv[w][d];
    }
    if (uniform_only) {
      dk[kv + d] += a;
      dv[kv + d] += c;
    } else {
      dk[kv + d] = a;
      dv[kv + d] = c;
    }
  }
}

int dims_per_lane(long HD) {
  if (HD <= 32) return 1;
  if (HD <= 64) return 2;
  if (HD <= 128) return 4;
  if (HD <= 256) return 8;
  throw std::runtime_error("attention: head dim " + std::to_string(HD) + " is above 256");
}

float softmax_scale(long HD) { return (float)(1.0 / sqrt((double)HD)); }

}  // namespace

// Runs the launch statement with DPL, the lanes' share of the head dimension, as a constant.
#define ATTN_DISPATCH(HD, ...)                                \
  switch (dims_per_lane(HD)) {                                \
    case 1: { constexpr int DPL = 1; __VA_ARGS__; break; }    \
    case 2: { constexpr int DPL = 2; __VA_ARGS__; break; }    \
    case 4: { constexpr int DPL = 4; __VA_ARGS__; break; }    \
    default: { constexpr int DPL = 8; __VA_ARGS__; break; }   \
  }

void attn_forward_simt(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                       long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD) {
  dim3 grid((unsigned)Tq, (unsigned)NH, (unsigned)B);
  ATTN_DISPATCH(HD, k_forward<DPL><<<grid, kWarps * 32, 0, stream()>>>(out, lse, q, k, v, mask, seg, (int)Tq, (int)Tk, (int)Tkv, (int)NH,
                                                                        (int)NKV, (int)HD, softmax_scale(HD)));
  LAUNCH_CHECK("attentionForward");
}

void attn_row_dot(float* D, const float* dout, const float* out, long B, long T, long NH, long HD) {
  size_t rows = (size_t)B * T * NH;
  k_row_dot<<<(unsigned)((rows + 7) / 8), 256, 0, stream()>>>(D, dout, out, (int)T, (int)NH, (int)HD, rows);
  LAUNCH_CHECK("attentionBackward (row dot)");
}

void attn_backward_simt(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                        const float* lse, const float* D, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                        long HD, bool uniform_only) {
  float scale = softmax_scale(HD);
  dim3 qgrid((unsigned)T, (unsigned)NH, (unsigned)B), kgrid((unsigned)T, (unsigned)NKV, (unsigned)B);
  ATTN_DISPATCH(HD, k_dq<DPL><<<qgrid, kWarps * 32, 0, stream()>>>(dq, dout, q, k, v, lse, D, mask, seg, (int)T, (int)NH, (int)NKV,
                                                                    (int)HD, scale, uniform_only));
  LAUNCH_CHECK("attentionBackward (dq)");
  ATTN_DISPATCH(HD, k_dkdv<DPL><<<kgrid, kWarps * 32, 0, stream()>>>(dk, dv, dout, q, k, v, lse, D, mask, seg, (int)T, (int)NH, (int)NKV,
                                                                      (int)HD, scale, uniform_only));
  LAUNCH_CHECK("attentionBackward (dk, dv)");
}

// bf16 tensor-core attention (WMMA 16x16x16, float32 accumulation), flash-attention style: 64-query x
// 64-key tiles, online softmax, no T x T matrix in memory. f32 inputs are rounded to bf16 as tiles are
// staged in shared memory. Four warps per block, each owning 16 rows of the block's tile.
// Forward: one block per (query tile, head). Backward: dq per (query tile, head) and dk/dv per (key tile,
// kv head, looping over the group's heads), so neither needs atomics. Rows with no allowed key get p = 0
// here; the forward epilogue and the SIMT kernels give them the uniform rule.
#include <mma.h>

#include "attention.cuh"
#include "device.cuh"

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

namespace {

constexpr int kTile = 64;  // queries and keys per tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
constexpr int kLdS = kTile + 4;  // float rows of score tiles
constexpr int kLdP = kTile + 8;  // bf16 rows of probability tiles

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBt;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// Shared memory of the forward kernel, byte offsets (all multiples of 32, as WMMA needs).
template <int D>
struct FwdLayout {
  static constexpr int ldh = D + 8;  // bf16 rows of Q/K/V tiles
  static constexpr int ldo = D + 4;  // float rows of the output accumulator
  static constexpr size_t q = 0, k = q + kTile * ldh * 2, v = k + kTile * ldh * 2, s = v + kTile * ldh * 2;
  static constexpr size_t p = s + 4 * 16 * kLdS * 4, o = p + 4 * 16 * kLdP * 2, bytes = o + 4 * 16 * ldo * 4;
};

// Backward kernels: two bf16 tiles (Q, dO) and two (K, V); per warp two float score tiles (also the
// staging area of the outputs) and two bf16 tiles; lse and D of the 64 query rows.
template <int D>
struct BwdLayout {
  static constexpr int ldh = D + 8;
  static constexpr size_t q = 0, dO = q + kTile * ldh * 2, k = dO + kTile * ldh * 2, v = k + kTile * ldh * 2;
  static constexpr size_t s = v + kTile * ldh * 2, warp_s = 2 * 16 * kLdS * 4;
  static constexpr size_t p = s + 4 * warp_s, p2 = p + 4 * 16 * kLdP * 2, rows = p2 + 4 * 16 * kLdP * 2, bytes = rows + 2 * kTile * 4;
  static_assert(16 * (D + 4) * 4 <= warp_s, "output staging fits the warp's score tiles");
};

// Rows [0, valid) of a 64-row tile of f32 rows `stride` floats apart, rounded to bf16; the rest zero.
template <int D>
__device__ __forceinline__ void stage_rows(bf16* dst, const float* src, long stride, int valid) {
  constexpr int ldh = D + 8, chunks = D / 4;
  for (int idx = threadIdx.x; idx < kTile * chunks; idx += kThreads) {
    int r = idx / chunks, c = (idx % chunks) * 4;
    float4 x = r < valid ? *(const float4*)(src + r * stride + c) : make_float4(0.f, 0.f, 0.f, 0.f);
    __nv_bfloat162* d = (__nv_bfloat162*)(dst + r * ldh + c);
    d[0] = __floats2bfloat162_rn(x.x, x.y);
    d[1] = __floats2bfloat162_rn(x.z, x.w);
  }
}

// out (16 x 64 floats, ld kLdS) = A rows (16 x D, row-major bf16) . B^T where B is 64 rows of D (bf16).
template <int D>
__device__ __forceinline__ void rows_times_rows_t(float* out, const bf16* a, const bf16* b) {
  constexpr int ldh = D + 8;
  for (int nt = 0; nt < kTile / 16; nt++) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < D / 16; kk++) {
      FragA fa;
      FragBt fb;
      wmma::load_matrix_sync(fa, a + kk * 16, ldh);
      wmma::load_matrix_sync(fb, b + nt * 16 * ldh + kk * 16, ldh);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(out + nt * 16, acc, kLdS, wmma::mem_row_major);
  }
}

// acc[dt] += P (16 x 64 bf16, ld kLdP) . X (64 rows of D bf16), for each 16-wide column block dt of X.
template <int D>
__device__ __forceinline__ void probs_times_rows(FragC (&acc)[D / 16], const bf16* p, const bf16* x) {
  constexpr int ldh = D + 8;
  for (int kk = 0; kk < kTile / 16; kk++) {
    FragA fa;
    wmma::load_matrix_sync(fa, p + kk * 16, kLdP);
    for (int dt = 0; dt < D / 16; dt++) {
      FragB fb;
      wmma::load_matrix_sync(fb, x + kk * 16 * ldh + dt * 16, ldh);
      wmma::mma_sync(acc[dt], fa, fb, acc[dt]);
    }
  }
}

// Writes a warp's 16 x D accumulator rows to global rows `stride` floats apart (rows >= valid skipped),
// through the float staging area `stage` (ld D + 4).
template <int D>
__device__ __forceinline__ void write_rows(float* dst, long stride, int valid, FragC (&acc)[D / 16], float* stage, bool add) {
  for (int dt = 0; dt < D / 16; dt++) wmma::store_matrix_sync(stage + dt * 16, acc[dt], D + 4, wmma::mem_row_major);
  __syncwarp();
  int lane = threadIdx.x & 31;
  for (int idx = lane; idx < 16 * D; idx += 32) {
    int r = idx / D, d = idx % D;
    if (r >= valid) continue;
    float x = stage[r * (D + 4) + d];
    dst[r * stride + d] = add ? dst[r * stride + d] + x : x;
  }
  __syncwarp();
}

template <int D>
__global__ void __launch_bounds__(kThreads) k_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                                      const int32_t* mask, const int32_t* seg, int Tq, int Tk, int Tkv, int NH, int NKV,
                                                      float scale) {
  typedef FwdLayout<D> L;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *Qs = (bf16*)(smem + L::q), *Ks = (bf16*)(smem + L::k), *Vs = (bf16*)(smem + L::v);
  int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* Sw = (float*)(smem + L::s) + warp * 16 * kLdS;
  bf16* Pw = (bf16*)(smem + L::p) + warp * 16 * kLdP;
  float* Ow = (float*)(smem + L::o) + warp * 16 * L::ldo;
  long qstride = (long)NH * D, kstride = (long)NKV * D;

  stage_rows<D>(Qs, q + (((size_t)b * Tq + q0) * NH + h) * D, qstride, min(kTile, Tq - q0));
  for (int idx = lane; idx < 16 * L::ldo; idx += 32) Ow[idx] = 0.0f;
  __syncthreads();
  FragA qa[D / 16];
  for (int kk = 0; kk < D / 16; kk++) wmma::load_matrix_sync(qa[kk], Qs + warp * 16 * L::ldh + kk * 16, L::ldh);

  int r = lane >> 1, half = lane & 1;  // two lanes per row, 32 columns each
  int i = q0 + warp * 16 + r;
  long pos = (long)Tk - Tq + i;
  float m = -INFINITY, l = 0.0f;
  const float sl2 = scale * kLog2e;
  long last = (long)Tk - Tq + min(q0 + kTile, Tq) - 1;
  int tiles = (int)((min(last + 1, (long)Tk) + kTile - 1) / kTile);
  for (int kt = 0; kt < tiles; kt++) {
    int j0 = kt * kTile;
    size_t kv = (((size_t)b * Tkv + j0) * NKV + kh) * D;
    stage_rows<D>(Ks, k + kv, kstride, min(kTile, Tk - j0));
    stage_rows<D>(Vs, v + kv, kstride, min(kTile, Tk - j0));
    __syncthreads();
    for (int nt = 0; nt < kTile / 16; nt++) {
      FragC acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < D / 16; kk++) {
        FragBt fb;
        wmma::load_matrix_sync(fb, Ks + nt * 16 * L::ldh + kk * 16, L::ldh);
        wmma::mma_sync(acc, qa[kk], fb, acc);
      }
      wmma::store_matrix_sync(Sw + nt * 16, acc, kLdS, wmma::mem_row_major);
    }
    __syncwarp();
    float* srow = Sw + r * kLdS + half * 32;
    float tmax = -INFINITY;
    for (int c = 0; c < 32; c++) {
      long j = j0 + half * 32 + c;
      bool ok = i < Tq && j <= pos && j < Tk && (!mask || mask[(size_t)b * Tkv + j] != 0) &&
                (!seg || seg[(size_t)b * Tkv + j] == seg[(size_t)b * Tkv + pos]);
      float s = ok ? srow[c] * sl2 : -INFINITY;
      srow[c] = s;
      tmax = fmaxf(tmax, s);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    float mnew = fmaxf(m, tmax);
    float alpha = mnew == -INFINITY ? 1.0f : exp2f(m - mnew);
    float psum = 0.0f;
    bf16* prow = Pw + r * kLdP + half * 32;
    for (int c = 0; c < 32; c++) {
      float p = srow[c] == -INFINITY ? 0.0f : exp2f(srow[c] - mnew);
      psum += p;
      prow[c] = __float2bfloat16(p);
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * alpha + psum;
    m = mnew;
    float* orow = Ow + r * L::ldo + half * (D / 2);
    for (int d = 0; d < D / 2; d++) orow[d] *= alpha;
    __syncwarp();
    for (int dt = 0; dt < D / 16; dt++) {
      FragC acc;
      wmma::load_matrix_sync(acc, Ow + dt * 16, L::ldo, wmma::mem_row_major);
      for (int kk = 0; kk < kTile / 16; kk++) {
        FragA fa;
        FragB fb;
        wmma::load_matrix_sync(fa, Pw + kk * 16, kLdP);
        wmma::load_matrix_sync(fb, Vs + kk * 16 * L::ldh + dt * 16, L::ldh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Ow + dt * 16, acc, L::ldo, wmma::mem_row_major);
    }
    __syncthreads();
  }
  __syncwarp();
  if (i >= Tq) return;
  float* og = out + (((size_t)b * Tq + i) * NH + h) * D;
  size_t lrow = ((size_t)b * NH + h) * Tq + i;
  if (l == 0.0f) {  // no allowed key: uniform over all Tk keys
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); d++) {
      float s = 0.0f;
      for (long j = 0; j < Tk; j++) s += v[(((size_t)b * Tkv + j) * NKV + kh) * D + d];
      og[d] = s / (float)Tk;
    }
    if (half == 0) lse[lrow] = NAN;
    return;
  }
  const float* orow = Ow + r * L::ldo;
  float inv = 1.0f / l;
  for (int d = half * (D / 2); d < (half + 1) * (D / 2); d++) og[d] = orow[d] * inv;
  if (half == 0) lse[lrow] = (m + log2f(l)) * kLn2;
}

// Stages lse and D of query rows q0.. (NaN lse beyond T, so those rows get p = 0).
__device__ __forceinline__ void stage_row_stats(float* lse_s, float* d_s, const float* lse, const float* D, size_t base, int valid) {
  for (int t = threadIdx.x; t < kTile; t += kThreads) {
    lse_s[t] = t < valid ? lse[base + t] : NAN;
    d_s[t] = t < valid ? D[base + t] : 0.0f;
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) k_dq(float* dq, const float* dout, const float* q, const float* k, const float* v,
                                                 const float* lse, const float* Dv, const int32_t* mask, const int32_t* seg, int T,
                                                 int NH, int NKV, float scale) {
  typedef BwdLayout<D> L;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *Qs = (bf16*)(smem + L::q), *dOs = (bf16*)(smem + L::dO), *Ks = (bf16*)(smem + L::k), *Vs = (bf16*)(smem + L::v);
  float *lse_s = (float*)(smem + L::rows), *d_s = lse_s + kTile;
  int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* Sw = (float*)(smem + L::s + warp * L::warp_s);
  float* dPw = Sw + 16 * kLdS;
  bf16* dSw = (bf16*)(smem + L::p) + warp * 16 * kLdP;
  long qstride = (long)NH * D, kstride = (long)NKV * D;
  int valid = min(kTile, T - q0);
  size_t qrow = (((size_t)b * T + q0) * NH + h) * D;
  stage_rows<D>(Qs, q + qrow, qstride, valid);
  stage_rows<D>(dOs, dout + qrow, qstride, valid);
  stage_row_stats(lse_s, d_s, lse, Dv, ((size_t)b * NH + h) * T + q0, valid);
  FragC acc[D / 16];
  for (int dt = 0; dt < D / 16; dt++) wmma::fill_fragment(acc[dt], 0.0f);

  int r = lane >> 1, half = lane & 1;
  int i = q0 + warp * 16 + r;
  const float sl2 = scale * kLog2e;
  int tiles = (q0 + valid - 1) / kTile + 1;
  for (int kt = 0; kt < tiles; kt++) {
    int j0 = kt * kTile;
    size_t kv = (((size_t)b * T + j0) * NKV + kh) * D;
    __syncthreads();
    stage_rows<D>(Ks, k + kv, kstride, min(kTile, T - j0));
    stage_rows<D>(Vs, v + kv, kstride, min(kTile, T - j0));
    __syncthreads();
    rows_times_rows_t<D>(Sw, Qs + warp * 16 * L::ldh, Ks);
    rows_times_rows_t<D>(dPw, dOs + warp * 16 * L::ldh, Vs);
    __syncwarp();
    float L2 = lse_s[warp * 16 + r] * kLog2e, Di = d_s[warp * 16 + r];
    bool row_ok = i < T && !isnan(L2);
    for (int c = half * 32; c < half * 32 + 32; c++) {
      int j = j0 + c;
      bool ok = row_ok && j <= i && (!mask || mask[(size_t)b * T + j] != 0) && (!seg || seg[(size_t)b * T + j] == seg[(size_t)b * T + i]);
      float p = ok ? exp2f(Sw[r * kLdS + c] * sl2 - L2) : 0.0f;
      dSw[r * kLdP + c] = __float2bfloat16(p * (dPw[r * kLdS + c] - Di) * scale);
    }
    __syncwarp();
    probs_times_rows<D>(acc, dSw, Ks);
  }
  write_rows<D>(dq + (((size_t)b * T + q0 + warp * 16) * NH + h) * D, qstride, valid - warp * 16, acc, Sw, false);
}

template <int D>
__global__ void __launch_bounds__(kThreads) k_dkdv(float* dk, float* dv, const float* dout, const float* q, const float* k,
                                                   const float* v, const float* lse, const float* Dv, const int32_t* mask,
                                                   const int32_t* seg, int T, int NH, int NKV, float scale) {
  typedef BwdLayout<D> L;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *Qs = (bf16*)(smem + L::q), *dOs = (bf16*)(smem + L::dO), *Ks = (bf16*)(smem + L::k), *Vs = (bf16*)(smem + L::v);
  float *lse_s = (float*)(smem + L::rows), *d_s = lse_s + kTile;
  int j0 = blockIdx.x * kTile, kh = blockIdx.y, b = blockIdx.z, group = NH / NKV;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* Sw = (float*)(smem + L::s + warp * L::warp_s);
  float* dPw = Sw + 16 * kLdS;
  bf16* Pw = (bf16*)(smem + L::p) + warp * 16 * kLdP;
  bf16* dSw = (bf16*)(smem + L::p2) + warp * 16 * kLdP;
  long qstride = (long)NH * D, kstride = (long)NKV * D;
  int keys = min(kTile, T - j0);
  size_t kv = (((size_t)b * T + j0) * NKV + kh) * D;
  stage_rows<D>(Ks, k + kv, kstride, keys);
  stage_rows<D>(Vs, v + kv, kstride, keys);
  FragC dka[D / 16], dva[D / 16];
  for (int dt = 0; dt < D / 16; dt++) {
    wmma::fill_fragment(dka[dt], 0.0f);
    wmma::fill_fragment(dva[dt], 0.0f);
  }
  int r = lane >> 1, half = lane & 1;
  int j = j0 + warp * 16 + r;  // this lane pair's key
  bool key_ok = j < T && (!mask || mask[(size_t)b * T + j] != 0);
  const float sl2 = scale * kLog2e;
  for (int h = kh * group; h < (kh + 1) * group; h++) {
    for (int q0 = j0; q0 < T; q0 += kTile) {
      int valid = min(kTile, T - q0);
      size_t qrow = (((size_t)b * T + q0) * NH + h) * D;
      __syncthreads();
      stage_rows<D>(Qs, q + qrow, qstride, valid);
      stage_rows<D>(dOs, dout + qrow, qstride, valid);
      stage_row_stats(lse_s, d_s, lse, Dv, ((size_t)b * NH + h) * T + q0, valid);
      __syncthreads();
      rows_times_rows_t<D>(Sw, Ks + warp * 16 * L::ldh, Qs);   // S^T: keys x queries
      rows_times_rows_t<D>(dPw, Vs + warp * 16 * L::ldh, dOs);  // dP^T
      __syncwarp();
      for (int c = half * 32; c < half * 32 + 32; c++) {
        int i = q0 + c;
        float L2 = lse_s[c] * kLog2e;
        bool ok = key_ok && i >= j && !isnan(L2) &&  // rows beyond T have NaN lse
                  (!seg || seg[(size_t)b * T + i] == seg[(size_t)b * T + j]);
        float p = ok ? exp2f(Sw[r * kLdS + c] * sl2 - L2) : 0.0f;
        Pw[r * kLdP + c] = __float2bfloat16(p);
        dSw[r * kLdP + c] = __float2bfloat16(p * (dPw[r * kLdS + c] - d_s[c]) * scale);
      }
      __syncwarp();
      probs_times_rows<D>(dva, Pw, dOs);
      probs_times_rows<D>(dka, dSw, Qs);
    }
  }
  size_t row = (((size_t)b * T + j0 + warp * 16) * NKV + kh) * D;
  write_rows<D>(dk + row, kstride, keys - warp * 16, dka, Sw, false);
  write_rows<D>(dv + row, kstride, keys - warp * 16, dva, Sw, false);
}

float softmax_scale(long HD) { return (float)(1.0 / sqrt((double)HD)); }

// Opts a kernel into more than 48 KiB of dynamic shared memory, once.
template <typename K>
void allow_smem(K kernel, size_t bytes, bool& done) {
  if (done) return;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  done = true;
}

template <int D>
void forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg, long B,
             long Tq, long Tk, long Tkv, long NH, long NKV) {
  static bool ready = false;
  allow_smem(k_forward<D>, FwdLayout<D>::bytes, ready);
  dim3 grid((unsigned)((Tq + kTile - 1) / kTile), (unsigned)NH, (unsigned)B);
  k_forward<D><<<grid, kThreads, FwdLayout<D>::bytes, stream()>>>(out, lse, q, k, v, mask, seg, (int)Tq, (int)Tk, (int)Tkv, (int)NH,
                                                                  (int)NKV, softmax_scale(D));
  LAUNCH_CHECK("attentionForward (tensor cores)");
}

template <int D>
void backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse,
              const float* Dv, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV) {
  static bool ready_q = false, ready_kv = false;
  allow_smem(k_dq<D>, BwdLayout<D>::bytes, ready_q);
  allow_smem(k_dkdv<D>, BwdLayout<D>::bytes, ready_kv);
  unsigned tiles = (unsigned)((T + kTile - 1) / kTile);
  k_dq<D><<<dim3(tiles, (unsigned)NH, (unsigned)B), kThreads, BwdLayout<D>::bytes, stream()>>>(dq, dout, q, k, v, lse, Dv, mask, seg, (int)T,
                                                                                             (int)NH, (int)NKV, softmax_scale(D));
  LAUNCH_CHECK("attentionBackward (tensor cores, dq)");
  k_dkdv<D><<<dim3(tiles, (unsigned)NKV, (unsigned)B), kThreads, BwdLayout<D>::bytes, stream()>>>(
      dk, dv, dout, q, k, v, lse, Dv, mask, seg, (int)T, (int)NH, (int)NKV, softmax_scale(D));
  LAUNCH_CHECK("attentionBackward (tensor cores, dk dv)");
}

}  // namespace

bool attn_tc_supports(long HD) { return HD == 32 || HD == 64 || HD == 128; }

void attn_forward_tc(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask, const int32_t* seg,
                     long B, long Tq, long Tk, long Tkv, long NH, long NKV, long HD) {
  if (HD == 32) forward<32>(out, lse, q, k, v, mask, seg, B, Tq, Tk, Tkv, NH, NKV);
  else if (HD == 64) forward<64>(out, lse, q, k, v, mask, seg, B, Tq, Tk, Tkv, NH, NKV);
  else forward<128>(out, lse, q, k, v, mask, seg, B, Tq, Tk, Tkv, NH, NKV);
}

void attn_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                      const float* lse, const float* D, const int32_t* mask, const int32_t* seg, long B, long T, long NH, long NKV,
                      long HD) {
  if (HD == 32) backward<32>(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV);
  else if (HD == 64) backward<64>(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV);
  else backward<128>(dq, dk, dv, dout, q, k, v, lse, D, mask, seg, B, T, NH, NKV);
}

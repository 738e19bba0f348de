// Fused softmax cross-entropy (loss and logit gradient in one pass over each row), greedy decoding's argmax per
// row, the sum of squares behind gradient clipping, and torch's AdamW update. Double precision where torch's
// results hinge on it.
#include <cmath>
#include <cstring>
#include <vector>

#include "../pool.h"
#include "kernels.h"
#include "simd.h"

namespace {

const int32_t kIgnore = -100;

struct Xent {
  float* losses;
  float* dlogits;
  const float* logits;
  const int32_t* targets;
  long V;
  float grad_scale;
};

HOT void xent_task(void* c, long b, long e, int) {
  const Xent& k = *(const Xent*)c;
  const long V = k.V;
  for (long n = b; n < e; n++) {
    const float* x = k.logits + n * V;
    float* g = k.dlogits ? k.dlogits + n * V : nullptr;
    int32_t t = k.targets[n];
    if (t == kIgnore) {
      k.losses[n] = 0;
      if (g) memset(g, 0, V * sizeof(float));
      continue;
    }
    float mx = -INFINITY;
    for (long v = 0; v < V; v++) mx = fmaxf_(mx, x[v]);
    float acc[16] = {0};
    long v = 0;
    for (; v + 16 <= V; v += 16)
      for (int l = 0; l < 16; l++) acc[l] += fexp(x[v + l] - mx);
    double sum = 0;
    for (; v < V; v++) sum += fexp(x[v] - mx);
    for (int l = 0; l < 16; l++) sum += acc[l];
    double logz_d = (double)mx + std::log(sum);
    float logz = (float)logz_d;
    k.losses[n] = (float)(logz_d - x[t]);
    if (g) {
      float xt = x[t];
      for (long i = 0; i < V; i++) g[i] = fexp(x[i] - logz) * k.grad_scale;
      g[t] = fexp(xt - logz) * k.grad_scale - k.grad_scale;
    }
  }
}

struct SumSq {
  const float* x;
  double* partial;  // one per task
  long chunk;
};

HOT void sumsq_task(void* c, long b, long e, int) {
  const SumSq& k = *(const SumSq*)c;
  for (long t = b; t < e; t++) {
    long lo = t * k.chunk;
    k.partial[t] = dot_d(k.x + lo, k.x + lo, k.chunk);
  }
}

struct Adam {
  float *p, *m, *v;
  const float* g;
  double lr, beta1, beta2, eps, wd, step_size, bc2_sqrt;
};

// torch.optim.AdamW: decoupled decay, then Adam with bias correction; moments stored as float32.
HOT void adamw_task(void* c, long b, long e, int) {
  const Adam& k = *(const Adam*)c;
  for (long i = b; i < e; i++) {
    double g = k.g[i];
    float p = (float)(k.p[i] * (1.0 - k.lr * k.wd));
    float m = (float)(k.beta1 * k.m[i] + (1.0 - k.beta1) * g);
    float v = (float)(k.beta2 * k.v[i] + (1.0 - k.beta2) * g * g);
    k.m[i] = m;
    k.v[i] = v;
    k.p[i] = (float)(p - k.step_size * m / (std::sqrt((double)v) / k.bc2_sqrt + k.eps));
  }
}

}  // namespace

void k_cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets, long N, long V,
                     float grad_scale) {
  Xent k{losses, dlogits, logits, targets, V, grad_scale};
  pool_run(N, pool_grain(N, V), xent_task, &k);
}

double k_sum_squares(const float* x, long n) {
  const long chunk = 1 << 16;
  long tasks = n / chunk;
  double partial[4096];
  double total = 0;
  for (long t0 = 0; t0 < tasks; t0 += 4096) {
    long nt = lmin(4096, tasks - t0);
    SumSq k{x + t0 * chunk, partial, chunk};
    pool_run(nt, 1, sumsq_task, &k);
    for (long t = 0; t < nt; t++) total += partial[t];
  }
  return total + dot_d(x + tasks * chunk, x + tasks * chunk, n - tasks * chunk);
}

void k_adamw(float* param, const float* grad, float* m, float* v, long n, double lr, double beta1, double beta2, double eps,
             double weight_decay, double step) {
  Adam k{param, m, v, grad, lr, beta1, beta2, eps, weight_decay, lr / (1.0 - std::pow(beta1, step)),
         std::sqrt(1.0 - std::pow(beta2, step))};
  pool_run(n, pool_grain(n, 4), adamw_task, &k);
}

namespace {

struct Argmax {
  const float* x;
  long R, V, span;  // each row read in column spans of `span` (the last may be shorter)
  float* best;      // (spans, R): each span's largest value, and the first index holding it
  long* at;
};

// The largest of x[0, n) not below `start` (NaNs never win), in 32 lanes (four independent vectors, so that the
// compares overlap). Start at x[0] for a row's first span: then a NaN at 0 stays, as in a left-to-right scan.
// -0 and +0 may come out either way.
static AI float largest(const float* x, long n, float start) {
  V8 top[4];
  for (int a = 0; a < 4; a++) top[a] = V8{} + start;
  long i = 0;
  for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
    for (int a = 0; a < 4; a++) {
      const V8 v = load8(x + i + 8 * a);
      top[a] = v > top[a] ? v : top[a];
    }
  float lanes[32];
  for (int a = 0; a < 4; a++) store8(lanes + 8 * a, top[a]);
  float best = lanes[0];
  for (int l = 1; l < 32; l++) best = lanes[l] > best ? lanes[l] : best;
  for (; i < n; i++) best = x[i] > best ? x[i] : best;
  return best;
}

// The first j with x[j] == v, eight at a time (0 when there is none: v is NaN, or no value reached a -inf start).
// -0 and +0 are equal.
static AI long first_equal(const float* x, long n, float v) {
  const V8 target = V8{} + v;
  long j = 0;
  for (; j + 8 <= n; j += 8) {
    const auto hit = load8(x + j) == target;
    uint64_t words[4];
    memcpy(words, &hit, sizeof words);
    if ((words[0] | words[1] | words[2] | words[3]) == 0) continue;
    for (int l = 0; l < 8; l++)
      if (hit[l]) return j + l;
  }
  for (; j < n; j++)
    if (x[j] == v) return j;
  return 0;
}

// Items are (span, row), span-major, so a thread's chunk covers one span of every row: the columns the same thread
// most likely wrote in the product before (matvec_bf16 splits its outputs the same way).
HOT void argmax_task(void* c, long i0, long i1, int) {
  const Argmax& k = *(const Argmax*)c;
  for (long item = i0; item < i1; item++) {
    const long s = item / k.R, r = item % k.R, c0 = s * k.span, n = lmin(k.span, k.V - c0);
    const float* x = k.x + r * k.V + c0;
    const float v = largest(x, n, s == 0 ? x[0] : -INFINITY);
    k.best[item] = v;
    k.at[item] = c0 + first_equal(x, n, v);
  }
}

}  // namespace

// Each row's first index of its largest value: each span's, then the spans' in order, a later span winning only
// with a strictly greater value (a left-to-right scan's answer). Rows long enough are split into one span per
// thread (logits just written by both threads, 32000 columns, 2 Zen cores: 8 rows 24 -> 16 us, 1 row 5 -> 3 us).
void k_argmax_rows(int32_t* out, const float* x, long R, long V) {
  const long spans = lmax(1, lmin(pool_threads(), V / 4096));  // of 4096 floats at least
  std::vector<float> best(spans * R);
  std::vector<long> at(spans * R);
  Argmax k{x, R, V, (V + spans - 1) / spans, best.data(), at.data()};
  const long items = spans * R, threads = pool_threads();
  pool_run(items, spans > 1 ? (items + threads - 1) / threads : pool_grain(R, V), argmax_task, &k);  // a chunk a thread
  for (long r = 0; r < R; r++) {
    long s_best = 0;
    for (long s = 1; s < spans; s++)
      if (best[s * R + r] > best[s_best * R + r]) s_best = s;
    out[r] = (int32_t)at[s_best * R + r];
  }
}

#include "kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/status.h"
#include "kernels/attention_kernels.h"
#include "kernels/cpu.h"

namespace ixc {

namespace attention_internal {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// 2^x for x <= 0 (−inf, NaN and x < −127 give 0): the same range reduction and polynomial as the SIMD kernels. The
// degree-6 polynomial for 2^f on [−1/2, 1/2] (Chebyshev fit, f32 coefficients) is within 1e-8 relative, so the
// result is within about 1 ulp.
float Exp2Poly(float x) {
  x = x > -127.0f ? x : -127.0f;
  const float n = std::nearbyint(x);
  const float f = x - n;  // exact
  float p = 1.5453163e-4f;
  p = p * f + 1.3390863e-3f;
  p = p * f + 9.6180830e-3f;
  p = p * f + 5.5503570e-2f;
  p = p * f + 2.4022651e-1f;
  p = p * f + 6.9314718e-1f;
  p = p * f + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;  // 2^n, or 0 for n = −127
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// Portable kernels: plain loops the compiler may vectorise for whatever the baseline is.

void ScoresTPortable(const float* qt, int64_t ldq, int64_t mpad, const float* k, int64_t ks, int64_t nb, int64_t D,
                     float* s, int64_t lds, const PrefetchRows&) {
  for (int64_t j = 0; j < nb; ++j) {
    float* sj = s + j * lds;
    std::fill(sj, sj + mpad, 0.f);
    for (int64_t d = 0; d < D; ++d) {
      const float b = k[j * ks + d];
      const float* q = qt + d * ldq;
      for (int64_t i = 0; i < mpad; ++i) sj[i] += b * q[i];
    }
  }
}

void ScoresPortable(const float* qs, int64_t ldq, int64_t m, const float* k, int64_t ks, int64_t nb, int64_t dp,
                    float* s, int64_t lds, const PrefetchRows&) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < nb; ++j) {
      float acc = 0.f;
      for (int64_t d = 0; d < dp; ++d) acc += qs[i * ldq + d] * k[j * ks + d];
      s[i * lds + j] = acc;
    }
  }
}

// The online-softmax step for one query whose block scores are x[j·step], j < nb, of which the first `visible`
// count.
void SoftmaxOne(float* x, int64_t step, int64_t nb, int64_t visible, float* m, float* l, float* alpha) {
  float mx = -kInf;
  for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, x[j * step]);
  const float m_new = std::max(*m, mx);
  const float m_use = m_new == -kInf ? 0.f : m_new;  // nothing visible yet: keep every term 0, never NaN
  float sum = 0.f;
  for (int64_t j = 0; j < nb; ++j) {
    const float p = j < visible ? Exp2Poly(x[j * step] - m_use) : 0.f;
    x[j * step] = p;
    sum += p;
  }
  *alpha = Exp2Poly(*m - m_use);
  *l = *l * *alpha + sum;
  *m = m_new;
}

int64_t Visible(const int32_t* limit, int64_t i, int64_t nb) {
  return limit ? std::clamp<int64_t>(int64_t{limit[i]} + 1, 0, nb) : nb;
}

void SoftmaxTPortable(float* s, int64_t lds, int64_t nb, int64_t mpad, const int32_t* limit, float* m, float* l,
                      float* alpha) {
  for (int64_t i = 0; i < mpad; ++i) SoftmaxOne(s + i, lds, nb, Visible(limit, i, nb), &m[i], &l[i], &alpha[i]);
}

void SoftmaxRowsPortable(float* s, int64_t lds, int64_t nb, int64_t m, const int32_t* limit, float* mx, float* l,
                         float* alpha) {
  for (int64_t i = 0; i < m; ++i) SoftmaxOne(s + i * lds, 1, nb, Visible(limit, i, nb), &mx[i], &l[i], &alpha[i]);
}

void PvPortable(const float* p, int64_t psi, int64_t psj, const float* alpha, int64_t m, const float* v, int64_t vs,
                int64_t nb, int64_t dp, float* o, int64_t ldo, const PrefetchRows&) {
  for (int64_t i = 0; i < m; ++i) {
    float* oi = o + i * ldo;
    for (int64_t d = 0; d < dp; ++d) oi[d] *= alpha[i];
    for (int64_t j = 0; j < nb; ++j) {
      const float pij = p[i * psi + j * psj];
      const float* vj = v + j * vs;
      for (int64_t d = 0; d < dp; ++d) oi[d] += pij * vj[d];
    }
  }
}

void WidenF16Portable(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

void WidenQ8Portable(const void* src, float* dst, int64_t n) { ConvertToF32(DType::kQ8_0, src, dst, n); }

void PackRowsPortable(const void* src, int64_t stride, DType dtype, int64_t nb, int64_t D, int64_t dp, float* dst) {
  for (int64_t j = 0; j < nb; ++j) {
    float* out = dst + j * dp;
    if (dtype == DType::kQ8_0) {
      WidenQ8Portable(static_cast<const uint8_t*>(src) + StorageBytes(dtype, j * stride), out, D);
    } else if (dtype == DType::kF16) {
      WidenF16Portable(static_cast<const uint16_t*>(src) + j * stride, out, D);
    } else {
      std::memcpy(out, static_cast<const float*>(src) + j * stride, D * sizeof(float));
    }
    std::fill(out + D, out + dp, 0.f);
  }
}

const AttentionKernels kPortable = {ScoresTPortable,  ScoresPortable,   nullptr,         SoftmaxTPortable,
                                    SoftmaxRowsPortable, PvPortable,   nullptr,         WidenF16Portable,
                                    PackRowsPortable, WidenQ8Portable};

// Tiling. A work item is (query tile, group of KV heads, key chunk): the tile's rows × the G query heads of each KV
// head against the chunk's keys, a key block at a time, every head of the group on a block before the next block,
// so the cache is read in row order (a sweep of one head alone reads 256 of every 2048 bytes, one page per key for
// a ViT, and runs at a fraction of the memory bandwidth). With many queries per tile (prefill, ViT) keys are
// broadcast against vectors of queries (the "transposed" layout); with few (decode) each query's scores are dot
// products along the head dim. Every choice below depends only on the shapes, so each output is computed by the
// same arithmetic whatever the thread count.
constexpr int64_t kKeyBlock = 64;         // keys per block (a multiple of 8)
constexpr int64_t kTileQueries = 96;      // target queries (rows × G) per tile in the transposed layout
constexpr int64_t kMinTileQueries = 32;   // fewer queries in all: the row layout (decode)
constexpr int64_t kKeyChunk = 512;        // keys per item when the keys are split (a multiple of kKeyBlock)
constexpr int64_t kMinItems = 64;         // transposed: split the keys when there are fewer (tile, head) items
constexpr int64_t kMinRowItems = 8;       // row layout: split the KV heads into groups until there are this many
constexpr int64_t kMinTransposedItems = 32;        // transposed: keep at least this many items when grouping heads
constexpr int64_t kTransposedStateBytes = 192 << 10;  // transposed: query and output tiles of an item's heads
// Row layout: bytes of keys (and as many of values) per block of all the item's heads. Small blocks keep this
// block and the prefetched next one well inside L2 (measured: 32 KB beat 16, 64 and 128 KB for 8 heads of 128).
constexpr int64_t kRowBlockBytes = 32 << 10;
constexpr float kLog2e = 1.44269504088896340736f;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
int64_t CeilDiv(int64_t x, int64_t m) { return (x + m - 1) / m; }
size_t Align16(size_t n) { return (n + 15) / 16 * 16; }  // keeps every scratch array 64-byte aligned

struct Plan {
  int64_t T, Hkv, G, D, Dp, N;
  bool transposed;            // many queries per tile: keys broadcast against query vectors (prefill, ViT)
  int64_t tile_rows, n_tiles;
  int64_t mpad;               // queries per tile and KV head, rounded up to 8
  int64_t chunk, n_chunks;    // key split
  int64_t block;              // keys per block (<= kKeyBlock)
  int64_t heads, n_hgroups;   // KV heads per item, and the number of such groups
  size_t q_floats, o_floats;  // per KV head of an item
  size_t off_q, off_s, off_o, off_m, off_l, off_alpha, off_limit, off_k, off_v, scratch_floats;
  size_t partial_floats;      // per (tile, KV head, chunk) when split: m, l, o
  int64_t items() const { return n_tiles * n_hgroups * n_chunks; }
};

Plan MakePlan(const AttentionArgs& a) {
  Plan p{};
  p.T = a.rows;
  p.Hkv = a.kv_heads;
  p.G = a.q_heads / a.kv_heads;
  p.D = a.head_dim;
  p.Dp = RoundUp(a.head_dim, 8);
  p.N = 0;
  for (const KvRun& r : a.kv) p.N += r.n;
  p.transposed = p.T * p.G >= kMinTileQueries;
  p.tile_rows = p.transposed ? std::max<int64_t>(1, kTileQueries / p.G) : p.T;
  p.n_tiles = CeilDiv(p.T, p.tile_rows);
  p.mpad = RoundUp(std::min(p.tile_rows, p.T) * p.G, 8);
  const bool split = p.N > kKeyChunk && (!p.transposed || p.n_tiles * p.Hkv < kMinItems);
  p.chunk = split ? kKeyChunk : std::max<int64_t>(p.N, 1);
  p.n_chunks = split ? CeilDiv(p.N, kKeyChunk) : 1;
  p.q_floats = Align16(p.Dp * p.mpad);
  p.o_floats = Align16(p.mpad * p.Dp);
  if (p.transposed) {
    // Several KV heads per item share each block's cache rows (and their pages: a ViT row of all heads is 4 KB, so
    // one head alone walks the TLB once per key), as far as their states fit the budget and items stay plenty.
    const int64_t fit = std::max<int64_t>(1, kTransposedStateBytes / ((p.q_floats + p.o_floats) * 4));
    const int64_t enough = std::max<int64_t>(1, p.Hkv * p.n_tiles * p.n_chunks / kMinTransposedItems);
    p.heads = std::min({fit, enough, p.Hkv});
  } else {
    const int64_t groups = std::clamp<int64_t>(CeilDiv(kMinRowItems, p.n_chunks), 1, p.Hkv);
    p.heads = CeilDiv(p.Hkv, groups);
  }
  p.n_hgroups = CeilDiv(p.Hkv, p.heads);
  int64_t es = 2;  // bytes per cached element for the block size (Q8_0's 1.06 counts as 2)
  for (const KvRun& r : a.kv) es = std::max<int64_t>(es, r.dtype == DType::kF32 ? 4 : 2);
  p.block = p.transposed ? kKeyBlock
                         : std::clamp<int64_t>((kRowBlockBytes / (p.heads * p.Dp * es)) / 8 * 8, 8, kKeyBlock);
  size_t off = 0;
  auto take = [&](size_t n) {
    const size_t at = off;
    off += Align16(n);
    return at;
  };
  p.off_q = take(p.heads * p.q_floats);
  p.off_o = take(p.heads * p.o_floats);
  p.off_m = take(p.heads * p.mpad);
  p.off_l = take(p.heads * p.mpad);
  p.off_s = take(kKeyBlock * p.mpad);
  p.off_alpha = take(p.mpad);
  p.off_limit = take(p.mpad);  // int32 lanes
  p.off_k = take(p.heads * p.block * p.Dp);  // f32, or f16 in half the room
  p.off_v = take(p.heads * p.block * p.Dp);
  p.scratch_floats = off;
  p.partial_floats = p.n_chunks > 1 ? Align16(p.mpad * (p.Dp + 2)) : 0;
  return p;
}

// Per-thread scratch kept between calls (pool threads live long), so the hot path does not allocate.
class Scratch {
 public:
  float* Get(size_t n) {
    if (n + 16 > buf_.size()) buf_.assign(n + 16, 0.f);
    const uintptr_t at = reinterpret_cast<uintptr_t>(buf_.data());
    return buf_.data() + ((64 - at % 64) % 64) / sizeof(float);
  }

 private:
  std::vector<float> buf_;
};

thread_local Scratch tls_work;      // one item's tiles
thread_local Scratch tls_partials;  // the calling thread's partial softmax states of a split call

struct Ctx {
  const AttentionArgs& a;
  const Plan& p;
  const AttentionKernels& kern;
  float* partials;
};

bool Causal(const Ctx& c) { return c.a.causal_offset >= 0; }

// Query i of a tile is row t0 + i / G, query head g·G + i % G: the heads of one row sit side by side, so a causal
// limit is shared by G neighbouring lanes.
void WriteRow(const Ctx& c, int64_t t0, int64_t g, int64_t i, const float* o, float l) {
  const Plan& p = c.p;
  float* dst = c.a.out + (t0 + i / p.G) * c.a.out_stride + (g * p.G + i % p.G) * p.D;
  for (int64_t d = 0; d < p.D; ++d) dst[d] = l > 0.f ? o[d] / l : 0.f;
}

float* PartialSlot(const Ctx& c, int64_t tile, int64_t g, int64_t chunk) {
  return c.partials + ((tile * c.p.Hkv + g) * c.p.n_chunks + chunk) * c.p.partial_floats;
}

// The online-softmax state of one KV head's queries in an item.
struct HeadState {
  float *q, *o, *m, *l;
};

// A key block: keys [j0, j0 + nb) of the concatenation, rows local.. of one run (blocks never straddle runs).
struct BlockRef {
  const KvRun* run = nullptr;
  int64_t local = 0, j0 = 0, nb = 0;
};

// The block starting at key j of an item whose keys end at ke; nb = 0 past the end.
BlockRef FindBlock(const Ctx& c, int64_t j, int64_t ke) {
  int64_t base = 0;
  for (const KvRun& run : c.a.kv) {
    if (j < base + run.n) return {&run, j - base, j, std::min({c.p.block, ke - j, base + run.n - j})};
    base += run.n;
  }
  return {};
}

// Bytes of n cached elements (n a multiple of 32 for Q8_0, which every offset into such a run is).
int64_t CacheBytes(const KvRun& r, int64_t n) { return StorageBytes(r.dtype, n); }

// Head g's rows of block b in K (or V), as raw bytes.
const char* HeadRows(const Plan& p, const BlockRef& b, int64_t g, bool values) {
  return static_cast<const char*>(values ? b.run->v : b.run->k) + CacheBytes(*b.run, b.local * b.run->stride + g * p.D);
}

PrefetchRows PrefetchOf(const Plan& p, const BlockRef& b, int64_t g, bool values) {
  if (b.nb <= 0 || g < 0) return {};
  return {HeadRows(p, b, g, values), b.nb, CacheBytes(*b.run, b.run->stride), CacheBytes(*b.run, p.D)};
}

// Transposed layout: block b of KV head g against its queries: scores, the softmax step, P·V. `lim`: per-query
// causal limits relative to b.j0, or null. (next, next_g): the block and head processed after this one.
void TransposedBlock(const Ctx& c, const BlockRef& b, int64_t g, int64_t M, const int32_t* lim, const HeadState& h,
                     const BlockRef& next, int64_t next_g, float* w) {
  const Plan& p = c.p;
  const AttentionKernels& kern = c.kern;
  const KvRun& run = *b.run;
  const int64_t mt = RoundUp(M, 8), nb = b.nb;
  const char* kbase = HeadRows(p, b, g, false);
  const char* vbase = HeadRows(p, b, g, true);
  float *s = w + p.off_s, *alpha = w + p.off_alpha, *kc = w + p.off_k, *vc = w + p.off_v;
  // Each key and value is used by every query of the tile, so the block is packed once: widened to f32, and rows
  // made contiguous (cache rows sit kv_heads·D elements apart, 2-4 KB, so a block revisited in place maps onto a
  // few L1 sets and thrashes). The kernels prefetch the next block's rows, spread over their loops.
  const PrefetchRows pk = PrefetchOf(p, next, next_g, false), pv = PrefetchOf(p, next, next_g, true);
  kern.pack_rows(kbase, run.stride, run.dtype, nb, p.D, p.Dp, kc);
  kern.scores_t(h.q, mt, mt, kc, p.Dp, nb, p.D, s, mt, pk);
  kern.softmax_t(s, mt, nb, mt, lim, h.m, h.l, alpha);
  kern.pack_rows(vbase, run.stride, run.dtype, nb, p.D, p.Dp, vc);
  kern.pv_f32(s, 1, mt, alpha, M, vc, p.Dp, nb, p.Dp, h.o, p.Dp, pv);
}

// Copies n bytes in 32-byte pieces the compiler inlines (a libc call per cache row would cost more than the row).
inline void CopyBytes(char* dst, const char* src, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) __builtin_memcpy(dst + i, src + i, 32);
  if (i < n) std::memcpy(dst + i, src + i, n - i);
}

// Copies block b of KV heads [g0, g1) of K or V into head-major scratch, [head][row][dp] zero-padded, for the row
// layout's kernels when they cannot read the cache in place (a head dim that needs padding, f16 without f16
// kernels, Q8_0). f16 stays f16 unless `widen`; Q8_0 is always widened.
void PackHeads(const Ctx& c, const BlockRef& b, int64_t g0, int64_t g1, bool values, bool widen, void* dst) {
  const Plan& p = c.p;
  const KvRun& run = *b.run;
  const bool f16 = run.dtype == DType::kF16, q8 = run.dtype == DType::kQ8_0;
  const int64_t out_es = f16 && !widen ? 2 : 4, row_bytes = CacheBytes(run, p.D), pitch = CacheBytes(run, run.stride);
  const char* src = static_cast<const char*>(values ? run.v : run.k) + CacheBytes(run, b.local * run.stride + g0 * p.D);
  char* out = static_cast<char*>(dst);
  for (int64_t j = 0; j < b.nb; ++j) {
    const char* row = src + j * pitch;
    for (int64_t g = 0; g < g1 - g0; ++g) {
      char* o = out + ((g * p.block + j) * p.Dp) * out_es;
      if (q8) {
        c.kern.widen_q8(row + g * row_bytes, reinterpret_cast<float*>(o), p.D);
      } else if (f16 && widen) {
        c.kern.widen_f16(reinterpret_cast<const uint16_t*>(row + g * row_bytes), reinterpret_cast<float*>(o), p.D);
      } else {
        CopyBytes(o, row + g * row_bytes, row_bytes);
      }
      std::memset(o + p.D * out_es, 0, (p.Dp - p.D) * out_es);
    }
  }
}

// Part `part` of `parts` of the cache bytes of block b's rows (keys or values, the whole rows): the prefetch share
// of one head of a row-layout item, as 256-byte pseudo rows.
PrefetchRows PrefetchShare(const BlockRef& b, bool values, int64_t part, int64_t parts) {
  if (b.nb <= 0) return {};
  const int64_t pitch = CacheBytes(*b.run, b.run->stride);
  const char* base = static_cast<const char*>(values ? b.run->v : b.run->k) + b.local * pitch;
  const int64_t lines = CeilDiv(b.nb * pitch, 256), lo = lines * part / parts, hi = lines * (part + 1) / parts;
  return {base + lo * 256, hi - lo, 256, 256};
}

// Row layout: block b of heads [g0, g1). Each key and value is used by the G query heads of a row or two, so the
// kernels read the cache in place (a copy would cost as much as the arithmetic), with f16 widened in registers
// where the ISA has kernels for it; only a head dim that needs padding, f16 without such kernels, or Q8_0 goes
// through a (widening) copy. While head g works, its kernels prefetch a 1/(g1 − g0) share of the next block's rows (front to back),
// so memory reads overlap the arithmetic instead of stalling each block.
template <class State>
void RowBlock(const Ctx& c, const BlockRef& b, const BlockRef& next, int64_t g0, int64_t g1, int64_t M,
              const int32_t* lim, const State& state, float* w) {
  const Plan& p = c.p;
  const AttentionKernels& kern = c.kern;
  const KvRun& run = *b.run;
  const bool half = run.dtype == DType::kF16 && kern.scores_f16 && kern.pv_f16;
  const bool in_place = p.D == p.Dp && (half || run.dtype == DType::kF32);
  float *s = w + p.off_s, *alpha = w + p.off_alpha, *kc = w + p.off_k, *vc = w + p.off_v;
  if (!in_place) {
    PackHeads(c, b, g0, g1, false, !half, kc);
    PackHeads(c, b, g0, g1, true, !half, vc);
  }
  const int64_t ks = in_place ? run.stride : p.Dp;
  for (int64_t g = g0; g < g1; ++g) {
    const HeadState h = state(g);
    const int64_t packed = (g - g0) * p.block * p.Dp;  // elements into the copy
    const char* kp = in_place ? HeadRows(p, b, g, false)
                              : reinterpret_cast<const char*>(kc) + packed * (half ? 2 : 4);
    const char* vp = in_place ? HeadRows(p, b, g, true)
                              : reinterpret_cast<const char*>(vc) + packed * (half ? 2 : 4);
    const PrefetchRows pk = PrefetchShare(next, false, g - g0, g1 - g0);
    const PrefetchRows pv = PrefetchShare(next, true, g - g0, g1 - g0);
    if (half) {
      kern.scores_f16(h.q, p.Dp, M, reinterpret_cast<const uint16_t*>(kp), ks, b.nb, p.Dp, s, kKeyBlock, pk);
    } else {
      kern.scores_f32(h.q, p.Dp, M, reinterpret_cast<const float*>(kp), ks, b.nb, p.Dp, s, kKeyBlock, pk);
    }
    kern.softmax_rows(s, kKeyBlock, b.nb, M, lim, h.m, h.l, alpha);
    if (half) {
      kern.pv_f16(s, kKeyBlock, 1, alpha, M, reinterpret_cast<const uint16_t*>(vp), ks, b.nb, p.Dp, h.o, p.Dp, pv);
    } else {
      kern.pv_f32(s, kKeyBlock, 1, alpha, M, reinterpret_cast<const float*>(vp), ks, b.nb, p.Dp, h.o, p.Dp, pv);
    }
  }
}

void Item(const Ctx& c, int64_t tile, int64_t hgroup, int64_t chunk, float* w) {
  const Plan& p = c.p;
  const int64_t t0 = tile * p.tile_rows, rows = std::min(p.tile_rows, p.T - t0), M = rows * p.G;
  const int64_t mt = RoundUp(M, 8);
  const int64_t g0 = hgroup * p.heads, g1 = std::min(p.Hkv, g0 + p.heads);
  const int64_t kb = chunk * p.chunk;
  int64_t ke = std::min(p.N, kb + p.chunk);
  if (Causal(c)) ke = std::min(ke, c.a.causal_offset + t0 + rows);  // the last row's keys; later blocks skipped

  auto state = [&](int64_t g) {
    const int64_t x = g - g0;
    return HeadState{w + p.off_q + x * p.q_floats, w + p.off_o + x * p.o_floats, w + p.off_m + x * p.mpad,
                     w + p.off_l + x * p.mpad};
  };
  // Queries pre-scaled by scale·log2(e): scores come out in log2 units for the 2^x kernels.
  const float qscale = c.a.scale * kLog2e;
  for (int64_t g = g0; g < g1; ++g) {
    const HeadState h = state(g);
    for (int64_t i = 0; i < M; ++i) {
      const float* src = c.a.q + (t0 + i / p.G) * c.a.q_stride + (g * p.G + i % p.G) * p.D;
      if (p.transposed) {
        for (int64_t d = 0; d < p.D; ++d) h.q[d * mt + i] = src[d] * qscale;
      } else {
        for (int64_t d = 0; d < p.D; ++d) h.q[i * p.Dp + d] = src[d] * qscale;
        std::fill(h.q + i * p.Dp + p.D, h.q + (i + 1) * p.Dp, 0.f);
      }
    }
    if (p.transposed) {
      for (int64_t d = 0; d < p.D; ++d) std::fill(h.q + d * mt + M, h.q + (d + 1) * mt, 0.f);
    }
    std::fill(h.m, h.m + mt, -kInf);
    std::fill(h.l, h.l + mt, 0.f);
    std::fill(h.o, h.o + M * p.Dp, 0.f);
  }

  int32_t* limit = reinterpret_cast<int32_t*>(w + p.off_limit);
  BlockRef next;
  for (BlockRef b = kb < ke ? FindBlock(c, kb, ke) : BlockRef{}; b.nb > 0; b = next) {
    next = FindBlock(c, b.j0 + b.nb, ke);
    // Only blocks crossing the diagonal need a mask (blocks wholly above it were cut off by ke).
    const int32_t* lim = nullptr;
    if (Causal(c) && b.j0 + b.nb - 1 > c.a.causal_offset + t0) {
      for (int64_t i = 0; i < mt; ++i) {
        const int64_t r = std::min(i / p.G, rows - 1);  // pad lanes copy the last row: finite, never written
        limit[i] = static_cast<int32_t>(std::clamp<int64_t>(c.a.causal_offset + t0 + r - b.j0, -1, b.nb));
      }
      lim = limit;
    }
    if (!p.transposed) {
      RowBlock(c, b, next, g0, g1, M, lim, state, w);
      continue;
    }
    for (int64_t g = g0; g < g1; ++g) {
      if (g + 1 < g1) {
        TransposedBlock(c, b, g, M, lim, state(g), b, g + 1, w);
      } else {
        TransposedBlock(c, b, g, M, lim, state(g), next, g0, w);
      }
    }
  }

  for (int64_t g = g0; g < g1; ++g) {
    const HeadState h = state(g);
    if (p.n_chunks == 1) {
      for (int64_t i = 0; i < M; ++i) WriteRow(c, t0, g, i, h.o + i * p.Dp, h.l[i]);
      continue;
    }
    float* slot = PartialSlot(c, tile, g, chunk);
    std::copy(h.m, h.m + M, slot);
    std::copy(h.l, h.l + M, slot + p.mpad);
    std::copy(h.o, h.o + M * p.Dp, slot + 2 * p.mpad);
  }
}

// Combines the chunks' states of (tile, group) in chunk order (fixed, so the result does not depend on threads).
void Merge(const Ctx& c, int64_t tile, int64_t g, float* acc) {
  const Plan& p = c.p;
  const int64_t t0 = tile * p.tile_rows, M = std::min(p.tile_rows, p.T - t0) * p.G;
  for (int64_t i = 0; i < M; ++i) {
    float mx = -kInf;
    for (int64_t ch = 0; ch < p.n_chunks; ++ch) mx = std::max(mx, PartialSlot(c, tile, g, ch)[i]);
    float l = 0.f;
    std::fill(acc, acc + p.D, 0.f);
    for (int64_t ch = 0; mx != -kInf && ch < p.n_chunks; ++ch) {
      const float* part = PartialSlot(c, tile, g, ch);
      if (part[i] == -kInf) continue;
      const float wgt = std::exp2(part[i] - mx);
      l += wgt * part[p.mpad + i];
      const float* o = part + 2 * p.mpad + i * p.Dp;
      for (int64_t d = 0; d < p.D; ++d) acc[d] += wgt * o[d];
    }
    WriteRow(c, t0, g, i, acc, l);
  }
}

// Runs fn(index, scratch) for index in [0, n) on the pool's threads, handing out indices dynamically (each index's
// arithmetic is fixed, so the schedule cannot change results).
template <class Fn>
void ForEach(ThreadPool* pool, int64_t n, size_t scratch_floats, Fn&& fn) {
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t, int64_t, int) {
    float* w = tls_work.Get(scratch_floats);
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i, w);
  };
  const int64_t threads = pool ? std::min<int64_t>(pool->num_threads(), n) : 1;
  if (threads <= 1) {
    work(0, n, 0);
  } else {
    pool->ParallelFor(threads, work);
  }
}

}  // namespace
}  // namespace attention_internal

void MultiHeadAttention(const AttentionArgs& a, ThreadPool* pool) {
  using namespace attention_internal;
  if (a.rows <= 0 || a.q_heads <= 0 || a.kv_heads <= 0 || a.head_dim <= 0) return;
  for (const KvRun& r : a.kv) IXC_DCHECK(r.dtype != DType::kQ8_0 || (a.head_dim % 32 == 0 && r.stride % 32 == 0));
  const AttentionKernels* kern = &kPortable;
  if (ActiveIsa() >= Isa::kAvx2) {
    if (const AttentionKernels* k = Avx2AttentionKernels()) kern = k;
  }
  const Plan p = MakePlan(a);
  const int64_t per_tile = p.n_hgroups * p.n_chunks, items = p.items();
  float* partials =
      p.n_chunks > 1 ? tls_partials.Get(p.n_tiles * p.Hkv * p.n_chunks * p.partial_floats) : nullptr;
  const Ctx c{a, p, *kern, partials};
  // The last query tiles first: under a causal mask they see the most keys, so the schedule ends with cheap items.
  ForEach(pool, items, p.scratch_floats, [&](int64_t it, float* w) {
    Item(c, p.n_tiles - 1 - it / per_tile, it % per_tile / p.n_chunks, it % p.n_chunks, w);
  });
  if (p.n_chunks > 1) {
    ForEach(pool, p.n_tiles * p.Hkv, p.scratch_floats,
            [&](int64_t it, float* w) { Merge(c, it / p.Hkv, it % p.Hkv, w); });
  }
}

void MultiHeadAttentionRef(const AttentionArgs& a) {
  if (a.rows <= 0 || a.q_heads <= 0 || a.kv_heads <= 0 || a.head_dim <= 0) return;
  const int64_t G = a.q_heads / a.kv_heads, D = a.head_dim;
  struct Key {
    const KvRun* run;
    int64_t row;
  };
  std::vector<Key> keys;
  for (const KvRun& r : a.kv)
    for (int64_t j = 0; j < r.n; ++j) keys.push_back({&r, j});
  const int64_t N = static_cast<int64_t>(keys.size());
  auto elem = [](const KvRun& r, const void* base, int64_t idx) -> double {
    if (r.dtype == DType::kQ8_0) {  // flat index: rows and heads are whole blocks
      const BlockQ8_0& b = static_cast<const BlockQ8_0*>(base)[idx / kQ8Block];
      return F16ToF32(b.d) * b.q[idx % kQ8Block];
    }
    return r.dtype == DType::kF16 ? F16ToF32(static_cast<const uint16_t*>(base)[idx])
                                  : static_cast<const float*>(base)[idx];
  };
  std::vector<double> sc(N), acc(D);
  for (int64_t t = 0; t < a.rows; ++t) {
    const int64_t visible = a.causal_offset >= 0 ? std::clamp<int64_t>(a.causal_offset + t + 1, 0, N) : N;
    for (int64_t h = 0; h < a.q_heads; ++h) {
      const float* q = a.q + t * a.q_stride + h * D;
      const int64_t col = (h / G) * D;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        const Key& key = keys[j];
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) {
          dot += double{q[d]} * elem(*key.run, key.run->k, key.row * key.run->stride + col + d);
        }
        sc[j] = dot * a.scale;
        mx = std::max(mx, sc[j]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < visible; ++j) {
        const Key& key = keys[j];
        const double e = std::exp(sc[j] - mx);
        sum += e;
        for (int64_t d = 0; d < D; ++d) acc[d] += e * elem(*key.run, key.run->v, key.row * key.run->stride + col + d);
      }
      float* out = a.out + t * a.out_stride + h * D;
      for (int64_t d = 0; d < D; ++d) out[d] = visible > 0 ? static_cast<float>(acc[d] / sum) : 0.f;
    }
  }
}

}  // namespace ixc

#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/kernels.h"

namespace ixc {

void EmbedTokens(const DecoderWeights& w, const int* ids, int64_t n, float* out) {
  const int64_t D = w.tok_embeddings.dim(1);
  for (int64_t i = 0; i < n; ++i) ConvertToF32(w.tok_embeddings.dtype, w.tok_embeddings.row(ids[i]), out + i * D, D);
}

void RopeCosSin(const DecoderConfig& c, double base, int64_t position, float* cos, float* sin) {
  const int64_t d = c.head_dim();
  double p = static_cast<double>(position);
  if (c.rope_scaling_type == "linear") p /= c.rope_scaling_factor;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double inv_freq = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d));
    cos[i] = static_cast<float>(std::cos(p * inv_freq));
    sin[i] = static_cast<float>(std::sin(p * inv_freq));
  }
}

namespace {

// A workspace buffer seen as an array.
class Buffer {
 public:
  Buffer(Workspace& ws, size_t slot, int64_t n) : p_(ws.Floats(slot, static_cast<size_t>(n))) {}
  float* data() { return p_; }
  float& operator[](int64_t i) { return p_[i]; }

 private:
  float* p_;
};

}  // namespace

void DecoderForward(const DecoderConfig& c, const DecoderWeights& w, const DecoderStep& s, ThreadPool* pool,
                    float* logits) {
  const int64_t T = s.num_rows, D = c.hidden_size, F = c.intermediate_size;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, G = Hq / Hkv, d = c.head_dim();
  const int64_t qkv_dim = c.qkv_dim(), kv_dim = c.kv_dim(), group = (G + 2) * d;
  const int64_t prefix_len = s.shared_prefix ? s.shared_prefix->length() : 0;
  const int64_t own_start = s.cache->length();
  const int64_t start = prefix_len + own_start;
  const double base = RopeBaseForLength(c, std::max(start + T, s.rope_length));

  Workspace local;
  Workspace& ws = s.workspace ? *s.workspace : local;
  enum Slot : size_t { kX, kH, kQkv, kQ, kAttn, kO, kA, kB, kCos, kSin, kKvRows };
  static_assert(kKvRows < kPartialLinearSlots);
  Buffer x(ws, kX, T * D), h(ws, kH, T * D), qkv(ws, kQkv, T * qkv_dim), q(ws, kQ, T * Hq * d);
  Buffer attn(ws, kAttn, T * Hq * d), o(ws, kO, T * D), a(ws, kA, T * F), b(ws, kB, T * F);
  Buffer cos(ws, kCos, T * d / 2), sin(ws, kSin, T * d / 2);
  Buffer kv_rows(ws, kKvRows, 2 * kv_dim * (pool ? pool->num_threads() : 1));
  std::memcpy(x.data(), s.embeds, T * D * sizeof(float));
  for (int64_t t = 0; t < T; ++t) RopeCosSin(c, base, start + t, &cos[t * d / 2], &sin[t * d / 2]);

  s.cache->Reserve(T);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const DecoderLayerWeights& L = w.layers[l];
    RmsNorm(x.data(), L.attention_norm.data(), T, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
    PartialLinear(L.wqkv, h.data(), T, s.image_mask, s.mode, qkv.data(), pool, &ws);

    // Rotate q and k, gather the query heads into head order and store k and v rows in the cache (layout §2.3:
    // group g = [q.. G, k, v]).
    auto split = [&](int64_t t0, int64_t t1, int thread) {
      float* krow = &kv_rows[2 * kv_dim * thread];
      float* vrow = krow + kv_dim;
      for (int64_t t = t0; t < t1; ++t) {
        float* row = &qkv[t * qkv_dim];
        for (int64_t g = 0; g < Hkv; ++g) {
          float* grp = row + g * group;
          for (int64_t j = 0; j < G + 1; ++j) RotateHalf(grp + j * d, d, &cos[t * d / 2], &sin[t * d / 2]);
          std::memcpy(&q[t * Hq * d + g * G * d], grp, G * d * sizeof(float));
          std::memcpy(&krow[g * d], grp + G * d, d * sizeof(float));
          std::memcpy(&vrow[g * d], grp + (G + 1) * d, d * sizeof(float));
        }
        s.cache->Store(l, own_start + t, krow, vrow);
      }
    };
    if (pool && T > 1) {
      pool->ParallelFor(T, split);
    } else {
      split(0, T, 0);
    }

    // Causal attention: row t sees the shared prefix and own rows [0, own_start + t].
    KvRun runs[2];
    int nruns = 0;
    if (prefix_len) {
      const KvCache& p = *s.shared_prefix;
      runs[nruns++] = {p.dtype(), p.k(l, 0), p.v(l, 0), prefix_len, kv_dim};
    }
    runs[nruns++] = {s.cache->dtype(), s.cache->k(l, 0), s.cache->v(l, 0), own_start + T, kv_dim};
    AttentionArgs args;
    args.rows = T;
    args.q_heads = Hq;
    args.kv_heads = Hkv;
    args.head_dim = d;
    args.q = q.data();
    args.q_stride = Hq * d;
    args.out = attn.data();
    args.out_stride = Hq * d;
    args.kv = std::span<const KvRun>(runs, nruns);
    args.causal_offset = start;
    args.scale = scale;
    MultiHeadAttention(args, pool);

    PartialLinear(L.wo, attn.data(), T, s.image_mask, s.mode, o.data(), pool, &ws);
    AddInPlace(x.data(), o.data(), T * D, pool);

    RmsNorm(x.data(), L.ffn_norm.data(), T, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
    PartialLinear(L.w1, h.data(), T, s.image_mask, s.mode, a.data(), pool, &ws);
    PartialLinear(L.w3, h.data(), T, s.image_mask, s.mode, b.data(), pool, &ws);
    SiluMul(a.data(), b.data(), a.data(), T * F, pool);
    PartialLinear(L.w2, a.data(), T, s.image_mask, s.mode, o.data(), pool, &ws);
    AddInPlace(x.data(), o.data(), T * D, pool);
  }
  s.cache->Commit(T);
  if (s.no_logits) return;

  const int64_t first = s.all_logits ? 0 : T - 1, rows = T - first;
  RmsNorm(&x[first * D], w.norm.data(), rows, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
  MatMul(h.data(), rows, D, w.output, nullptr, logits, false, pool);
}

}  // namespace ixc

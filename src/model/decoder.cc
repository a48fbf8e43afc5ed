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
  DecoderForwardBatch(c, w, std::span<const DecoderStep>(&s, 1), pool, logits);
}

void DecoderForwardBatch(const DecoderConfig& c, const DecoderWeights& w, std::span<const DecoderStep> steps,
                         ThreadPool* pool, float* logits) {
  const int64_t D = c.hidden_size, F = c.intermediate_size;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, G = Hq / Hkv, d = c.head_dim();
  const int64_t qkv_dim = c.qkv_dim(), kv_dim = c.kv_dim(), group = (G + 2) * d;
  const AdapterMode mode = steps[0].mode;

  // The sequences' rows one after another; per row, its sequence and its position in the sequence's cache.
  const size_t n = steps.size();
  std::vector<int64_t> first_row(n + 1, 0), own_start(n), start(n);
  bool any_mask = false;
  for (size_t i = 0; i < n; ++i) {
    const DecoderStep& s = steps[i];
    first_row[i + 1] = first_row[i] + s.num_rows;
    own_start[i] = s.cache->length();
    start[i] = (s.shared_prefix ? s.shared_prefix->length() : 0) + own_start[i];
    any_mask = any_mask || s.image_mask;
  }
  const int64_t T = first_row[n];
  std::vector<int32_t> seq_of(T);
  for (size_t i = 0; i < n; ++i) std::fill(seq_of.begin() + first_row[i], seq_of.begin() + first_row[i + 1], static_cast<int32_t>(i));

  Workspace local;
  Workspace& ws = steps[0].workspace ? *steps[0].workspace : local;
  enum Slot : size_t { kX, kH, kQkv, kQ, kAttn, kO, kA, kB, kCos, kSin, kKvRows };
  static_assert(kKvRows < kPartialLinearSlots);
  Buffer x(ws, kX, T * D), h(ws, kH, T * D), qkv(ws, kQkv, T * qkv_dim), q(ws, kQ, T * Hq * d);
  Buffer attn(ws, kAttn, T * Hq * d), o(ws, kO, T * D), a(ws, kA, T * F), b(ws, kB, T * F);
  Buffer cos(ws, kCos, T * d / 2), sin(ws, kSin, T * d / 2);
  Buffer kv_rows(ws, kKvRows, 2 * kv_dim * (pool ? pool->num_threads() : 1));
  std::vector<uint8_t> mask;
  if (any_mask) mask.assign(T, 0);
  for (size_t i = 0; i < n; ++i) {
    const DecoderStep& s = steps[i];
    std::memcpy(&x[first_row[i] * D], s.embeds, s.num_rows * D * sizeof(float));
    if (s.image_mask) std::memcpy(&mask[first_row[i]], s.image_mask, s.num_rows);
    const double base = RopeBaseForLength(c, std::max(start[i] + s.num_rows, s.rope_length));
    for (int64_t t = 0; t < s.num_rows; ++t) {
      const int64_t r = first_row[i] + t;
      RopeCosSin(c, base, start[i] + t, &cos[r * d / 2], &sin[r * d / 2]);
    }
    s.cache->Reserve(s.num_rows);
  }
  const uint8_t* image_mask = any_mask ? mask.data() : nullptr;

  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const DecoderLayerWeights& L = w.layers[l];
    RmsNorm(x.data(), L.attention_norm.data(), T, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
    PartialLinear(L.wqkv, h.data(), T, image_mask, mode, qkv.data(), pool, &ws);

    // Rotate q and k, gather the query heads into head order and store k and v rows in their sequence's cache
    // (layout §2.3: group g = [q.. G, k, v]).
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
        const int32_t i = seq_of[t];
        steps[i].cache->Store(l, own_start[i] + t - first_row[i], krow, vrow);
      }
    };
    if (pool && T > 1) {
      pool->ParallelFor(T, split);
    } else {
      split(0, T, 0);
    }

    // Causal attention within each sequence: its row t sees the shared prefix and own rows [0, own_start + t].
    for (size_t i = 0; i < n; ++i) {
      const DecoderStep& s = steps[i];
      KvRun runs[2];
      int nruns = 0;
      if (s.shared_prefix) {
        const KvCache& p = *s.shared_prefix;
        runs[nruns++] = {p.dtype(), p.k(l, 0), p.v(l, 0), p.length(), kv_dim};
      }
      runs[nruns++] = {s.cache->dtype(), s.cache->k(l, 0), s.cache->v(l, 0), own_start[i] + s.num_rows, kv_dim};
      AttentionArgs args;
      args.rows = s.num_rows;
      args.q_heads = Hq;
      args.kv_heads = Hkv;
      args.head_dim = d;
      args.q = &q[first_row[i] * Hq * d];
      args.q_stride = Hq * d;
      args.out = &attn[first_row[i] * Hq * d];
      args.out_stride = Hq * d;
      args.kv = std::span<const KvRun>(runs, nruns);
      args.causal_offset = start[i];
      args.scale = scale;
      MultiHeadAttention(args, pool);
    }

    PartialLinear(L.wo, attn.data(), T, image_mask, mode, o.data(), pool, &ws);
    AddInPlace(x.data(), o.data(), T * D, pool);

    RmsNorm(x.data(), L.ffn_norm.data(), T, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
    PartialLinear(L.w1, h.data(), T, image_mask, mode, a.data(), pool, &ws);
    PartialLinear(L.w3, h.data(), T, image_mask, mode, b.data(), pool, &ws);
    SiluMul(a.data(), b.data(), a.data(), T * F, pool);
    PartialLinear(L.w2, a.data(), T, image_mask, mode, o.data(), pool, &ws);
    AddInPlace(x.data(), o.data(), T * D, pool);
  }
  for (const DecoderStep& s : steps) s.cache->Commit(s.num_rows);

  // The LM head over the rows whose logits were asked for, gathered in step order.
  int64_t rows = 0;
  for (size_t i = 0; i < n; ++i) {
    const DecoderStep& s = steps[i];
    if (s.no_logits) continue;
    const int64_t from = s.all_logits ? 0 : s.num_rows - 1;
    for (int64_t t = from; t < s.num_rows; ++t, ++rows) {
      if (rows != first_row[i] + t) std::memcpy(&x[rows * D], &x[(first_row[i] + t) * D], D * sizeof(float));
    }
  }
  if (rows == 0) return;
  RmsNorm(x.data(), w.norm.data(), rows, D, static_cast<float>(c.rms_norm_eps), h.data(), pool);
  MatMul(h.data(), rows, D, w.output, nullptr, logits, false, pool);
}

}  // namespace ixc

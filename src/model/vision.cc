#include "model/vision.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/kernels.h"

namespace ixc {

int64_t ImageTokenCount(const VisionConfig& v, int64_t rows, int64_t cols) {
  const int64_t m = v.merged_grid();
  return (rows * cols + 1) * m * m + 1 + (rows + 1) * m;
}

void ClipForward(const VisionConfig& v, const VisionWeights& w, std::span<const float* const> views, ThreadPool* pool,
                 float* features) {
  const int64_t H = v.hidden_size, I = v.intermediate_size, P = v.patch_size, S = v.image_size, C = v.num_channels;
  const int64_t g = v.grid(), Np = v.num_patches(), N = Np + 1, heads = v.num_attention_heads, hd = H / heads;
  const int64_t nv = static_cast<int64_t>(views.size()), R = nv * N;  // all views' tokens as one batch of rows
  const float eps = static_cast<float>(v.layer_norm_eps);

  std::vector<float> x(R * H), h(R * H), q(R * H), k(R * H), val(R * H), attn(R * H), mlp(R * I);
  {
    // Patch conv as a matmul: each patch flattened in the conv weight's (c, ky, kx) order.
    std::vector<float> patches(Np * C * P * P);
    for (int64_t i = 0; i < nv; ++i) {
      for (int64_t py = 0; py < g; ++py)
        for (int64_t px = 0; px < g; ++px) {
          float* dst = &patches[(py * g + px) * C * P * P];
          for (int64_t ch = 0; ch < C; ++ch)
            for (int64_t ky = 0; ky < P; ++ky)
              std::memcpy(dst + (ch * P + ky) * P, views[i] + (ch * S + py * P + ky) * S + px * P, P * sizeof(float));
        }
      float* xv = &x[i * N * H];
      MatMul(patches.data(), Np, C * P * P, w.patch_embedding, nullptr, xv + H, false, pool);
      std::memcpy(xv, w.class_embedding.data(), H * sizeof(float));
      AddInPlace(xv, w.position_embedding.data(), N * H, pool);
    }
  }
  LayerNorm(x.data(), w.pre_ln_w.data(), w.pre_ln_b.data(), R, H, eps, x.data(), pool);

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const VisionLayerWeights& L : w.layers) {
    LayerNorm(x.data(), L.ln1_w.data(), L.ln1_b.data(), R, H, eps, h.data(), pool);
    MatMul(h.data(), R, H, L.q_w, L.q_b.data(), q.data(), false, pool);
    MatMul(h.data(), R, H, L.k_w, L.k_b.data(), k.data(), false, pool);
    MatMul(h.data(), R, H, L.v_w, L.v_b.data(), val.data(), false, pool);
    // Each view attends within itself.
    for (int64_t i = 0; i < nv; ++i) {
      const KvRun run{DType::kF32, &k[i * N * H], &val[i * N * H], N, H};
      AttentionArgs args;
      args.rows = N;
      args.q_heads = args.kv_heads = heads;
      args.head_dim = hd;
      args.q = &q[i * N * H];
      args.q_stride = H;
      args.out = &attn[i * N * H];
      args.out_stride = H;
      args.kv = std::span<const KvRun>(&run, 1);
      args.scale = scale;
      MultiHeadAttention(args, pool);
    }
    MatMul(attn.data(), R, H, L.out_w, L.out_b.data(), x.data(), true, pool);
    LayerNorm(x.data(), L.ln2_w.data(), L.ln2_b.data(), R, H, eps, h.data(), pool);
    MatMul(h.data(), R, H, L.fc1_w, L.fc1_b.data(), mlp.data(), false, pool);
    QuickGeluInPlace(mlp.data(), R * I, pool);
    MatMul(mlp.data(), R, I, L.fc2_w, L.fc2_b.data(), x.data(), true, pool);
  }
  for (int64_t i = 0; i < nv; ++i) std::memcpy(features + i * Np * H, &x[(i * N + 1) * H], Np * H * sizeof(float));
}

void EncodeImage(const ModelConfig& c, const VisionWeights& w, std::span<const float* const> views, int64_t rows,
                 int64_t cols, ThreadPool* pool, std::vector<float>* tokens,
                 const std::function<void(int64_t, int64_t)>& on_views) {
  const VisionConfig& v = c.vision;
  const int64_t H = v.hidden_size, g = v.grid(), m = v.merged_grid(), M = v.merged_dim(), D = c.text.hidden_size;
  const int64_t nviews = static_cast<int64_t>(views.size());
  std::vector<std::vector<float>> feats(nviews, std::vector<float>(v.num_patches() * H));
  // Views go through the tower a few at a time (kMaxViewsPerBatch): each weight is read once per batch, and the
  // activations stay bounded (hd_num 24 makes 25 views).
  std::vector<float> batch_features;
  for (int64_t b0 = 0; b0 < nviews; b0 += kMaxViewsPerBatch) {
    const int64_t n = std::min(kMaxViewsPerBatch, nviews - b0);
    batch_features.resize(n * v.num_patches() * H);
    ClipForward(v, w, views.subspan(b0, n), pool, batch_features.data());
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(feats[b0 + i].data(), &batch_features[i * v.num_patches() * H], v.num_patches() * H * sizeof(float));
    if (on_views) on_views(b0 + n, nviews);
  }

  // 2×2 merge: token (r, c) = concat(F[2r][2c], F[2r][2c+1], F[2r+1][2c], F[2r+1][2c+1]).
  auto merged = [&](int64_t view, int64_t r, int64_t cc, float* dst) {
    const float* f = feats[view].data();
    const int64_t src[4] = {(2 * r) * g + 2 * cc, (2 * r) * g + 2 * cc + 1, (2 * r + 1) * g + 2 * cc,
                            (2 * r + 1) * g + 2 * cc + 1};
    for (int q = 0; q < 4; ++q) std::memcpy(dst + q * H, f + src[q] * H, H * sizeof(float));
  };
  const int64_t total = ImageTokenCount(v, rows, cols);
  std::vector<float> pre(total * M);
  int64_t n = 0;
  auto put_gn = [&](const std::vector<float>& gn) { std::memcpy(&pre[(n++) * M], gn.data(), M * sizeof(float)); };
  for (int64_t r = 0; r < m; ++r) {  // global view: rows end with sub_GN
    for (int64_t cc = 0; cc < m; ++cc) merged(0, r, cc, &pre[(n++) * M]);
    put_gn(w.sub_gn);
  }
  put_gn(w.glb_gn);
  for (int64_t R = 0; R < rows * m; ++R) {  // local tiles as one big grid, each grid row ending with sub_GN
    for (int64_t C = 0; C < cols * m; ++C) merged(1 + (R / m) * cols + C / m, R % m, C % m, &pre[(n++) * M]);
    put_gn(w.sub_gn);
  }

  // Projector: Linear -> exact GELU -> Linear, separators included.
  std::vector<float> mid(total * D);
  MatMul(pre.data(), total, M, w.proj0_w, w.proj0_b.data(), mid.data(), false, pool);
  GeluErfInPlace(mid.data(), total * D, pool);
  tokens->assign(total * D, 0.f);
  MatMul(mid.data(), total, D, w.proj2_w, w.proj2_b.data(), tokens->data(), false, pool);
}

}  // namespace ixc

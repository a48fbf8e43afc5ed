// Decoder checks against a naive double-precision re-implementation of spec §2 written here from the spec
// (explicit de-interleaving of wqkv, per-row RoPE bases, plain causal attention), on random checkpoints of several
// shapes: GQA, one KV head, MHA, dynamic NTK on and off, every adapter mode, mixed image masks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "core/status.h"
#include "core/testing.h"
#include "kernels/cpu.h"
#include "model/decoder.h"
#include "model/synthetic.h"
#include "model/vision.h"
#include "model/weights.h"

namespace ixc {
namespace {

using Mat = std::vector<double>;  // row-major

struct Naive {
  const DecoderConfig& c;
  const std::map<std::string, TensorView>& t;

  Mat W(const std::string& name) const {
    std::vector<float> f = ToF32(t.at(name));
    return Mat(f.begin(), f.end());
  }
  // x[T, in] · W[out, in]ᵀ
  static Mat Lin(const Mat& x, int64_t T, const Mat& w, int64_t out) {
    const int64_t in = static_cast<int64_t>(x.size()) / T;
    Mat y(T * out, 0.0);
    for (int64_t r = 0; r < T; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t k = 0; k < in; ++k) s += x[r * in + k] * w[o * in + k];
        y[r * out + o] = s;
      }
    return y;
  }
  Mat Linear(const std::string& base, const Mat& x, int64_t T, int64_t out, const std::vector<uint8_t>& mask,
             AdapterMode mode) const {
    Mat y = Lin(x, T, W(base + ".weight"), out);
    auto lora = [&](const std::string& kind, bool row_on(int64_t, const std::vector<uint8_t>&)) {
      Mat a = W(base + "." + kind + "_A.weight"), b = W(base + "." + kind + "_B.weight");
      const int64_t r = t.at(base + "." + kind + "_A.weight").dim(0);
      Mat mid = Lin(x, T, a, r), d = Lin(mid, T, b, out);
      for (int64_t i = 0; i < T; ++i)
        if (row_on(i, mask))
          for (int64_t o = 0; o < out; ++o) y[i * out + o] += d[i * out + o];
    };
    auto all = [](int64_t, const std::vector<uint8_t>&) { return true; };
    auto image = [](int64_t i, const std::vector<uint8_t>& m) { return !m.empty() && m[i] != 0; };
    if (mode == AdapterMode::kWeb) lora("lora_web", all);
    if (mode == AdapterMode::kWrite) {
      lora("lora_sft", all);
      lora("lora_dpo", all);
    }
    if (t.count(base + ".Plora_A.weight")) lora("Plora", image);
    return y;
  }
  Mat RmsNorm(const Mat& x, int64_t T, const std::string& w) const {
    const int64_t D = c.hidden_size;
    Mat g = W(w), y(x.size());
    for (int64_t i = 0; i < T; ++i) {
      double ss = 0;
      for (int64_t k = 0; k < D; ++k) ss += x[i * D + k] * x[i * D + k];
      const double r = 1.0 / std::sqrt(ss / D + c.rms_norm_eps);
      for (int64_t k = 0; k < D; ++k) y[i * D + k] = g[k] * x[i * D + k] * r;
    }
    return y;
  }
  // Logits of every row; row i is rotated with bases[i] (its step's base) at position i.
  Mat Forward(const Mat& embeds, int64_t T, const std::vector<uint8_t>& mask, AdapterMode mode,
              const std::vector<double>& bases) const {
    const int64_t D = c.hidden_size, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, d = c.head_dim();
    const int64_t G = Hq / Hkv, F = c.intermediate_size;
    Mat x = embeds;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      Mat h = RmsNorm(x, T, p + "attention_norm.weight");
      Mat qkv = Linear(p + "attention.wqkv", h, T, c.qkv_dim(), mask, mode);
      // De-interleave (§2.3): column c -> group c / ((G+2)d), slot (c mod (G+2)d) / d, dim c mod d.
      std::vector<Mat> q(Hq, Mat(T * d)), k(Hkv, Mat(T * d)), v(Hkv, Mat(T * d));
      for (int64_t i = 0; i < T; ++i)
        for (int64_t col = 0; col < c.qkv_dim(); ++col) {
          const int64_t g = col / ((G + 2) * d), slot = (col % ((G + 2) * d)) / d, j = col % d;
          const double val = qkv[i * c.qkv_dim() + col];
          if (slot < G) q[g * G + slot][i * d + j] = val;
          else if (slot == G) k[g][i * d + j] = val;
          else v[g][i * d + j] = val;
        }
      auto rope = [&](Mat& m) {
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < d / 2; ++j) {
            const double pos = c.rope_scaling_type == "linear" ? i / c.rope_scaling_factor : i;
            const double ang = pos / std::pow(bases[i], 2.0 * j / d);
            const double a = m[i * d + j], b = m[i * d + j + d / 2];
            m[i * d + j] = a * std::cos(ang) - b * std::sin(ang);
            m[i * d + j + d / 2] = b * std::cos(ang) + a * std::sin(ang);
          }
      };
      for (auto& m : q) rope(m);
      for (auto& m : k) rope(m);
      Mat attn(T * Hq * d, 0.0);
      for (int64_t hq = 0; hq < Hq; ++hq) {
        const int64_t g = hq / G;
        for (int64_t i = 0; i < T; ++i) {
          std::vector<double> s(i + 1);
          double mx = -1e300, sum = 0;
          for (int64_t j = 0; j <= i; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < d; ++e) dot += q[hq][i * d + e] * k[g][j * d + e];
            s[j] = dot / std::sqrt(static_cast<double>(d));
            mx = std::max(mx, s[j]);
          }
          for (auto& z : s) sum += (z = std::exp(z - mx));
          for (int64_t j = 0; j <= i; ++j)
            for (int64_t e = 0; e < d; ++e) attn[i * Hq * d + hq * d + e] += s[j] / sum * v[g][j * d + e];
        }
      }
      Mat o = Linear(p + "attention.wo", attn, T, D, mask, mode);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      h = RmsNorm(x, T, p + "ffn_norm.weight");
      Mat a = Linear(p + "feed_forward.w1", h, T, F, mask, mode), b = Linear(p + "feed_forward.w3", h, T, F, mask, mode);
      for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] / (1 + std::exp(-a[i])) * b[i];
      o = Linear(p + "feed_forward.w2", a, T, D, mask, mode);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    }
    return Lin(RmsNorm(x, T, "model.norm.weight"), T, W("output.weight"), c.vocab_size);
  }
};

ModelConfig SmallConfig(int64_t D, int64_t Hq, int64_t Hkv, int64_t max_pos, std::string scaling) {
  ModelConfig mc;
  DecoderConfig& c = mc.text;
  c.vocab_size = 61;
  c.hidden_size = D;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = Hq;
  c.num_key_value_heads = Hkv;
  c.max_position_embeddings = max_pos;
  c.rope_theta = 10000;
  c.rope_scaling_type = std::move(scaling);
  c.rope_scaling_factor = 2.0;
  return mc;
}

struct Shape5 { int64_t D, Hq, Hkv, max_pos; const char* scaling; WeightType type; };

class DecoderVsNaive : public ::testing::TestWithParam<Shape5> {};

TEST_P(DecoderVsNaive, PrefillThenDecodeMatchesNaive) {
  const Shape5 s = GetParam();
  ModelConfig mc = SmallConfig(s.D, s.Hq, s.Hkv, s.max_pos, s.scaling);
  SyntheticOptions so;
  so.vision = false;
  so.type = s.type;
  auto ck = MakeSyntheticCheckpoint(mc, so);
  auto w = BindWeights(mc, ck->tensors);
  ASSERT_TRUE(w.ok()) << w.status().message();
  const DecoderConfig& c = mc.text;
  Naive naive{c, ck->tensors};
  ThreadPool pool(2);

  const int64_t T = 12, P = 9;  // P prompt rows, then T - P decode steps
  const int64_t D = c.hidden_size, V = c.vocab_size;
  // The naive model multiplies the stored (dequantised) weights in double. With block-quantised weights MatMul
  // quantises products of fewer than 8 rows to int8 activations (each value off by up to max|x|/254 of its block,
  // an RMS of about 0.2% of the block's largest value): decoded rows, and the prompt's Partial-LoRA rows (5 image
  // rows). Measured: 1.5e-4 for the prompt, 5e-3 for decoded rows.
  const bool quantised = s.type == WeightType::kQ8_0 || s.type == WeightType::kQ4_0;
  const double tol_rows = quantised ? 2e-3 : 2e-6, tol_decode = quantised ? 2e-2 : 2e-6;
  auto e = testing::RandomFloats(T * D, 7);
  std::vector<uint8_t> mask = {0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0};  // mixed text/image prompt; decode rows are text
  for (AdapterMode mode : {AdapterMode::kBase, AdapterMode::kWeb, AdapterMode::kWrite}) {
    KvCache cache(c.num_hidden_layers, c.kv_dim());
    std::vector<float> logits(P * V);
    DecoderStep step;
    step.embeds = e.data();
    step.num_rows = P;
    step.image_mask = mask.data();
    step.mode = mode;
    step.cache = &cache;
    step.all_logits = true;
    DecoderForward(c, w->text, step, &pool, logits.data());
    std::vector<double> bases(T);
    for (int64_t i = 0; i < T; ++i) bases[i] = RopeBaseForLength(c, i < P ? P : i + 1);
    Mat ref = naive.Forward(Mat(e.begin(), e.end()), T, mask, mode, bases);
    std::vector<float> ref_f(ref.begin(), ref.begin() + P * V);
    EXPECT_LE(testing::RelL2(logits.data(), ref_f.data(), P * V), tol_rows) << "prefill, mode " << int(mode);
    for (int64_t i = P; i < T; ++i) {
      DecoderStep ds;
      ds.embeds = &e[i * D];
      ds.num_rows = 1;
      ds.mode = mode;
      ds.cache = &cache;
      std::vector<float> row(V);
      DecoderForward(c, w->text, ds, &pool, row.data());
      std::vector<float> r(ref.begin() + i * V, ref.begin() + (i + 1) * V);
      EXPECT_LE(testing::RelL2(row.data(), r.data(), V), tol_decode) << "decode row " << i << ", mode " << int(mode);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecoderVsNaive,
                         ::testing::Values(Shape5{48, 6, 2, 8, "dynamic", WeightType::kBF16},   // GQA, NTK from the prompt on
                                           Shape5{32, 4, 1, 10, "dynamic", WeightType::kF16},   // one KV head, NTK in decoding
                                           Shape5{32, 2, 2, 64, "", WeightType::kF32},          // MHA, no scaling
                                           Shape5{40, 5, 5, 64, "linear", WeightType::kBF16},   // odd heads, linear RoPE
                                           Shape5{64, 4, 2, 64, "dynamic", WeightType::kQ8_0},  // Q8_0 matrices
                                           Shape5{64, 4, 2, 64, "dynamic", WeightType::kQ4_0}));  // Q4_0 linears

// Sequences stepped together give the logits they give stepped one by one: each row's products use the same
// arithmetic in a batch of fewer than 8 rows, and attention stays within each sequence's own cache (and prefix).
class DecoderBatch : public ::testing::TestWithParam<WeightType> {};

TEST_P(DecoderBatch, EqualsTheStepsOneByOne) {
  ModelConfig mc = SmallConfig(64, 4, 2, 24, "dynamic");
  SyntheticOptions so;
  so.vision = false;
  so.type = GetParam();
  auto ck = MakeSyntheticCheckpoint(mc, so);
  auto w = BindWeights(mc, ck->tensors);
  ASSERT_TRUE(w.ok()) << w.status().message();
  const DecoderConfig& c = mc.text;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  ThreadPool pool(2);
  for (AdapterMode mode : {AdapterMode::kBase, AdapterMode::kWeb}) {
    // Three sequences: prompts of 5, 19 and 3 rows (the second past max_position_embeddings, so its RoPE base
    // differs), the third after a shared prefix of 4 rows.
    const int64_t prompt[3] = {5, 19, 3};
    KvCache prefix(c.num_hidden_layers, c.kv_dim());
    auto pe = testing::RandomFloats(4 * D, 40);
    std::vector<float> scratch(V);
    DecoderStep ps;
    ps.embeds = pe.data();
    ps.num_rows = 4;
    ps.mode = mode;
    ps.cache = &prefix;
    DecoderForward(c, w->text, ps, &pool, scratch.data());
    std::vector<KvCache> one, together;
    for (int i = 0; i < 3; ++i) {
      one.emplace_back(c.num_hidden_layers, c.kv_dim());
      together.emplace_back(c.num_hidden_layers, c.kv_dim());
    }
    for (int i = 0; i < 3; ++i) {
      auto e = testing::RandomFloats(prompt[i] * D, 50 + i);
      for (KvCache* cache : {&one[i], &together[i]}) {
        DecoderStep st;
        st.embeds = e.data();
        st.num_rows = prompt[i];
        st.mode = mode;
        st.cache = cache;
        st.shared_prefix = i == 2 ? &prefix : nullptr;
        DecoderForward(c, w->text, st, &pool, scratch.data());
      }
    }
    for (int step = 0; step < 4; ++step) {
      auto e = testing::RandomFloats(3 * D, 100 + step);
      std::vector<float> want(3 * V), got(3 * V);
      DecoderStep steps[3];
      for (int i = 0; i < 3; ++i) {
        DecoderStep st;
        st.embeds = &e[i * D];
        st.num_rows = 1;
        st.mode = mode;
        st.shared_prefix = i == 2 ? &prefix : nullptr;
        st.cache = &one[i];
        DecoderForward(c, w->text, st, &pool, &want[i * V]);
        st.cache = &together[i];
        steps[i] = st;
      }
      // The middle sequence asks for no logits this step: the others' rows close up.
      steps[1].no_logits = step == 2;
      DecoderForwardBatch(c, w->text, steps, &pool, got.data());
      for (int i = 0, out = 0; i < 3; ++i) {
        if (steps[i].no_logits) continue;
        EXPECT_EQ(std::vector<float>(&got[out * V], &got[(out + 1) * V]), std::vector<float>(&want[i * V], &want[(i + 1) * V]))
            << "sequence " << i << ", step " << step << ", mode " << int(mode);
        ++out;
      }
      for (int i = 0; i < 3; ++i) ASSERT_EQ(together[i].length(), one[i].length());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, DecoderBatch, ::testing::Values(WeightType::kBF16, WeightType::kF32, WeightType::kQ8_0, WeightType::kQ4_0),
                         [](const auto& info) { return std::string(WeightTypeName(info.param)); });

TEST(Rope, DynamicNtkBaseFollowsTheSpecFormula) {
  DecoderConfig c;
  c.hidden_size = 4096;
  c.num_attention_heads = 32;
  c.rope_theta = 1e6;
  c.max_position_embeddings = 256;
  c.rope_scaling_type = "dynamic";
  c.rope_scaling_factor = 2.0;
  EXPECT_EQ(RopeBaseForLength(c, 256), 1e6);
  EXPECT_NEAR(RopeBaseForLength(c, 534), 1e6 * std::pow(2.0 * 534 / 256 - 1.0, 128.0 / 126.0), 1e-3);
  c.rope_scaling_type = "";
  EXPECT_EQ(RopeBaseForLength(c, 100000), 1e6);
  float cs[64], sn[64];
  RopeCosSin(c, 1e6, 7, cs, sn);
  EXPECT_NEAR(cs[0], std::cos(7.0), 1e-7);
  EXPECT_NEAR(sn[1], std::sin(7.0 / std::pow(1e6, 2.0 / 128)), 1e-7);
}

TEST(PartialLinear, MaskSelectsRowsAndModesSelectAdapters) {
  ModelConfig mc = SmallConfig(16, 2, 1, 64, "");
  SyntheticOptions so;
  so.vision = false;
  so.type = WeightType::kF32;
  auto ck = MakeSyntheticCheckpoint(mc, so);
  auto w = BindWeights(mc, ck->tensors);
  ASSERT_TRUE(w.ok()) << w.status().message();
  const LinearWeights& lw = w->text.layers[0].w1;
  const int64_t T = 4, in = lw.in(), out = lw.out();
  auto x = testing::RandomFloats(T * in, 3);
  Naive naive{mc.text, ck->tensors};
  ThreadPool pool(2);
  for (std::vector<uint8_t> mask : {std::vector<uint8_t>{0, 0, 0, 0}, {1, 1, 1, 1}, {1, 0, 0, 1}}) {
    for (AdapterMode mode : {AdapterMode::kBase, AdapterMode::kWeb, AdapterMode::kWrite}) {
      std::vector<float> y(T * out);
      PartialLinear(lw, x.data(), T, mask.data(), mode, y.data(), &pool);
      Mat ref = naive.Linear("model.layers.0.feed_forward.w1", Mat(x.begin(), x.end()), T, out, mask, mode);
      for (int64_t i = 0; i < T * out; ++i) ASSERT_NEAR(y[i], ref[i], 1e-5) << i;
    }
  }
  // The low-rank terms are not negligible here, so the test above can tell masked from unmasked rows.
  std::vector<float> base(T * out), with(T * out);
  std::vector<uint8_t> none(T, 0), all(T, 1);
  PartialLinear(lw, x.data(), T, none.data(), AdapterMode::kBase, base.data(), &pool);
  PartialLinear(lw, x.data(), T, all.data(), AdapterMode::kBase, with.data(), &pool);
  EXPECT_GT(testing::RelL2(with.data(), base.data(), T * out), 1e-3);
}

TEST(BindWeights, RanksComeFromShapesAndProblemsAreNamed) {
  ModelConfig mc = SmallConfig(16, 2, 1, 64, "");
  SyntheticOptions so;
  so.plora_rank = 3;
  so.web_rank = 0;  // no web adapter: web mode unavailable, the rest loads
  auto ck = MakeSyntheticCheckpoint(mc, so);
  auto w = BindWeights(mc, ck->tensors);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->text.layers[1].wo.plora.rank(), 3);
  EXPECT_FALSE(w->text.has_web);
  EXPECT_TRUE(w->text.has_write);
  EXPECT_TRUE(w->vision.present);

  auto missing = ck->tensors;
  missing.erase("model.layers.1.feed_forward.w2.weight");
  auto r = BindWeights(mc, missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.layers.1.feed_forward.w2.weight"), std::string::npos);

  auto wrong = ck->tensors;
  wrong["model.norm.weight"].shape = {15};
  r = BindWeights(mc, wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.norm.weight"), std::string::npos);

  auto extra = ck->tensors;
  extra["model.layers.2.attention_norm.weight"] = ck->tensors.at("model.norm.weight");
  r = BindWeights(mc, extra);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.layers.2.attention_norm.weight"), std::string::npos);

  auto ints = ck->tensors;
  ints["output.weight"].dtype = DType::kI32;
  EXPECT_FALSE(BindWeights(mc, ints).ok());

  auto half = ck->tensors;
  half.erase("model.layers.0.attention.wo.lora_sft_B.weight");
  EXPECT_FALSE(BindWeights(mc, half).ok());
}

TEST(Vision, TokenCountAndLayout) {
  VisionConfig v;
  EXPECT_EQ(ImageTokenCount(v, 3, 4), 5281);
  EXPECT_EQ(ImageTokenCount(v, 2, 2), 2061);
  EXPECT_EQ(ImageTokenCount(v, 1, 1), 841);
  EXPECT_EQ(ImageTokenCount(v, 20, 1), 8821);
}

// Values are a function of (seed, name, index): the same with or without a pool or vector instructions, whatever
// other tensors exist.
TEST(Synthetic, ValuesDependOnSeedAndNameOnly) {
  ModelConfig mc = SmallConfig(16, 2, 1, 64, "");
  mc.text.vocab_size = 5000;  // 80 000 embedding values: large enough to be filled in parallel
  SyntheticOptions so;
  so.vision = false;
  auto a = MakeSyntheticCheckpoint(mc, so);
  ThreadPool pool(3);
  auto b = MakeSyntheticCheckpoint(mc, so, &pool);
  so.web_rank = 0;
  auto c = [&] {
    ScopedIsaLimit scalar(Isa::kScalar);  // the portable loop gives the same values as the vector ones
    return MakeSyntheticCheckpoint(mc, so, &pool);
  }();
  so.seed = 2;
  auto d = MakeSyntheticCheckpoint(mc, so);
  EXPECT_EQ(SyntheticCheckpointBytes(mc, so), d->bytes);
  EXPECT_LT(c->tensors.size(), a->tensors.size());
  for (const auto& [name, t] : a->tensors) {
    ASSERT_EQ(std::memcmp(t.data, b->tensors.at(name).data, t.nbytes()), 0) << name;
    if (!c->tensors.count(name)) continue;  // the web adapter, left out of c and d
    EXPECT_EQ(std::memcmp(t.data, c->tensors.at(name).data, t.nbytes()), 0) << name;
    EXPECT_NE(std::memcmp(t.data, d->tensors.at(name).data, t.nbytes()), 0) << name;
  }
  // Weights uniform in [-0.08, 0.08) with both halves used, norms around 1.
  const std::vector<float> emb = ToF32(a->tensors.at("output.weight"));
  float lo = 1, hi = -1;
  for (float v : emb) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_LT(lo, -0.079f);
  EXPECT_GE(lo, -0.0801f);
  EXPECT_GT(hi, 0.079f);
  EXPECT_LE(hi, 0.0801f);
  for (float v : ToF32(a->tensors.at("model.norm.weight"))) EXPECT_NEAR(v, 1.0f, 0.2001f);
}

}  // namespace
}  // namespace ixc

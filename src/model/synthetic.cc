#include "model/synthetic.h"

#include <cstring>
#include <functional>
#include <new>

#include "core/status.h"
#include "kernels/cpu.h"

namespace ixc {

namespace {

// lowbias32 (Wellons' hash-prospector): a cheap 32-bit bijection with good avalanche. Only 32-bit integer ops, so
// the fill loops vectorise (SSE2 at baseline, AVX2 below): full-size checkpoints hold 8.7 G values.
inline uint32_t Hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Element i of a tensor is Hash32(i·mul + add); an odd per-tensor multiplier makes the tensors' streams unrelated
// rather than shifted copies of one sequence.
struct Key {
  uint32_t mul, add;
};

Key NameKey(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name, then splitmix64's mix with the seed
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001b3ull;
  uint64_t z = h ^ (seed * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return {static_cast<uint32_t>(z) | 1u, static_cast<uint32_t>(z >> 32)};
}

// F32ToBf16 without its NaN case (these values are finite), so that it vectorises.
inline uint16_t RoundToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// 24 bits of each hash give a uniform float in [lo, lo + width). Plain IEEE float arithmetic (the build does not
// contract it into FMAs), so the values are the same whatever instruction set runs the loop.
// Values i0..i1 of a tensor go to out[0, i1 - i0).
template <typename T, typename Convert>
inline void FillRange(Key k, uint32_t i0, uint32_t i1, float lo, float width, T* out, Convert convert) {
  constexpr float kUnit = 1.0f / 16777216.0f;
  for (uint32_t i = i0; i < i1; ++i) {
    const uint32_t h = Hash32(i * k.mul + k.add);
    out[i - i0] = convert(lo + width * (static_cast<float>(static_cast<int32_t>(h >> 8)) * kUnit));
  }
}

inline void FillTyped(DType dt, Key k, uint32_t i0, uint32_t i1, float lo, float width, void* out) {
  if (dt == DType::kF32) {
    FillRange(k, i0, i1, lo, width, static_cast<float*>(out), [](float v) { return v; });
  } else if (dt == DType::kBF16) {
    FillRange(k, i0, i1, lo, width, static_cast<uint16_t*>(out), RoundToBf16);
  } else {
    FillRange(k, i0, i1, lo, width, static_cast<uint16_t*>(out), F32ToF16);
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void FillAvx2(DType dt, Key k, uint32_t i0, uint32_t i1, float lo, float width,
                                               void* out) {
  FillTyped(dt, k, i0, i1, lo, width, out);
}
#endif

void Fill(DType dt, Key k, uint32_t i0, uint32_t i1, float lo, float width, void* out) {
#if defined(__x86_64__)
  if (ActiveIsa() >= Isa::kAvx2) return FillAvx2(dt, k, i0, i1, lo, width, out);
#endif
  FillTyped(dt, k, i0, i1, lo, width, out);
}

// Fills values [first, first + n) of a tensor into out[0, n), in parallel when there are enough of them to be worth
// waking the pool.
void FillAll(DType dt, Key k, int64_t first, int64_t n, float lo, float width, void* out, ThreadPool* pool) {
  IXC_DCHECK(first + n <= (int64_t{1} << 32));  // element indices are hashed as 32-bit counters
  auto fill = [&](int64_t b, int64_t e, int) {
    auto* o = static_cast<uint8_t*>(out) + StorageBytes(dt, b);
    Fill(dt, k, static_cast<uint32_t>(first + b), static_cast<uint32_t>(first + e), lo, width, o);
  };
  if (pool && n >= (int64_t{1} << 16)) {
    pool->ParallelFor(n, fill);
  } else {
    fill(0, n, 0);
  }
}

// n values (a multiple of 32) quantised to a block type, blocks split across the pool.
void QuantizeAll(DType t, const float* x, uint8_t* out, int64_t n, ThreadPool* pool) {
  const int64_t per = DTypeBlockValues(t), blocks = n / per;
  auto run = [&](int64_t b0, int64_t b1, int) {
    QuantizeBlocks(t, x + b0 * per, out + b0 * DTypeBlockBytes(t), (b1 - b0) * per);
  };
  if (pool && blocks >= 4096) {
    pool->ParallelFor(blocks, run);
  } else {
    run(0, blocks, 0);
  }
}

DType BaseFloat(WeightType t) {
  return t == WeightType::kF32 ? DType::kF32 : t == WeightType::kF16 ? DType::kF16 : DType::kBF16;
}

class Builder {
 public:
  Builder(SyntheticCheckpoint* ck, const SyntheticOptions& o, ThreadPool* pool) : ck_(ck), o_(o), pool_(pool) {}

  // center ± scale, stored in `dtype` (block types: generated as f32 a slab at a time, then quantised).
  void Add(const std::string& name, Shape shape, float center, float scale, DType dtype) {
    if (scale < 0) scale = o_.scale;
    const int64_t n = NumElements(shape);
    const size_t bytes = static_cast<size_t>(StorageBytes(dtype, n));
    // Uninitialised on purpose: the fill below is the first touch, so the page faults are spread over the pool.
    auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!buf) throw std::bad_alloc();  // the public entry points report it (CatchAllocationFailure)
    ck_->storage.emplace_back(buf);
    ck_->bytes += static_cast<int64_t>(bytes);
    const Key key = NameKey(o_.seed, name);
    if (IsBlockType(dtype)) {
      constexpr int64_t kSlab = int64_t{1} << 22;  // values per slab (a multiple of the 32-value block)
      std::vector<float> f32(static_cast<size_t>(std::min(n, kSlab)));
      for (int64_t i0 = 0; i0 < n; i0 += kSlab) {
        const int64_t m = std::min(kSlab, n - i0);
        FillAll(DType::kF32, key, i0, m, center - scale, 2 * scale, f32.data(), pool_);
        QuantizeAll(dtype, f32.data(), buf + StorageBytes(dtype, i0), m, pool_);
      }
    } else {
      FillAll(dtype, key, 0, n, center - scale, 2 * scale, buf, pool_);
    }
    ck_->tensors[name] = TensorView{dtype, std::move(shape), buf};
  }

 private:
  SyntheticCheckpoint* ck_;
  const SyntheticOptions& o_;
  ThreadPool* pool_;
};

// Every tensor of the checkpoint, in one place for both the generator and the size estimate.
using AddFn = std::function<void(const std::string& name, Shape shape, float center, float scale)>;

void ForEachTensor(const ModelConfig& mc, const SyntheticOptions& o, const AddFn& add) {
  const DecoderConfig& c = mc.text;
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  add("model.tok_embeddings.weight", {V, D}, 0.f, 1.0f);
  add("model.norm.weight", {D}, 1.f, 0.2f);
  add("output.weight", {V, D}, 0.f, -1.f);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = StrFormat("model.layers.%lld.", (long long)i);
    add(p + "attention_norm.weight", {D}, 1.f, 0.2f);
    add(p + "ffn_norm.weight", {D}, 1.f, 0.2f);
    struct { const char* name; int64_t out, in; } lin[] = {{"attention.wqkv", c.qkv_dim(), D},
                                                           {"attention.wo", D, c.num_attention_heads * c.head_dim()},
                                                           {"feed_forward.w1", F, D},
                                                           {"feed_forward.w3", F, D},
                                                           {"feed_forward.w2", D, F}};
    for (const auto& l : lin) {
      const std::string base = p + l.name;
      add(base + ".weight", {l.out, l.in}, 0.f, -1.f);
      for (auto [kind, r] : {std::pair{"Plora", o.plora_rank}, {"lora_web", o.web_rank}, {"lora_sft", o.sft_rank},
                             {"lora_dpo", o.dpo_rank}}) {
        if (r <= 0) continue;
        add(base + "." + kind + "_A.weight", {r, l.in}, 0.f, -1.f);
        add(base + "." + kind + "_B.weight", {l.out, r}, 0.f, -1.f);
      }
    }
  }
  if (o.vision) {
    const VisionConfig& v = mc.vision;
    const std::string p = "vit.vision_tower.vision_model.";
    const int64_t H = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
    add(p + "embeddings.patch_embedding.weight", {H, v.num_channels, P, P}, 0.f, -1.f);
    add(p + "embeddings.class_embedding", {H}, 0.f, 0.5f);
    add(p + "embeddings.position_embedding.weight", {v.num_patches() + 1, H}, 0.f, 0.5f);
    add(p + "pre_layrnorm.weight", {H}, 1.f, 0.2f);
    add(p + "pre_layrnorm.bias", {H}, 0.f, -1.f);
    for (int64_t k = 0; k < v.num_hidden_layers; ++k) {
      const std::string q = p + StrFormat("encoder.layers.%lld.", (long long)k);
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        add(q + "self_attn." + proj + ".weight", {H, H}, 0.f, -1.f);
        add(q + "self_attn." + proj + ".bias", {H}, 0.f, -1.f);
      }
      add(q + "layer_norm1.weight", {H}, 1.f, 0.2f);
      add(q + "layer_norm1.bias", {H}, 0.f, -1.f);
      add(q + "layer_norm2.weight", {H}, 1.f, 0.2f);
      add(q + "layer_norm2.bias", {H}, 0.f, -1.f);
      add(q + "mlp.fc1.weight", {I, H}, 0.f, -1.f);
      add(q + "mlp.fc1.bias", {I}, 0.f, -1.f);
      add(q + "mlp.fc2.weight", {H, I}, 0.f, -1.f);
      add(q + "mlp.fc2.bias", {H}, 0.f, -1.f);
    }
    add("vision_proj.0.weight", {D, v.merged_dim()}, 0.f, -1.f);
    add("vision_proj.0.bias", {D}, 0.f, -1.f);
    add("vision_proj.2.weight", {D, D}, 0.f, -1.f);
    add("vision_proj.2.bias", {D}, 0.f, -1.f);
    add("plora_glb_GN", {1, 1, v.merged_dim()}, 0.f, 0.5f);
    add("plora_sub_GN", {1, 1, 1, v.merged_dim()}, 0.f, 0.5f);
  }
}

}  // namespace

std::unique_ptr<SyntheticCheckpoint> MakeSyntheticCheckpoint(const ModelConfig& mc, const SyntheticOptions& o,
                                                             ThreadPool* pool) {
  auto ck = std::make_unique<SyntheticCheckpoint>();
  Builder b(ck.get(), o, pool);
  ForEachTensor(mc, o, [&](const std::string& name, Shape shape, float center, float scale) {
    const DType t = StoredTypeFor(o.type, name, shape, BaseFloat(o.type));
    b.Add(name, std::move(shape), center, scale, t);
  });
  return ck;
}

void FillSyntheticUniform(uint64_t seed, const std::string& name, float lo, float hi, float* out, int64_t n,
                          ThreadPool* pool) {
  FillAll(DType::kF32, NameKey(seed, name), 0, n, lo, hi - lo, out, pool);
}

int64_t SyntheticCheckpointBytes(const ModelConfig& mc, const SyntheticOptions& o) {
  int64_t bytes = 0;
  ForEachTensor(mc, o, [&](const std::string& name, Shape shape, float, float) {
    bytes += StorageBytes(StoredTypeFor(o.type, name, shape, BaseFloat(o.type)), NumElements(shape));
  });
  return bytes;
}

}  // namespace ixc

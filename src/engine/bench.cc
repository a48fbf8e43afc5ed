// ixc bench (include/ixc/bench.h): the machine probes, the model build, and one function per stage. Each stage
// drives the model functions the way Session and BuildPrompt do, so what it times is what a request costs.
#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "engine/decode_batcher.h"
#include "engine/memory_estimate.h"
#include "engine/model_impl.h"
#include "ixc/bench.h"
#include "ixc/ixc.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/probe.h"
#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/synthetic.h"
#include "model/vision.h"
#include "text/chat_format.h"

namespace ixc {

// ---- work counts ------------------------------------------------------------------------------------------------

double PrefillFlop(const DecoderConfig& c, int64_t tokens, int64_t image_rows, int64_t plora_rank, int64_t chunk) {
  const double D = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
  const double qkv = static_cast<double>(c.qkv_dim());
  const double heads = static_cast<double>(c.num_attention_heads * c.head_dim());
  const double L = static_cast<double>(c.num_hidden_layers), T = static_cast<double>(tokens);
  // Multiply-adds per row per layer.
  const double linears = D * qkv + heads * D + 3 * D * F;
  const double lora = static_cast<double>(plora_rank) * ((D + qkv) + (heads + D) + 2 * (D + F) + (F + D));
  // Row p attends to p + 1 keys: q·k and the weighted sum of v, per query head.
  const double attention = 2 * heads * T * (T + 1) / 2;
  const double chunks = static_cast<double>((tokens + chunk - 1) / chunk);
  const double head = chunks * static_cast<double>(c.vocab_size) * D;
  return 2 * (L * (T * linears + static_cast<double>(image_rows) * lora + attention) + head);
}

double ClipViewFlop(const VisionConfig& v) {
  const double H = static_cast<double>(v.hidden_size), I = static_cast<double>(v.intermediate_size);
  const double Np = static_cast<double>(v.num_patches()), N = Np + 1;
  const double patch = Np * H * static_cast<double>(v.num_channels * v.patch_size * v.patch_size);
  const double layer = N * (4 * H * H + 2 * H * I) + 2 * N * N * H;
  return 2 * (patch + static_cast<double>(v.num_hidden_layers) * layer);
}

double ProjectorFlop(const ModelConfig& c, int64_t tokens) {
  const double D = static_cast<double>(c.text.hidden_size), M = static_cast<double>(c.vision.merged_dim());
  return 2 * static_cast<double>(tokens) * (M * D + D * D);
}

BenchWork ComputeBenchWork(const ModelConfig& c, int64_t plora_rank, int64_t text_tokens) {
  constexpr int64_t kChunk = 512, kPrompt = 512;
  const int64_t views = 1 + kBenchGridRows * kBenchGridCols;
  BenchWork w;
  w.image_tokens = ImageTokenCount(c.vision, kBenchGridRows, kBenchGridCols);
  w.image_prompt_tokens = w.image_tokens + text_tokens;
  w.prefill_flop_per_token = PrefillFlop(c.text, kPrompt, 0, plora_rank, kChunk) / kPrompt;
  const double projector = ProjectorFlop(c, w.image_tokens);
  w.vit_flop_per_tile = ClipViewFlop(c.vision) + projector / static_cast<double>(views);
  w.image_prompt_flop = static_cast<double>(views) * ClipViewFlop(c.vision) + projector +
                        PrefillFlop(c.text, w.image_prompt_tokens, w.image_tokens, plora_rank, kChunk);
  return w;
}

int64_t DecodeWeightBytes(const DecoderWeights& w) {
  int64_t bytes = 0;
  for (const DecoderLayerWeights& L : w.layers) {
    for (const LinearWeights* lw : {&L.wqkv, &L.wo, &L.w1, &L.w2, &L.w3}) {
      bytes += static_cast<int64_t>(lw->weight.nbytes());
    }
    bytes += static_cast<int64_t>((L.attention_norm.size() + L.ffn_norm.size()) * sizeof(float));
  }
  bytes += static_cast<int64_t>(w.norm.size() * sizeof(float));
  bytes += static_cast<int64_t>(w.output.nbytes());
  bytes += StorageBytes(w.tok_embeddings.dtype, w.tok_embeddings.dim(1));
  return bytes;
}

// ---- stage names ------------------------------------------------------------------------------------------------

namespace {
constexpr BenchStage kAllStages[] = {BenchStage::kVit, BenchStage::kPrefill, BenchStage::kImage, BenchStage::kDecode,
                                     BenchStage::kDecode16k, BenchStage::kDecodeX4};
}  // namespace

const char* BenchStageName(BenchStage s) {
  switch (s) {
    case BenchStage::kVit: return "vit";
    case BenchStage::kPrefill: return "prefill";
    case BenchStage::kImage: return "image";
    case BenchStage::kDecode: return "decode";
    case BenchStage::kDecode16k: return "decode16k";
    case BenchStage::kDecodeX4: return "decodex4";
  }
  return "?";
}

Result<std::vector<BenchStage>> ParseBenchStages(std::string_view list) {
  std::vector<BenchStage> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string_view name = list.substr(pos, comma - pos);
    bool found = false;
    for (BenchStage s : kAllStages) {
      if (name == BenchStageName(s)) {
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
        found = true;
      }
    }
    if (!found) {
      return InvalidArgument(StrFormat("unknown stage '%.*s' (vit, prefill, image, decode, decode16k, decodex4)",
                                       static_cast<int>(name.size()), name.data()));
    }
    pos = comma + 1;
  }
  return out;
}

// ---- the run ----------------------------------------------------------------------------------------------------

namespace {

constexpr int64_t kChunk = 512;             // prompt rows per DecoderForward, as Session's prefill
constexpr int64_t kPrefillTokens = 512;
constexpr int64_t kDecodeContext16k = 16384;
constexpr int kDecodeStreams = 4;  // the decodex4 stage's
constexpr double kRepeatBelowS = 2.0;       // stages shorter than this are repeated (see MedianRun)
constexpr int64_t kDefaultProbeBytes = int64_t{1} << 30;

bool Has(const std::vector<BenchStage>& v, BenchStage s) { return std::find(v.begin(), v.end(), s) != v.end(); }


std::string Gb(double bytes) {
  return bytes >= 1e9 ? StrFormat("%.1f GB", bytes / 1e9) : StrFormat("%.0f MB", bytes / 1e6);
}

// Runs a stage once; when that took under kRepeatBelowS it was a warm-up (allocator, page faults, caches), and the
// figure is the median of up to three more runs. Long stages (the real shapes) run once.
template <typename T>
T MedianRun(const std::function<T()>& run, double (*seconds)(const T&)) {
  T first = run();
  if (seconds(first) >= kRepeatBelowS) return first;
  std::vector<T> runs;
  double total = 0;
  while (runs.size() < 3 && total < kRepeatBelowS) {
    runs.push_back(run());
    total += seconds(runs.back());
  }
  std::sort(runs.begin(), runs.end(), [&](const T& a, const T& b) { return seconds(a) < seconds(b); });
  return runs[runs.size() / 2];
}

class Runner {
 public:
  Runner(const BenchOptions& o, const BenchProgress& progress, ThreadPool* pool)
      : o_(o), progress_(progress), pool_(pool) {}

  void Say(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!progress_) return;
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    progress_(buf);
  }

  // Prefills `embeds` (T rows) into `cache` in chunks with the whole prompt's RoPE length, as Session does.
  void Prefill(const ModelImpl& m, const float* embeds, const uint8_t* mask, int64_t T, KvCache* cache,
               float* logits, const char* stage) {
    const DecoderConfig& c = m.config.text;
    const int64_t chunks = (T + kChunk - 1) / kChunk;
    for (int64_t s = 0, k = 0; s < T; s += kChunk, ++k) {
      if (chunks > 1) Say("%s: prefill chunk %lld/%lld", stage, (long long)(k + 1), (long long)chunks);
      DecoderStep step;
      step.embeds = embeds + s * c.hidden_size;
      step.num_rows = std::min(kChunk, T - s);
      step.image_mask = mask ? mask + s : nullptr;
      step.cache = cache;
      step.rope_length = T;
      step.no_logits = s + step.num_rows < T;  // only the last row's logits are used
      DecoderForward(c, m.weights.text, step, pool_, logits);
    }
  }

  double RunPrefill(const ModelImpl& m) {
    const DecoderConfig& c = m.config.text;
    std::vector<int> ids = RandomIds(c.vocab_size, kPrefillTokens, "prefill.ids");
    std::vector<float> logits(c.vocab_size);
    const auto t0 = Clock::now();
    std::vector<float> embeds(kPrefillTokens * c.hidden_size);
    EmbedTokens(m.weights.text, ids.data(), kPrefillTokens, embeds.data());
    KvCache cache(c.num_hidden_layers, c.kv_dim(), KvType(), kPrefillTokens);
    Prefill(m, embeds.data(), nullptr, kPrefillTokens, &cache, logits.data(), "prefill");
    return SecondsSince(t0);
  }

  // A cache holding `context` positions of random keys and values, with room for `extra` more.
  KvCache FilledCache(const DecoderConfig& c, int64_t context, int64_t extra) {
    // Room for every step up front, as Session allocates prompt + reply, so no step reallocates the cache.
    KvCache cache(c.num_hidden_layers, c.kv_dim(), KvType(), context + extra);
    cache.Reserve(context);
    std::vector<float> rows(context * c.kv_dim());
    for (int64_t l = 0; l < c.num_hidden_layers && context > 0; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        FillSyntheticUniform(o_.seed, StrFormat("kv.%d.%lld", kv, (long long)l), -1.f, 1.f, rows.data(),
                             context * c.kv_dim(), pool_);
        StoreAs(cache.dtype(), rows.data(), kv == 0 ? cache.k(l, 0) : cache.v(l, 0), context * c.kv_dim());
      }
    }
    cache.Commit(context);
    return cache;
  }

  // Tokens per second of greedy single-token steps after `context` positions of random keys and values.
  double RunDecode(const ModelImpl& m, int64_t context, const char* stage) {
    const DecoderConfig& c = m.config.text;
    const int steps = o_.decode_tokens;
    Say("%s: filling the KV cache to %lld positions", stage, (long long)context);
    KvCache cache = FilledCache(c, context, steps + 1);
    int id = RandomIds(c.vocab_size, 1, "decode.first")[0];
    std::vector<float> embed(c.hidden_size), logits(c.vocab_size);
    auto step = [&]() {
      EmbedTokens(m.weights.text, &id, 1, embed.data());
      DecoderStep ds;
      ds.embeds = embed.data();
      ds.num_rows = 1;
      ds.cache = &cache;
      DecoderForward(c, m.weights.text, ds, pool_, logits.data());
      id = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    };
    step();  // untimed: first touch of this cache's new row, caches
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      Say("%s: token %d/%d", stage, i + 1, steps);
      step();
    }
    return steps / SecondsSince(t0);
  }

  // Aggregate tokens per second of `streams` greedy streams, each on its own thread with its own cache of `context`
  // positions, their steps batched by a DecodeGroup's rendezvous as ixc serve's slots are.
  double RunDecodeStreams(const ModelImpl& m, int64_t context, int streams, const char* stage) {
    const DecoderConfig& c = m.config.text;
    const int steps = o_.decode_tokens;
    Say("%s: filling %d KV caches to %lld positions", stage, streams, (long long)context);
    std::vector<KvCache> caches;
    for (int i = 0; i < streams; ++i) caches.push_back(FilledCache(c, context, steps + 1));
    // Every stream is a member from the start, so the first step is batched too; members never wait for anything
    // but each other (a member that stopped stepping would hold the rest).
    DecodeGroup group;
    for (int i = 0; i < streams; ++i) group.batcher().Join();
    Clock::time_point t0;
    auto stream = [&](int i) {
      int id = RandomIds(c.vocab_size, streams, "decode.streams")[i];
      std::vector<float> embed(c.hidden_size), logits(c.vocab_size);
      Workspace ws;
      for (int k = 0; k <= steps; ++k) {
        EmbedTokens(m.weights.text, &id, 1, embed.data());
        DecoderStep ds;
        ds.embeds = embed.data();
        ds.num_rows = 1;
        ds.cache = &caches[i];
        ds.workspace = &ws;
        group.batcher().Step(m, ds, pool_, logits.data());
        id = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        // Step 0 is untimed, as in RunDecode; the steps finish together, so stream 0's clock serves all.
        if (i == 0 && k == 0) t0 = Clock::now();
        if (i == 0 && k > 0) Say("%s: step %d/%d", stage, k, steps);
      }
      group.batcher().Leave();
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < streams; ++i) threads.emplace_back(stream, i);
    for (auto& t : threads) t.join();
    return static_cast<double>(streams) * steps / SecondsSince(t0);
  }

  struct ImageTimes {
    double encode_s = 0, prefill_s = 0;
    double total() const { return encode_s + prefill_s; }
  };

  // Encodes the 7 views together (EncodeImage), then, when `prefill`, lays out the prompt as BuildPrompt does
  // (text part 0 with BOS, the image rows flagged for Partial LoRA, text part 1) and prefills it.
  ImageTimes RunImage(const ModelImpl& m, const std::vector<std::vector<int>>& text, bool prefill, const char* stage) {
    const DecoderConfig& c = m.config.text;
    const VisionConfig& v = m.config.vision;
    const int64_t nviews = 1 + kBenchGridRows * kBenchGridCols, D = c.hidden_size;
    std::vector<std::vector<float>> views(nviews);
    std::vector<const float*> ptrs;
    for (int64_t i = 0; i < nviews; ++i) {
      // Normalised pixels span about [-1.79, 2.15] with the CLIP mean and std.
      views[i].resize(v.num_channels * v.image_size * v.image_size);
      FillSyntheticUniform(o_.seed, StrFormat("view.%lld", (long long)i), -1.79f, 2.15f, views[i].data(),
                           static_cast<int64_t>(views[i].size()), pool_);
      ptrs.push_back(views[i].data());
    }
    ImageTimes r;
    Say("%s: encoding %lld views", stage, (long long)nviews);
    auto t0 = Clock::now();
    std::vector<float> tokens;
    EncodeImage(m.config, m.weights.vision, ptrs, kBenchGridRows, kBenchGridCols, pool_, &tokens);
    r.encode_s = SecondsSince(t0);
    if (!prefill) return r;

    t0 = Clock::now();
    const int64_t n_img = static_cast<int64_t>(tokens.size()) / D;
    const int64_t T = static_cast<int64_t>(text[0].size() + text[1].size()) + n_img;
    std::vector<float> embeds(T * D);
    std::vector<uint8_t> mask(T, 0);
    int64_t row = 0;
    EmbedTokens(m.weights.text, text[0].data(), static_cast<int64_t>(text[0].size()), &embeds[0]);
    row += static_cast<int64_t>(text[0].size());
    std::memcpy(&embeds[row * D], tokens.data(), tokens.size() * sizeof(float));
    std::fill(mask.begin() + row, mask.begin() + row + n_img, 1);
    row += n_img;
    EmbedTokens(m.weights.text, text[1].data(), static_cast<int64_t>(text[1].size()), &embeds[row * D]);
    KvCache cache(c.num_hidden_layers, c.kv_dim(), KvType(), T);
    std::vector<float> logits(c.vocab_size);
    Prefill(m, embeds.data(), mask.data(), T, &cache, logits.data(), stage);
    r.prefill_s = SecondsSince(t0);
    return r;
  }

  std::vector<int> RandomIds(int64_t vocab, int64_t n, const std::string& name) {
    std::vector<float> u(n);
    FillSyntheticUniform(o_.seed, name, 0.f, 1.f, u.data(), n);
    std::vector<int> ids(n);
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = std::min(static_cast<int>(u[i] * static_cast<float>(vocab)), static_cast<int>(vocab - 1));
    }
    return ids;
  }

  // The KV cache type a Session of this precision uses.
  DType KvType() const { return KvDType(o_.precision, o_.kv_type); }

 private:
  const BenchOptions& o_;
  const BenchProgress& progress_;
  ThreadPool* pool_;
};

// The quantised types lay the tensors out as `ixc convert` does (model/weight_types.h).
Result<WeightType> ParseType(const std::string& t) {
  WeightType type;
  if (!ParseWeightType(t, &type)) return InvalidArgument("unknown type '" + t + "' (bf16, f16, f32, q8_0 or q4_0)");
  return type;
}

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The text around the image for the image stage: [BOS + part 0] and part 1 of the chat template split at the
// image, tokenised when the model has a tokenizer, else random ids of the IXC-2.5 tokenizer's counts.
Result<std::vector<std::vector<int>>> QuestionText(const ModelImpl& m, Runner* runner) {
  std::vector<std::vector<int>> text(2);
  if (m.tokenizer) {
    const std::string prompt = BuildChatPrompt("", {}, kBenchQuestion);
    IXC_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitForImages(prompt, 1));
    text[0].push_back(m.tokenizer->bos_id());
    for (size_t k = 0; k < 2; ++k) {
      if (parts[k].empty()) continue;
      std::vector<int> ids = m.tokenizer->Encode(parts[k]);
      text[k].insert(text[k].end(), ids.begin(), ids.end());
    }
    return text;
  }
  text[0] = {1};
  text[1] = runner->RandomIds(m.config.text.vocab_size, kBenchQuestionTextTokens - 1, "image.text");
  return text;
}

// Reads one byte per page of the weights the stages multiply, so a mapped checkpoint is in memory before anything is
// timed.
void TouchWeights(const ModelWeights& w, ThreadPool* pool) {
  std::vector<const TensorView*> views;
  const DecoderWeights& t = w.text;
  // Not the embedding table: a request reads only its tokens' rows (they fault in as the stages embed them), and
  // the whole table would add its size to peak_rss_mb.
  views.push_back(&t.output);
  for (const DecoderLayerWeights& L : t.layers) {
    for (const LinearWeights* lw : {&L.wqkv, &L.wo, &L.w1, &L.w2, &L.w3}) {
      for (const TensorView* v : {&lw->weight, &lw->plora.a, &lw->plora.b}) views.push_back(v);
    }
  }
  if (w.vision.present) {
    const VisionWeights& v = w.vision;
    for (const TensorView* x : {&v.patch_embedding, &v.proj0_w, &v.proj2_w}) views.push_back(x);
    for (const VisionLayerWeights& L : v.layers)
      for (const TensorView* x : {&L.q_w, &L.k_w, &L.v_w, &L.out_w, &L.fc1_w, &L.fc2_w}) views.push_back(x);
  }
  std::vector<unsigned> sums(pool->num_threads());
  pool->ParallelFor(static_cast<int64_t>(views.size()), [&](int64_t b, int64_t e, int tid) {
    unsigned s = 0;
    for (int64_t i = b; i < e; ++i) {
      const TensorView* v = views[i];
      if (!v->valid()) continue;
      const auto* p = static_cast<const volatile uint8_t*>(v->data);
      for (size_t off = 0; off < v->nbytes(); off += 4096) s += p[off];
    }
    sums[tid] += s;
  });
}

double PeakRssMb() {
  struct rusage ru = {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// Memory a synthetic group needs: its weights, the largest KV cache among its stages, and scratch.
int64_t GroupBytes(const ModelConfig& c, const SyntheticOptions& so, const std::vector<BenchStage>& stages,
                   int decode_tokens, int64_t decode_context, int threads, int64_t image_prompt_tokens,
                   DType kv_type) {
  const DecoderConfig& t = c.text;
  const int64_t kv_row = KvBytesPerToken(t, kv_type);
  int64_t rows = 0, bytes = SyntheticCheckpointBytes(c, so);
  if (Has(stages, BenchStage::kPrefill)) rows = std::max(rows, kPrefillTokens);
  if (Has(stages, BenchStage::kImage)) rows = std::max(rows, image_prompt_tokens);
  if (Has(stages, BenchStage::kDecode)) rows = std::max(rows, decode_context + decode_tokens + 1);
  if (Has(stages, BenchStage::kDecode16k)) rows = std::max(rows, kDecodeContext16k + decode_tokens + 1);
  if (Has(stages, BenchStage::kDecodeX4)) rows = std::max(rows, kDecodeStreams * (decode_context + decode_tokens + 1));
  bytes += rows * kv_row;
  // One chunk's activations (DecoderForward's x, h, qkv, attention, o, gate, up) and the logits.
  bytes += kChunk * (4 * t.hidden_size + t.qkv_dim() + 2 * t.intermediate_size) * 4 + t.vocab_size * 4;
  if (so.vision) {
    const VisionConfig& v = c.vision;
    const int64_t n = v.num_patches() + 1, views = 1 + kBenchGridRows * kBenchGridCols;
    const int64_t in_flight = std::min<int64_t>(threads, views);
    bytes += views * v.num_channels * v.image_size * v.image_size * 4;                          // pixels
    bytes += in_flight * n * (7 * v.hidden_size + v.intermediate_size) * 4;                     // CLIP scratch
    bytes += views * v.num_patches() * v.hidden_size * 4;                                       // features
    bytes += image_prompt_tokens * (v.merged_dim() + 2 * t.hidden_size) * 4;                    // merged, tokens, embeds
  }
  return bytes;
}

}  // namespace

static Result<BenchReport> RunBenchImpl(const BenchOptions& o, const BenchProgress& progress) {
  const bool synthetic = o.model_dir.empty();
  if (!synthetic && (!o.config_path.empty() || o.layers > 0 || o.vit_layers > 0)) {
    return InvalidArgument("a config file, --layers and --vit-layers apply to synthetic weights only");
  }
  if (o.layers < 0 || o.vit_layers < 0) return InvalidArgument("layer counts must be positive (0: the config's)");
  if (o.threads < 0 || o.threads > 1024) return InvalidArgument("threads must be between 1 and 1024");
  if (o.decode_tokens < 1 || o.decode_tokens > 100000) return InvalidArgument("decode tokens must be between 1 and 100000");
  if (o.decode_context < 0 || o.decode_context > (int64_t{1} << 20)) {
    return InvalidArgument("decode context must be between 0 and 1048576 positions");
  }
  if (o.probe_bytes < 0) return InvalidArgument("the probe buffer size must be positive");
  WeightType type = WeightType::kBF16;
  if (synthetic) {
    IXC_ASSIGN_OR_RETURN(type, ParseType(o.type));
  }

  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The pool Sessions of this thread count use.
  const std::shared_ptr<ThreadPool> shared_pool = SharedThreadPool(threads);
  ThreadPool& pool = *shared_pool;
  Runner runner(o, progress, &pool);
  BenchReport r;
  r.threads = threads;
  r.precision = PrecisionName(o.precision);
  r.kv_type = Lower(DTypeName(runner.KvType()));
  r.cpu = CpuDescription();
  r.decode_tokens = o.decode_tokens;
  r.decode_context = o.decode_context;
  r.decode_context_16k = kDecodeContext16k;
  r.prefill_tokens = kPrefillTokens;

  const int64_t available_at_start = AvailableMemoryBytes();
  // The machine's limits, before any weights exist so that the probe buffer is never extra memory.
  int64_t probe_bytes = o.probe_bytes;
  if (probe_bytes == 0) {
    probe_bytes = kDefaultProbeBytes;
    if (available_at_start > 0) probe_bytes = std::max<int64_t>(64 << 20, std::min(probe_bytes, available_at_start / 4));
  }
  runner.Say("measuring read bandwidth (%s)", Gb(static_cast<double>(probe_bytes)).c_str());
  const BandwidthProbe bw = ProbeReadBandwidth(&pool, probe_bytes);
  r.bandwidth_gbs = r.bandwidth_gbs_start = bw.gbs;
  r.bandwidth_probe_bytes = bw.bytes;
  runner.Say("measuring arithmetic peaks");
  const std::vector<PeakProbe> peaks = ProbePeakFlops(&pool);
  for (const PeakProbe& p : peaks) r.peaks.push_back({p.kind, p.gflops});
  if (const PeakProbe* best = PeakForIsa(peaks, ActiveIsa())) {
    r.peak_gflops = best->gflops;
    r.peak_kind = best->kind;
  }

  // The shapes: a real folder's own (loaded now; the weights stay mapped), or the synthetic ones.
  ModelConfig config;
  std::unique_ptr<Model> real;
  if (!synthetic) {
    runner.Say("loading %s", o.model_dir.c_str());
    const auto t0 = Clock::now();
    LoadOptions lo;
    lo.model_dir = o.model_dir;
    lo.check_weights = o.check_weights;
    IXC_ASSIGN_OR_RETURN(real, Model::Load(lo));
    runner.Say("reading the weights into memory");
    TouchWeights(real->impl().weights, &pool);
    r.setup_s += SecondsSince(t0);
    config = real->impl().config;
    r.model_layers = config.text.num_hidden_layers;
    r.model_vit_layers = config.vision.num_hidden_layers;
    r.model = o.model_dir;
    r.type = Lower(DTypeName(real->impl().weights.text.layers.at(0).wqkv.weight.dtype));
  } else {
    if (!o.config_path.empty()) {
      IXC_ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.config_path, 16u << 20));
      IXC_ASSIGN_OR_RETURN(config, ParseModelConfig(text, o.config_path));
    }
    r.model_layers = config.text.num_hidden_layers;
    r.model_vit_layers = config.vision.num_hidden_layers;
    if (o.layers > 0) config.text.num_hidden_layers = o.layers;
    if (o.vit_layers > 0) config.vision.num_hidden_layers = o.vit_layers;
    r.model = "synthetic";
    r.type = o.type;
  }
  r.layers = config.text.num_hidden_layers;
  const bool has_vision = synthetic || real->impl().weights.vision.present;
  r.vit_layers = has_vision ? config.vision.num_hidden_layers : 0;

  // Stages: the ones asked for, in a fixed order; by default all the model can run.
  for (BenchStage s : kAllStages) {
    const bool vision_stage = s == BenchStage::kVit || s == BenchStage::kImage;
    if (o.stages.empty()) {
      if (!vision_stage || has_vision) r.stages.push_back(s);
    } else if (Has(o.stages, s)) {
      if (vision_stage && !has_vision) {
        return FailedPrecondition(StrFormat("stage '%s' needs a vision tower, which %s does not have", BenchStageName(s),
                                            o.model_dir.c_str()));
      }
      r.stages.push_back(s);
    }
  }
  const bool run_vit = Has(r.stages, BenchStage::kVit), run_image = Has(r.stages, BenchStage::kImage);
  const bool run_text = Has(r.stages, BenchStage::kPrefill) || Has(r.stages, BenchStage::kDecode) ||
                        Has(r.stages, BenchStage::kDecode16k) || Has(r.stages, BenchStage::kDecodeX4);

  if (runner.KvType() == DType::kQ8_0 && config.text.head_dim() % kQ8Block != 0) {
    return InvalidArgument(StrFormat("a q8_0 KV cache needs a head size that is a multiple of 32; this model's is %lld",
                                     (long long)config.text.head_dim()));
  }

  // Partial LoRA rank: the real checkpoint's (256 in IXC-2.5), which synthetic weights copy. The question's text
  // tokens are recounted with a real model's tokenizer once the image stage runs.
  int64_t plora_rank = kRealPloraRank;
  if (real && real->impl().weights.text.has_plora) plora_rank = real->impl().weights.text.layers.at(0).wqkv.plora.rank();
  BenchWork work = ComputeBenchWork(config, plora_rank, kBenchQuestionTextTokens);

  // Synthetic weights are built per group of stages so that each holds only what its stages use: the decoder
  // alone for prefill and decode (the 16k KV cache is 4.3 GB at the real shape), + the vision tower and Partial
  // LoRA for the vit and image stages. Check that the larger group fits before generating anything.
  SyntheticOptions text_so, vision_so;
  text_so.seed = vision_so.seed = o.seed;
  text_so.type = vision_so.type = type;
  text_so.web_rank = text_so.sft_rank = text_so.dpo_rank = 0;
  vision_so.web_rank = vision_so.sft_rank = vision_so.dpo_rank = 0;
  text_so.plora_rank = 0;
  text_so.vision = false;
  if (o.one_model) {
    text_so.plora_rank = kRealPloraRank;
    text_so.vision = true;
  }
  vision_so.plora_rank = kRealPloraRank;  // a checkpoint with a vision tower must have Partial LoRA (the binder checks)
  vision_so.vision = true;
  const int64_t available = AvailableMemoryBytes();
  if (synthetic) {
    std::vector<BenchStage> text_stages, vision_stages;
    for (BenchStage s : r.stages) {
      (s == BenchStage::kVit || s == BenchStage::kImage ? vision_stages : text_stages).push_back(s);
    }
    const DType kv = runner.KvType();
    const int64_t need_text = run_text ? GroupBytes(config, text_so, text_stages, o.decode_tokens, o.decode_context, threads, 0, kv) : 0;
    const int64_t need_vision = run_vit || run_image ? GroupBytes(config, vision_so, vision_stages, o.decode_tokens, o.decode_context,
                                                                  threads, work.image_prompt_tokens, kv)
                                                     : 0;
    const int64_t need = std::max(need_text, need_vision);
    const SyntheticOptions& big = need_text >= need_vision ? text_so : vision_so;
    if (available > 0 && need > available) {
      return ResourceExhausted(StrFormat(
          "synthetic %s weights for %lld decoder layers need %s (%s of weights), but only %s of memory is available%s",
          o.type.c_str(), (long long)config.text.num_hidden_layers, Gb(static_cast<double>(need)).c_str(),
          Gb(static_cast<double>(SyntheticCheckpointBytes(config, big))).c_str(), Gb(static_cast<double>(available)).c_str(),
          type == WeightType::kF32 ? ": use --type bf16, or fewer --layers" : ": use fewer --layers or --stages"));
    }
  }

  // Builds (synthetic) or hands out (real) the model for a group; a synthetic one lives until the group is done.
  auto model_for = [&](const SyntheticOptions& so, std::unique_ptr<ModelImpl>* owned) -> Result<const ModelImpl*> {
    if (real) return &real->impl();
    runner.Say("generating synthetic %s weights (%s)", o.type.c_str(),
               Gb(static_cast<double>(SyntheticCheckpointBytes(config, so))).c_str());
    const auto t0 = Clock::now();
    IXC_ASSIGN_OR_RETURN(*owned, MakeSyntheticModelImpl(config, so, &pool));
    r.setup_s += SecondsSince(t0);
    return owned->get();
  };

  std::unique_ptr<ModelImpl> one;  // --one-model: built for the first group, kept for the second
  if (run_text) {
    std::unique_ptr<ModelImpl> owned;
    IXC_ASSIGN_OR_RETURN(const ModelImpl* m, model_for(text_so, o.one_model ? &one : &owned));
    r.decode_weight_bytes = DecodeWeightBytes(m->weights.text);
    if (Has(r.stages, BenchStage::kPrefill)) {
      runner.Say("prefill: %lld-token prompt", (long long)kPrefillTokens);
      const double s = MedianRun<double>([&] { return runner.RunPrefill(*m); }, [](const double& x) { return x; });
      r.prefill_tok_s_512 = kPrefillTokens / s;
    }
    if (Has(r.stages, BenchStage::kDecode)) r.decode_tok_s = runner.RunDecode(*m, o.decode_context, "decode");
    if (Has(r.stages, BenchStage::kDecode16k)) r.decode_tok_s_16k = runner.RunDecode(*m, kDecodeContext16k, "decode16k");
    if (Has(r.stages, BenchStage::kDecodeX4)) {
      r.decode_tok_s_x4 = runner.RunDecodeStreams(*m, o.decode_context, kDecodeStreams, "decodex4");
      if (r.decode_tok_s) r.decode_x4_speedup = *r.decode_tok_s_x4 / *r.decode_tok_s;
    }
  }

  if (run_vit || run_image) {
    std::unique_ptr<ModelImpl> owned;
    const ModelImpl* m = one.get();
    if (!m) {
      IXC_ASSIGN_OR_RETURN(m, model_for(vision_so, &owned));
    }
    if (r.decode_weight_bytes == 0) r.decode_weight_bytes = DecodeWeightBytes(m->weights.text);
    IXC_ASSIGN_OR_RETURN(std::vector<std::vector<int>> text, QuestionText(*m, &runner));
    work = ComputeBenchWork(config, plora_rank, static_cast<int64_t>(text[0].size() + text[1].size()));
    using Times = Runner::ImageTimes;
    auto total = [](const Times& t) { return t.total(); };
    // The image stage's encoding is the vit stage's measurement too: the same call on the same views.
    const Times t = MedianRun<Times>([&] { return runner.RunImage(*m, text, run_image, run_image ? "image" : "vit"); },
                                     +total);
    r.vit_tile_s = t.encode_s / static_cast<double>(1 + kBenchGridRows * kBenchGridCols);
    if (!run_vit) r.vit_tile_s.reset();
    if (run_image) {
      r.image_prompt_s = t.total();
      r.image_encode_s = t.encode_s;
      r.image_prefill_s = t.prefill_s;
    }
  }

  // The bandwidth again, now that the stages' weights are freed (the probe's buffer must not add to peak_rss_mb).
  one.reset();
  real.reset();
  runner.Say("measuring read bandwidth again");
  r.bandwidth_gbs_end = ProbeReadBandwidth(&pool, probe_bytes).gbs;
  r.bandwidth_gbs = std::max(r.bandwidth_gbs_start, r.bandwidth_gbs_end);

  // Work, shares.
  const DecoderConfig& c = config.text;
  r.image_tokens = work.image_tokens;
  r.image_prompt_tokens = work.image_prompt_tokens;
  r.prefill_flop_per_token = work.prefill_flop_per_token;
  r.vit_flop_per_tile = work.vit_flop_per_tile;
  r.image_prompt_flop = work.image_prompt_flop;
  const int64_t kv_row = KvBytesPerToken(c, runner.KvType());
  r.decode_kv_bytes = o.decode_context * kv_row;
  r.decode_kv_bytes_16k = kDecodeContext16k * kv_row;
  const double bw_bytes = r.bandwidth_gbs * 1e9, peak = r.peak_gflops * 1e9;
  if (bw_bytes > 0) {
    const double bytes = static_cast<double>(r.decode_weight_bytes);
    const double kv = static_cast<double>(r.decode_kv_bytes), kv16 = static_cast<double>(r.decode_kv_bytes_16k);
    if (r.decode_tok_s) {
      r.decode_bandwidth_share = *r.decode_tok_s * bytes / bw_bytes;
      r.decode_read_share = *r.decode_tok_s * (bytes + kv) / bw_bytes;
    }
    if (r.decode_tok_s_16k) {
      r.decode_16k_bandwidth_share = *r.decode_tok_s_16k * bytes / bw_bytes;
      r.decode_16k_read_share = *r.decode_tok_s_16k * (bytes + kv16) / bw_bytes;
    }
  }
  if (peak > 0) {
    if (r.prefill_tok_s_512) r.prefill_peak_share = *r.prefill_tok_s_512 * r.prefill_flop_per_token / peak;
    if (r.vit_tile_s) r.vit_peak_share = r.vit_flop_per_tile / *r.vit_tile_s / peak;
    if (r.image_prompt_s) r.image_peak_share = r.image_prompt_flop / *r.image_prompt_s / peak;
  }
  r.peak_rss_mb = PeakRssMb();
  return r;
}

Result<BenchReport> RunBench(const BenchOptions& o, const BenchProgress& progress) {
  return CatchAllocationFailure("benchmarking", [&] { return RunBenchImpl(o, progress); });
}

}  // namespace ixc

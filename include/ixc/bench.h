// ixc bench: how fast this build runs IXC-2.5 on this machine, stage by stage, beside the machine's own limits
// measured in the same run (streaming read bandwidth, arithmetic peak), so every speed change is measured alike.
//
//   ixc::BenchOptions o;            // synthetic full-size IXC-2.5 weights in bf16, every stage
//   o.threads = 8;
//   auto report = ixc::RunBench(o);
//
// Stages time the calls the engine makes (EncodeImage, DecoderForward in 512-row chunks, single-token steps), so
// kernel changes show up. Figures are as measured: with fewer layers than the model has they are not scaled. A
// stage that takes under 2 s runs once more as warm-up and reports the median of up to three timed runs; longer
// stages (the real shapes) run once.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ixc/ixc.h"
#include "ixc/status.h"

namespace ixc {

enum class BenchStage {
  kVit,        // the 7 views of an hd_num 6 image (2×3 tiles + global) encoded together; seconds per view
  kPrefill,    // a 512-token text-only prompt; tokens/s
  kImage,      // hd_num 6 image question: views encoded, whole prompt prefilled (Partial LoRA on image rows); s
  kDecode,     // single-token steps at 4,096 tokens of context; tokens/s
  kDecode16k,  // the same at 16,384
  kDecodeX4,   // 4 streams at 4,096 tokens of context each, stepped together as ixc serve's slots are; tokens/s
};

const char* BenchStageName(BenchStage s);  // "vit", "prefill", "image", "decode", "decode16k", "decodex4"
// A comma-separated list of stage names, e.g. "vit,decode"; unknown names are errors.
Result<std::vector<BenchStage>> ParseBenchStages(std::string_view list);

struct BenchOptions {
  std::string model_dir;    // a model folder, loaded as Model::Load does; empty: synthetic weights
  bool check_weights = true;  // with model_dir: as LoadOptions::check_weights
  // Synthetic only:
  std::string config_path;  // shapes from this config.json; empty: the real IXC-2.5 shapes
  std::string type = "bf16";  // weight type: bf16, f16, f32, q8_0 or q4_0 (model/weight_types.h)
  int layers = 0;           // decoder layers (0: the config's)
  int vit_layers = 0;       // vision layers (0: the config's)
  uint64_t seed = 1;
  // One model (decoder, vision tower, Partial LoRA) for every stage, so that peak_rss_mb is the memory of a model
  // serving image questions at decode_context tokens; by default text stages get a decoder alone.
  bool one_model = false;
  // Both:
  int threads = 0;                 // 0: all hardware threads (the pool Sessions of that size share)
  Precision precision = Precision::kFast;  // as SessionOptions: the KV cache type follows it...
  KvCacheType kv_type = KvCacheType::kAuto;  // ...unless set
  std::vector<BenchStage> stages;  // empty: every stage the model can run
  int decode_tokens = 8;           // decode steps timed per decode figure (after one untimed step)
  int64_t decode_context = 4096;   // KV positions before the `decode` stage's steps (llama-bench's tg64 starts at 0)
  int64_t probe_bytes = 0;         // bandwidth probe buffer; 0: 1 GiB, less when memory is short
};

struct BenchPeak {
  std::string kind;  // "fp32_fma_ymm", "fp32_fma_zmm", "bf16_dpbf16ps_zmm", "amx_bf16", "fp32_scalar"
  double gflops = 0;
};

struct BenchReport {
  // What ran.
  std::string model;   // "synthetic" or the model folder
  std::string type;    // weight dtype of the decoder linears: "bf16", "f16", "f32"
  int threads = 0;
  std::string precision;  // "fast" or "f32"
  std::string kv_type;    // the KV cache's dtype: "f16" (fast), "f32" or "q8_0"
  int64_t layers = 0, vit_layers = 0;            // as run
  int64_t model_layers = 0, model_vit_layers = 0;  // the config's (differ when --layers reduced them)
  std::string cpu;     // CPU model and the kernels' instruction set
  std::vector<BenchStage> stages;
  double setup_s = 0;  // generating (synthetic) or loading the weights, all builds together

  // Stage figures; empty when the stage did not run.
  std::optional<double> vit_tile_s;         // seconds per 560×560 view, 7 views encoded together
  std::optional<double> prefill_tok_s_512;  // prompt tokens per second, 512-token text prompt
  std::optional<double> image_prompt_s;     // hd_num 6 image question: views to the first token's logits
  std::optional<double> image_encode_s, image_prefill_s;  // its two parts
  std::optional<double> decode_tok_s;       // at decode_context tokens of context
  std::optional<double> decode_tok_s_16k;   // at decode_context_16k
  // Aggregate tokens/s of 4 streams at decode_context each, their steps batched through a DecodeGroup (ixc serve's
  // path), and that over decode_tok_s.
  std::optional<double> decode_tok_s_x4, decode_x4_speedup;

  // Shapes and work (from the config as run).
  int64_t prefill_tokens = 512;
  int64_t image_tokens = 0;         // ImageTokenCount of the 2×3 grid
  int64_t image_prompt_tokens = 0;  // image tokens + the question's text tokens (2,878 for the real shape)
  int64_t decode_context = 4096, decode_context_16k = 16384;
  int decode_tokens = 0;            // steps timed per decode figure
  int64_t decode_weight_bytes = 0;  // weights one decoded token reads: linears, norms, LM head, one embedding row
  int64_t decode_kv_bytes = 0, decode_kv_bytes_16k = 0;  // KV cache one decoded token reads (each row once)
  double prefill_flop_per_token = 0;  // 512-token prompt, per token
  double vit_flop_per_tile = 0;       // CLIP over one view plus its share of the projector
  double image_prompt_flop = 0;       // the whole image question

  // The machine, measured in this run. Read bandwidth is probed before the stages and again after them (a shared
  // machine's varies by tens of percent over minutes); the shares divide by the higher of the two.
  double bandwidth_gbs = 0;
  double bandwidth_gbs_start = 0, bandwidth_gbs_end = 0;
  int64_t bandwidth_probe_bytes = 0;
  double peak_gflops = 0;   // the fastest kind the kernels' instruction set allows
  std::string peak_kind;
  std::vector<BenchPeak> peaks;  // every kind measured

  // Shares of the machine: decode = tok/s × weight bytes ÷ bandwidth; the rest = FLOP/s ÷ peak.
  std::optional<double> decode_bandwidth_share, decode_16k_bandwidth_share;
  // The same with the KV cache's bytes added: every byte a decoded token reads.
  std::optional<double> decode_read_share, decode_16k_read_share;
  std::optional<double> prefill_peak_share, vit_peak_share, image_peak_share;

  double peak_rss_mb = 0;  // maximum resident set of the process (getrusage), in MiB
};

// One line per step ("generating synthetic weights (16.7 GB)", "decode: 3/8 tokens"); called on the bench thread.
using BenchProgress = std::function<void(std::string_view line)>;

// Measures the machine, builds or loads the model, runs the stages. Refuses (ResourceExhausted) synthetic shapes
// whose weights and KV cache would not fit in the memory available now.
Result<BenchReport> RunBench(const BenchOptions& options, const BenchProgress& progress = {});

}  // namespace ixc

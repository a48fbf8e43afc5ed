// ixc.cpp public API: run InternLM-XComposer-2.5 on the CPU.
//
//   auto model = ixc::Model::Load({.model_dir = "internlm-xcomposer2d5-7b"});
//   if (!model.ok()) { fprintf(stderr, "%s\n", model.status().message().c_str()); return 1; }
//   ixc::Session session(**model, {.threads = 8});
//   ixc::ChatRequest req;
//   req.query = "Describe this image.";
//   req.images = {"photo.jpg"};
//   auto reply = session.Chat(req, [](std::string_view piece) { fputs(std::string(piece).c_str(), stdout); return true; });
//
// A Model is immutable once loaded and may be shared by several Sessions (one per conversation/thread). A Session
// owns its thread pool and scratch state; Chat() takes the whole conversation explicitly (history + query).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ixc/status.h"

namespace ixc {

// Which task adapter runs (spec §2.6): base chat, webpage generation, article writing.
enum class TaskMode { kBase, kWeb, kWrite };
const char* TaskModeName(TaskMode m);
Result<TaskMode> ParseTaskMode(std::string_view name);

// Load progress: `stage` names what is being done ("opening checkpoint", "dequantising AWQ weights", "binding
// weights", "loading tokenizer"), `fraction` goes from 0 to 1 within each stage (every stage ends with 1). Called
// on the loading thread. The library never prints; front ends draw what they like (ixc draws a bar on a terminal).
using LoadProgress = std::function<void(std::string_view stage, double fraction)>;

struct LoadOptions {
  std::string model_dir;
  LoadProgress progress = nullptr;  // optional
  // Scan every weight for NaN and ±inf at load (a second or so per 15 GB once the file is in the page cache) and
  // refuse a checkpoint that has any, naming the tensor: otherwise it answers with NaN logits.
  bool check_weights = true;
};

// How a session rounds intermediate values (DEVELOPERS.md "Numerics" states the tolerances of each).
enum class Precision {
  kFast,  // the default: the KV cache in f16; products may round inputs to bf16 where the CPU multiplies bf16
  kF32,   // activations and the KV cache in f32: the exact path, held to the reference at 1e-4
};
const char* PrecisionName(Precision p);  // "fast", "f32"
Result<Precision> ParsePrecision(std::string_view name);

// The KV cache's element type. kAuto follows the precision (f16 for kFast, f32 for kF32). kQ8_0 stores 32-value
// blocks of int8 with an f16 scale (GGUF's Q8_0): 53% of f16's memory, for long contexts; attention widens it.
enum class KvCacheType { kAuto, kF16, kF32, kQ8_0 };
const char* KvCacheTypeName(KvCacheType t);  // "auto", "f16", "f32", "q8_0"
Result<KvCacheType> ParseKvCacheType(std::string_view name);

// Caps the instruction set the kernels use ("scalar", "avx2", "avx512", "avx512bf16", "amx"); a level above what
// the CPU has leaves the best one in use. For comparing paths; applies to the whole process.
Status LimitInstructionSet(std::string_view name);
// The CPU's model name and the kernels' instruction set, e.g. "AMD EPYC (kernels: avx2)".
std::string DescribeCpu();

class DecodeBatcher;

// Sessions given the same DecodeGroup decode together: each one's next-token step waits for the steps of the other
// members that are decoding, and all run as one batched step, so every weight is read once for all of them
// (decoding is bound by memory bandwidth: four streams cost little more than one). Each session still samples,
// streams and stops on its own; prompts and beam search run apart. ixc serve gives one to all its slots. Sessions
// must keep stepping while they decode: a member's callback that blocks holds back the others.
class DecodeGroup {
 public:
  DecodeGroup();
  ~DecodeGroup();
  DecodeBatcher& batcher() const { return *impl_; }

 private:
  std::unique_ptr<DecodeBatcher> impl_;
};

struct SessionOptions {
  int threads = 0;  // 0: all hardware threads; sessions with the same count share one pool
  Precision precision = Precision::kFast;
  KvCacheType kv_type = KvCacheType::kAuto;
  std::shared_ptr<DecodeGroup> decode_group = nullptr;  // optional: decode in step with the group's other sessions
};

struct GenerationOptions {
  int max_new_tokens = 1024;
  bool do_sample = true;         // false: greedy (num_beams 1) or beam search
  int num_beams = 1;
  float temperature = 1.0f;
  float top_p = 0.8f;
  int top_k = 50;
  float repetition_penalty = 1.005f;  // on generated tokens only, as the reference
  uint64_t seed = 0;
  bool stop_at_end_of_turn = true;  // stop at the end-of-turn marker as well as at the tokenizer's eos
  std::vector<int> stop_ids;     // further stop ids
  int max_total_tokens = 0;      // >0: also stop when prompt + generated reaches this (write_artical's 8192)
};

// How generated ids become the reply: chat() cuts at the first end-of-turn marker; the composition methods
// delete every start/end-of-turn marker instead.
enum class ReplyStyle { kChat, kCompose };

struct ChatTurnText {
  std::string user;
  std::string assistant;
};

// Earlier turns in the CLI's --history format: a JSON list of [user, assistant] string pairs. `name` (the file)
// is used in errors.
Result<std::vector<ChatTurnText>> ParseChatHistory(std::string_view json_text, const std::string& name);

// An image or video file given with a request. Videos become one labelled composite picture (spec §6).
struct MediaInput {
  MediaInput(std::string p, bool video = false) : path(std::move(p)), is_video(video) {}  // NOLINT: implicit
  MediaInput(const char* p) : path(p) {}                                                   // NOLINT: implicit
  // A file's bytes given in memory (e.g. an HTTP request's data: URL); `name` stands for the path in messages.
  static MediaInput FromBytes(std::string bytes, std::string name, bool video = false) {
    MediaInput m(std::move(name), video);
    m.data = std::make_shared<const std::string>(std::move(bytes));
    return m;
  }
  std::string path;
  bool is_video = false;
  std::shared_ptr<const std::string> data;  // when set, the media is read from here, not from `path`
};

// Where a request is, for front ends to draw (ixc draws the stages on a terminal's stderr; the library never prints).
// Called on the thread running Session::Chat.
struct ChatProgress {
  enum class Stage {
    kMedia,    // an image or video decoded and cut into views: item of items
    kEncode,   // views of image `item` (of items) through the vision tower: done of total
    kPrefill,  // prompt tokens computed: done of total
  };
  Stage stage = Stage::kMedia;
  int64_t item = 0, items = 0;
  int64_t done = 0, total = 0;
  double elapsed_s = 0;  // since the stage began (for the current item)
};
using ChatProgressCallback = std::function<void(const ChatProgress&)>;

struct ChatRequest {
  std::string query;
  std::vector<ChatTurnText> history;  // earlier turns; their <ImageHere> markers take images in order
  std::string system;                 // system text; empty: none
  std::vector<MediaInput> images;     // images/videos, matched to <ImageHere> markers across history and query
  int hd_num = 0;                     // 0: 24 for one image, 6 for several (the reference's rule); videos ignore it
  std::string font_path;              // video frame labels: empty = SimHei.ttf in the model folder, else a CJK system font
  int64_t max_image_pixels = 200'000'000;  // decoded images/frames larger than this are refused (decompression bombs)
  TaskMode mode = TaskMode::kBase;
  // Most tokens a prompt (text + image) may have, and most new tokens; 0: the config's max_length (16384 in IXC-2.5,
  // where the reference's chat() cuts). Raise it for long contexts: past max_position_embeddings RoPE's dynamic NTK
  // scaling applies, as in the reference. At most 1,048,576.
  int64_t max_length = 0;
  GenerationOptions generation;
  ReplyStyle reply_style = ReplyStyle::kChat;
  bool capture_tensors = false;       // fill ChatResult::tensors (for --dump-tensors and tests)
  ChatProgressCallback progress;      // optional
};

struct Timings {
  double load_media_ms = 0, encode_images_ms = 0, prefill_ms = 0, decode_ms = 0;
  int64_t encoded_views = 0;     // views through the vision tower
  int64_t prefilled_tokens = 0;  // prompt rows computed (fewer than the prompt when a cached prefix was reused)
  int64_t decoded_tokens = 0;
};

struct DebugTensors {
  std::vector<float> last_logits;      // [vocab] at the last prompt position
  std::vector<float> image_embeds;     // [image tokens, hidden] projector output, sequence order
  int64_t image_embed_rows = 0;
  std::vector<float> pixels0;          // [1, 3, H, W] normalised HD tensor of the first image
  int64_t pixels0_height = 0, pixels0_width = 0;
};

struct VideoSummary {
  std::vector<int64_t> frame_indices;    // the sampled frames
  int composite_width = 0, composite_height = 0;  // the labelled composite before Video_transform
  int rows = 0, cols = 0;                // its 560-tile grid after Video_transform
};

struct ChatResult {
  std::string text;                      // the reply, decoded and cleaned as the reference's chat()
  std::vector<int> tokens;               // generated ids (including the stop token when one was produced)
  int64_t prompt_tokens = 0;             // sequence length of the prompt (text + image tokens)
  std::vector<std::vector<int>> prompt_text_ids;  // token ids of each text segment, in order (BOS included)
  std::vector<int64_t> image_tokens;     // tokens per image or video
  std::vector<std::pair<int, int>> grids;  // [rows, cols] tile grid per image or video
  std::vector<VideoSummary> videos;      // one per video input, in order
  std::string stop_reason;               // "stop_token", "max_new_tokens" or "cancelled"
  Timings timings;
  DebugTensors tensors;
};

// Receives each new piece of reply text as it is generated; return false to stop generation. Beam search cannot
// stream: it calls back with an empty piece once per step (so it can be stopped) and delivers the text at the end.
using TextCallback = std::function<bool(std::string_view piece)>;

// What Model::Info estimates memory for: the shape of one request.
struct MemoryQuery {
  int images = 1;                 // images in the request (0: text only)
  int hd_num = 0;                 // 0: the reference's rule (24 for one image, 6 for several)
  // The tile grid of each image when both > 0 (e.g. 2x2 for an 800x600 picture at hd_num 24); otherwise the largest
  // input hd_num allows (hd_num tiles in one column: the most tokens), an upper bound for any picture.
  int grid_rows = 0, grid_cols = 0;
  int64_t context_tokens = 4096;  // tokens the KV cache holds at the end (prompt + reply); raised to the prompt
  int64_t text_tokens = 64;       // prompt text tokens (template, history, query)
  int threads = 0;                // 0: all hardware threads, as SessionOptions
  TaskMode mode = TaskMode::kBase;
  Precision precision = Precision::kFast;  // the KV cache's element size follows it (f16 or f32)...
  KvCacheType kv_type = KvCacheType::kAuto;  // ...unless set, as SessionOptions
};

// Parameter counts per component (spec §1.3).
struct ParameterBreakdown {
  int64_t decoder = 0;    // embeddings, norms, attention and MLP weights, lm head
  int64_t plora = 0;      // Partial LoRA (Plora_A/B)
  int64_t web = 0, sft = 0, dpo = 0;  // task adapters
  int64_t vision = 0;     // CLIP tower
  int64_t projector = 0;  // vision_proj and the two separator tokens
  int64_t total() const { return decoder + plora + web + sft + dpo + vision + projector; }
};

struct DTypeBytes {
  std::string dtype;  // safetensors spelling: "BF16", "F16", "F32", "I32", ...
  int64_t bytes = 0;
};

// Peak resident memory of one request of a MemoryQuery's shape, in bytes, by what holds it. Weights read in place
// from the mapped files count once their pages are touched: a request touches only the parts it uses (e.g. no
// vision tower without images, no web adapter outside web mode).
struct MemoryEstimate {
  int64_t weights_mapped = 0;    // bound weights viewed in the mapped files (all of them, touched or not)
  int64_t weights_owned = 0;     // weights in process memory: AWQ dequantised, f32 copies of small vectors
  int64_t weights_resident = 0;  // owned + the mapped bytes this request touches
  int64_t prompt_tokens = 0;     // text + image tokens
  int64_t image_tokens = 0;
  int64_t context_tokens = 0;    // KV cache length used (the query's, or the prompt when longer)
  int64_t kv_bytes_per_token = 0;
  int64_t kv_cache = 0;
  int64_t media = 0;             // decoded, resized and normalised pictures and their CLIP views
  int64_t vision = 0;            // CLIP scratch of the views in flight, features, projector buffers
  int64_t prefill = 0;           // prompt embeddings, one 512-row chunk's activations, logits
  int64_t decode = 0;            // one row's activations, logits
  int64_t allocator_retained = 0;  // freed vision-phase blocks glibc keeps mapped into later phases
  int64_t runtime = 0;           // code, shared libraries, tokenizer (measured on the reference build)
  std::string peak_phase;        // "load", "vision", "prompt", "prefill" or "decode"
  int64_t total = 0;             // the estimated peak resident set size
};

// Everything `ixc info` prints: what the folder holds and what running it costs.
struct ModelInfo {
  std::string model_dir;
  std::string container;         // "safetensors" or "pytorch"
  int shards = 1;                // files the weights are spread over
  std::string format;            // the checkpoint's own description, e.g. "safetensors (2 shards)"
  bool awq = false;              // 4-bit AWQ layers present
  int awq_bits = 0, awq_group_size = 0;
  int64_t awq_layers = 0;
  int64_t awq_four_bit_layers = 0;  // of awq_layers, kept in 4 bits (groups of 128); the rest dequantised to F16
  std::vector<DTypeBytes> stored;        // bytes per dtype as stored in the files
  std::vector<DTypeBytes> loaded_mapped; // bound weights used in place, per dtype
  std::vector<DTypeBytes> loaded_owned;  // bound weights held in process memory, per dtype
  ParameterBreakdown parameters;
  std::vector<std::string> modes;        // "base", "web", "write" as available
  bool vision = false;
  // The decoder and vision sizes from config.json.
  int64_t layers = 0, hidden = 0, intermediate = 0, heads = 0, kv_heads = 0, vocab = 0, max_position = 0;
  int64_t vision_layers = 0, vision_hidden = 0, image_size = 0;
  MemoryQuery query;                     // what `memory` was estimated for (defaults resolved)
  MemoryEstimate memory;
};

class ModelImpl;

class Model {
 public:
  static Result<std::unique_ptr<Model>> Load(const LoadOptions& options);
  ~Model();

  // One-line description of what was loaded (format, sizes, available modes).
  std::string Describe() const;
  bool HasMode(TaskMode m) const;
  bool HasVision() const;
  // Format, dtypes, parameter counts, modes, and the memory a request shaped like `query` needs.
  ModelInfo Info(const MemoryQuery& query = {}) const;
  const ModelImpl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<ModelImpl> impl);
  std::unique_ptr<ModelImpl> impl_;
};

class SessionImpl;

class Session {
 public:
  Session(const Model& model, const SessionOptions& options);
  ~Session();

  // Runs one chat request to completion (or until `on_text` returns false).
  Result<ChatResult> Chat(const ChatRequest& request, const TextCallback& on_text = {});

 private:
  std::unique_ptr<SessionImpl> impl_;
};

// ixc convert: a model (Hugging Face folder, AWQ folder or a GGUF file ixc wrote) -> one GGUF file holding every
// tensor, config.json and tokenizer.model; Model::Load takes the file wherever it takes a folder.
struct ConvertOptions {
  std::string model_dir;      // input folder or .gguf file
  std::string output;         // the .gguf file to write
  std::string type = "bf16";  // "bf16": 16-bit matrices (f32 ones become bf16, f16 and bf16 stay; AWQ layers
                              // dequantised to F16); "q8_0": every multiplied matrix (decoder linears, LM head,
                              // embeddings, adapters, vision linears, projector) as Q8_0; "q4_0": the decoder's
                              // linears as Q4_0, the other matrices as for q8_0. Norms, biases and the patch
                              // embedding stay as for bf16. AWQ layers are quantised from their exact values
                              // (q − z)·s, rounded once.
  LoadProgress progress;      // loading stages, then "writing <type>"
  bool check_weights = true;  // as LoadOptions::check_weights: a NaN in the input is not written out
  // Random weights instead of a model (model_dir empty): the shapes of the config.json `synthetic_config` (empty:
  // the real IXC-2.5 shapes, rope_scaling dynamic ×2) with the real adapter ranks (Partial LoRA, sft and dpo 256,
  // web 512), generated as `ixc bench --synthetic` does, and `tokenizer` (a tokenizer.model) inside. For measuring
  // a full-size mapped file on machines without the real weights.
  bool synthetic = false;
  std::string synthetic_config;
  std::string tokenizer;
  uint64_t seed = 1;
};
struct ConvertReport {
  int64_t tensors = 0;
  int64_t quantised_tensors = 0;
  int64_t file_bytes = 0;
};
Result<ConvertReport> ConvertModel(const ConvertOptions& options);

// Writes the captured tensors of a result as safetensors: last_logits F32 [vocab], image_embeds F32 [n, hidden]
// and pixels0 F32 [1, 3, H, W] when present.
Status SaveDebugTensors(const ChatResult& result, const std::string& path);

// The reference chat()'s meta instruction (what --meta uses).
const char* ChatMetaInstruction();

// Composition tasks (spec §5.2–5.4): requests preset exactly as the reference's methods, and their text steps.

// write_artical: write adapter, sampling with top-p 0.8, top-k 40, penalty 1.005, up to 8192 tokens in all,
// stop at eos or end-of-turn; the article meta instruction only when use_meta.
ChatRequest MakeArticleRequest(const std::string& instruction, const std::vector<MediaInput>& images, bool use_meta);
// write_webpage and friends: web adapter, beam sampling with 2 beams, penalty 3.0, 4800 new tokens, top-k 50,
// top-p 1.0, stop at eos only (the reference passes no end-of-turn stop here).
ChatRequest MakeWebpageRequest(const std::string& instruction, const std::vector<MediaInput>& images);
// The reference's fixed instructions (note their leading spaces).
std::string ResumePageInstruction(const std::string& resume_markdown);
std::string JavaScriptInstruction(const std::string& html);
const char* ScreenshotInstruction();
// https://source.unsplash.com/random/WxH/?q -> https://picsum.photos/W/H, as the reference post-processes pages.
std::string RewriteImageUrls(const std::string& html);
// resume_2_webpage's merge, done as it evidently meant: the JavaScript (the bodies of the <script> elements of the
// second answer, or all of it when it has none) goes into one new <script> element before </body> (else before
// </html>, else at the end), inserted literally. The reference instead pastes a Python list's repr before every
// </script> and runs the code through a regex replacement template.
std::string MergeJavaScript(const std::string& html, const std::string& js);

}  // namespace ixc

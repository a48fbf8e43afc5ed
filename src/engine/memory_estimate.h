// How much memory one request needs: pure functions of the config, the weights' sizes, the thread count and the
// request's shape, derived from what the code allocates (src/model/decoder.cc, partial_lora.cc, vision.cc,
// src/media via engine/media_input.cc, engine/prompt_builder.cc and engine/session.cc). All sizes in bytes.
//
// The estimate is of the peak resident set size (what `/usr/bin/time -v` reports as "Maximum resident set size"),
// so it follows the phases of a request in order and takes the largest:
//   load     runtime + owned weights
//   vision   + vision tower and projector weights (touched) + per image: the media buffers, then the CLIP scratch
//            of the views in flight (one view per thread), the features and the projector's buffers
//   prompt   + the image tokens and the prompt's embeddings, side by side
//   prefill  + decoder weights touched by this request + prompt embeddings + KV cache of the prompt + one chunk
//            (512 rows) of decoder activations + logits
//   decode   + KV cache of the whole context + one row of activations + logits
// Mapped weights count once touched (and stay): a request touches the decoder, the lm head, the Plora weights only
// when there are image rows, the adapter of its mode only, the vision part only with images, and of the embedding
// table only the rows (with the kernel's 64 KiB fault-around) of the tokens it embeds.
//
// glibc keeps freed blocks below its mmap threshold (which rises to at most 32 MiB after large frees) for reuse,
// so the vision phase's views, features and projector buffers stay resident afterwards in the main thread's arena,
// and later phases first reuse that memory: they are charged max(their live buffers, that retained memory). Worker
// threads' arenas keep their last view's CLIP scratch unless glibc trims it (small towers); nothing later reuses it,
// so it is added. Measured against `/usr/bin/time -v` on the golden and a 7B-width checkpoint (text and 2x2
// images): within 1.5%. Beam search (several beams' KV rows and logits) is not modelled.
#pragma once

#include <cstdint>
#include <vector>

#include "ixc/ixc.h"
#include "core/dtype.h"
#include "model/config.h"

namespace ixc {

// Bytes of bound weights in one component: read in place from the mapped files, or held in process memory.
struct WeightPart {
  int64_t mapped = 0, owned = 0;
  int64_t total() const { return mapped + owned; }
};

struct WeightBytes {
  WeightPart embedding;  // tok_embeddings (only the rows of embedded tokens are read)
  WeightPart decoder;    // the layers' norms and five linears, and the final norm
  WeightPart output;     // lm head
  WeightPart plora, web, sft, dpo;
  WeightPart vision, projector;  // the CLIP tower; vision_proj and the GN tokens
  int64_t embedding_row_bytes = 0;

  int64_t mapped() const;
  int64_t owned() const;
};

struct LoraRanks {
  int64_t plora = 256, web = 512, sft = 256, dpo = 256;  // 0: the adapter is absent
};

// The weights of a checkpoint of this config in the real layout (spec §1.3): matrices stored with
// `bytes_per_weight` bytes (2 for bf16/f16) and mapped, small vectors (norms, biases, class/position embeddings,
// GN tokens) copied to f32 (owned). With `awq`, the decoder linears are owned dense F16 (the 4-bit data is released
// after dequantisation).
WeightBytes WeightBytesForConfig(const ModelConfig& c, int bytes_per_weight, const LoraRanks& ranks, bool vision,
                                 bool awq = false);

// One image as the engine will see it: its tile grid and the decoded picture's pixel count.
struct ImageShape {
  int rows = 1, cols = 1;
  int64_t source_pixels = 0;  // 0: as many as the padded canvas
};

// The largest input hd_num allows: rows·cols = hd_num tiles, and of those grids the tallest (rows = hd_num,
// cols = 1), which has the most separator tokens. An upper bound for any picture.
ImageShape LargestImage(int hd_num);

struct RequestShape {
  int threads = 1;
  int64_t text_tokens = 64;      // prompt text tokens
  std::vector<ImageShape> images;
  int64_t context_tokens = 0;    // KV length at the end; raised to the prompt length when smaller
  TaskMode mode = TaskMode::kBase;
  DType kv_dtype = DType::kF16;  // the KV cache's element type: f16 (the default precision), f32 or Q8_0
};

// Process memory that does not depend on the model's size, measured on the reference build (Debian 12, glibc
// 2.36, Release): `ixc chat --help` peaks at 29.3 MiB (code, shared libraries, static data), and loading the real
// tokenizer.model with sentencepiece adds 18.4 MiB (its 92544 pieces as protobuf strings and lookup tables).
struct RuntimeBytes {
  int64_t code = int64_t{29} << 20;
  int64_t tokenizer = int64_t{37} << 19;  // 18.5 MiB
};

// The kernel maps up to this much of a file around each page fault (fault_around_bytes, Linux default 64 KiB).
constexpr int64_t kFaultAroundBytes = 64 << 10;

// KV cache bytes per token: post-RoPE keys and values of every layer (model/kv_cache.h).
int64_t KvBytesPerToken(const DecoderConfig& c, DType kv);

// Tokens an image with this grid becomes (vision.cc's ImageTokenCount).
int64_t ImageTokens(const VisionConfig& v, const ImageShape& im);

// Live bytes at the peak of each phase (weights and runtime excluded; see the file comment).
int64_t MediaBytes(const VisionConfig& v, const ImageShape& im);
int64_t VisionEncodeBytes(const ModelConfig& c, const ImageShape& im, int threads);
int64_t PrefillBytes(const ModelConfig& c, int64_t prompt_tokens, bool has_images, TaskMode mode,
                     const LoraRanks& ranks, int threads, DType kv_dtype);
int64_t DecodeBytes(const ModelConfig& c, int64_t context_tokens, int threads, DType kv_dtype);

// The whole estimate (fills every MemoryEstimate field).
MemoryEstimate EstimateMemory(const ModelConfig& c, const WeightBytes& w, const LoraRanks& ranks,
                              const RequestShape& r, const RuntimeBytes& rt = {});

}  // namespace ixc

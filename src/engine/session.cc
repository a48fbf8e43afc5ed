// Session::Chat: prompt -> prefill -> decoding loop (greedy, sampling or beam search) -> reply text.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "core/status.h"
#include "core/timer.h"
#include "engine/beam_search.h"
#include "engine/decode_batcher.h"
#include "engine/model_impl.h"
#include "engine/prompt_builder.h"
#include "engine/text_stream.h"
#include "kernels/cpu.h"
#include "ixc/ixc.h"
#include "model/decoder.h"
#include "text/chat_format.h"
#include "text/sampler.h"

namespace ixc {

namespace {

// Prompt rows per prefill forward: bounds the activation memory of long prompts (the RoPE base still follows the
// whole prompt length, spec Part A §1).
constexpr int64_t kPrefillChunk = 512;
constexpr int kMaxBeams = 16;

AdapterMode ToAdapter(TaskMode m) {
  switch (m) {
    case TaskMode::kWeb: return AdapterMode::kWeb;
    case TaskMode::kWrite: return AdapterMode::kWrite;
    default: return AdapterMode::kBase;
  }
}

constexpr int64_t kMaxLength = int64_t{1} << 20;  // ChatRequest::max_length's bound

Status ValidateGeneration(const GenerationOptions& g, int64_t max_length, int64_t vocab_size) {
  if (g.max_new_tokens < 1 || g.max_new_tokens > max_length) {
    return InvalidArgument(StrFormat("max_new_tokens must be between 1 and %lld", (long long)max_length));
  }
  if (g.num_beams < 1 || g.num_beams > kMaxBeams) return InvalidArgument(StrFormat("num_beams must be between 1 and %d", kMaxBeams));
  if (!(g.temperature > 0) || !std::isfinite(g.temperature)) return InvalidArgument("temperature must be positive");
  if (!(g.top_p > 0 && g.top_p <= 1)) return InvalidArgument("top_p must be in (0, 1]");
  if (g.top_k < 0) return InvalidArgument("top_k must be >= 0 (0 = off)");
  if (!(g.repetition_penalty > 0) || !std::isfinite(g.repetition_penalty)) return InvalidArgument("repetition_penalty must be positive");
  for (int id : g.stop_ids)
    if (id < 0 || id >= vocab_size) return InvalidArgument(StrFormat("stop id %d is outside the vocabulary", id));
  return Status::Ok();
}

}  // namespace

class SessionImpl {
 public:
  SessionImpl(const ModelImpl& m, const SessionOptions& o)
      : model_(m), options_(o), shared_pool_(SharedThreadPool(o.threads)), pool_(*shared_pool_) {}

  Result<ChatResult> Chat(const ChatRequest& r, const TextCallback& on_text);

 private:
  const ModelImpl& model_;
  SessionOptions options_;
  std::shared_ptr<ThreadPool> shared_pool_;  // the process's pool of this size, shared with other sessions
  ThreadPool& pool_;
  Workspace workspace_;  // the decoder's activations, reused by every step of a request

  // The last request's KV cache and what each of its rows is (a token id or an image row, and the RoPE base it
  // was rotated with), so the next turn of the conversation computes only what is new (spec Part A §1: a cached
  // row counts only where a fresh prefill would compute the same row).
  struct Conversation {
    explicit Conversation(KvCache c) : cache(std::move(c)) {}
    KvCache cache;
    std::vector<uint64_t> row_keys;
    std::vector<double> row_bases;
    AdapterMode mode = AdapterMode::kBase;
  };
  std::unique_ptr<Conversation> conversation_;
};

Result<ChatResult> SessionImpl::Chat(const ChatRequest& r, const TextCallback& on_text) {
  const DecoderConfig& c = model_.config.text;
  const Tokenizer& tok = *model_.tokenizer;
  IXC_RETURN_IF_ERROR(CheckModeAvailable(model_, r.mode));
  GenerationOptions gen = r.generation;
  if (r.max_length < 0 || r.max_length > kMaxLength) {
    return InvalidArgument(StrFormat("max_length must be between 1 and %lld (0: the model's)", (long long)kMaxLength));
  }
  IXC_RETURN_IF_ERROR(ValidateGeneration(gen, r.max_length > 0 ? r.max_length : c.max_length, c.vocab_size));
  gen.stop_ids.push_back(tok.eos_id());
  if (gen.stop_at_end_of_turn) gen.stop_ids.push_back(tok.im_end_id());
  std::sort(gen.stop_ids.begin(), gen.stop_ids.end());
  gen.stop_ids.erase(std::unique(gen.stop_ids.begin(), gen.stop_ids.end()), gen.stop_ids.end());

  ChatResult result;
  const AdapterMode mode = ToAdapter(r.mode);
  const DType kv_dtype = KvDType(options_.precision, options_.kv_type);
  if (kv_dtype == DType::kQ8_0 && c.head_dim() % kQ8Block != 0) {
    return InvalidArgument(StrFormat("a q8_0 KV cache needs a head size that is a multiple of 32; this model's is %lld",
                                     (long long)c.head_dim()));
  }
  // A cached row is reused when it is the same token or image row at the same position, computed with the same
  // adapter, and rotated with the base this whole prompt will use. (Captured tensors need every image encoded.)
  std::unique_ptr<Conversation> conv = std::move(conversation_);
  if (conv && (conv->mode != mode || conv->cache.dtype() != kv_dtype || r.capture_tensors)) conv.reset();
  PrefixReuse reuse;
  if (conv) {
    reuse = [&](const std::vector<uint64_t>& keys) {
      const double base = RopeBaseForLength(c, static_cast<int64_t>(keys.size()));
      const size_t limit = std::min(conv->row_keys.size(), keys.size());
      size_t n = 0;
      while (n < limit && conv->row_keys[n] == keys[n] && conv->row_bases[n] == base) ++n;
      return static_cast<int64_t>(n);
    };
  }
  IXC_ASSIGN_OR_RETURN(PromptSequence seq, BuildPrompt(model_, r, &pool_, &result, reuse));
  if (gen.max_total_tokens > 0) {
    if (seq.length >= gen.max_total_tokens) {
      return ResourceExhausted(StrFormat("the prompt is %lld tokens; this task allows %d in all", (long long)seq.length,
                                         gen.max_total_tokens));
    }
    gen.max_new_tokens = std::min<int64_t>(gen.max_new_tokens, gen.max_total_tokens - seq.length);
  }
  auto decode = [&](const std::vector<int>& ids) {
    return r.reply_style == ReplyStyle::kChat ? tok.DecodeReply(ids) : tok.DecodeComposition(ids);
  };
  const int64_t D = c.hidden_size, V = c.vocab_size;

  // Prefill: the whole prompt is one RoPE step even when computed in chunks.
  auto t0 = Clock::now();
  if (!conv) {
    conv = std::make_unique<Conversation>(KvCache(c.num_hidden_layers, c.kv_dim(), kv_dtype));
  }
  conv->mode = mode;
  KvCache& cache = conv->cache;
  cache.Truncate(seq.reused_rows);
  // Room for the prompt and the longest reply, allocated once (pages are only touched as rows are written).
  cache.Reserve(seq.length + gen.max_new_tokens - seq.reused_rows);
  const double prompt_base = RopeBaseForLength(c, seq.length);
  conv->row_keys.assign(seq.row_keys.begin(), seq.row_keys.end());
  conv->row_bases.assign(seq.length, prompt_base);
  std::vector<float> logits(V);
  const int64_t first = seq.reused_rows;
  if (r.progress) r.progress({ChatProgress::Stage::kPrefill, 0, 0, first, seq.length, 0.0});
  for (int64_t s = first; s < seq.length; s += kPrefillChunk) {
    DecoderStep step;
    step.embeds = &seq.embeds[s * D];
    step.num_rows = std::min(kPrefillChunk, seq.length - s);
    step.image_mask = &seq.image_mask[s];
    step.mode = mode;
    step.cache = &cache;
    step.rope_length = seq.length;
    step.no_logits = s + step.num_rows < seq.length;  // only the last row's logits are used
    step.workspace = &workspace_;
    DecoderForward(c, model_.weights.text, step, &pool_, logits.data());
    if (r.progress) {
      r.progress({ChatProgress::Stage::kPrefill, 0, 0, s + step.num_rows, seq.length, SecondsSince(t0)});
    }
  }
  workspace_.Release();  // sized for a prompt chunk; decoding needs one row
  IXC_RETURN_IF_ERROR(CheckLogits(logits, "the prompt's last position"));
  result.timings.prefill_ms = MsSince(t0);
  result.timings.prefilled_tokens = seq.length - first;
  if (r.capture_tensors) result.tensors.last_logits = logits;
  seq.embeds.clear();
  seq.embeds.shrink_to_fit();

  t0 = Clock::now();
  TextStream stream(decode);
  bool cancelled = false;
  auto emit = [&](const std::vector<int>& ids) {
    if (!on_text || cancelled) return;
    std::string piece = stream.Update(ids);
    if (!piece.empty() && !on_text(piece)) cancelled = true;
  };
  auto is_stop = [&](int id) { return std::find(gen.stop_ids.begin(), gen.stop_ids.end(), id) != gen.stop_ids.end(); };

  if (gen.num_beams > 1) {
    BeamSearchParams bp;
    bp.num_beams = gen.num_beams;
    bp.max_new_tokens = gen.max_new_tokens;
    bp.repetition_penalty = gen.repetition_penalty;
    bp.eos_ids = gen.stop_ids;
    bp.pad_eos_id = tok.eos_id();  // HF pads with the first eos id, which is the tokenizer's
    bp.do_sample = gen.do_sample;
    bp.temperature = gen.temperature;
    bp.top_k = gen.top_k;
    bp.top_p = gen.top_p;
    bp.seed = gen.seed;
    // Beams cannot stream (no prefix is settled until the end), so the callback gets an empty piece per step:
    // that is how a caller stops a long beam search.
    auto cancel_check = [&]() { return cancelled = cancelled || (on_text && !on_text(std::string_view())); };
    IXC_ASSIGN_OR_RETURN(BeamSearchOutput out,
                         RunBeamSearch(c, model_.weights.text, mode, cache, logits, bp, &pool_, cancel_check));
    result.tokens = std::move(out.tokens);
    result.stop_reason = cancelled ? "cancelled" : out.finished_by_eos ? "stop_token" : "max_new_tokens";
    if (!cancelled) emit(result.tokens);
  } else {
    SamplerParams sp;
    sp.do_sample = gen.do_sample;
    sp.temperature = gen.temperature;
    sp.top_k = gen.top_k;
    sp.top_p = gen.top_p;
    sp.repetition_penalty = gen.repetition_penalty;
    Rng rng(gen.seed);
    std::vector<float> embed(D);
    result.stop_reason = "max_new_tokens";
    // In a decode group, this session's steps join the other members' (left on every way out of the loop).
    DecodeBatcher* batcher = options_.decode_group ? &options_.decode_group->batcher() : nullptr;
    struct Membership {
      DecodeBatcher* b;
      explicit Membership(DecodeBatcher* x) : b(x) {
        if (b) b->Join();
      }
      ~Membership() {
        if (b) b->Leave();
      }
    } membership(batcher);
    for (int step = 0; step < gen.max_new_tokens; ++step) {
      const int next = SelectNextToken(logits, result.tokens, sp, rng);
      result.tokens.push_back(next);
      if (is_stop(next)) {
        result.stop_reason = "stop_token";
        break;
      }
      emit(result.tokens);
      if (cancelled) {
        result.stop_reason = "cancelled";
        break;
      }
      if (step + 1 == gen.max_new_tokens) break;
      EmbedTokens(model_.weights.text, &next, 1, embed.data());
      DecoderStep ds;
      ds.embeds = embed.data();
      ds.num_rows = 1;
      ds.mode = mode;  // no image mask: Partial LoRA never touches generated tokens
      ds.cache = &cache;
      ds.workspace = &workspace_;
      const int64_t position = cache.length();
      if (batcher) {
        batcher->Step(model_, ds, &pool_, logits.data());
      } else {
        DecoderForward(c, model_.weights.text, ds, &pool_, logits.data());
      }
      IXC_RETURN_IF_ERROR(CheckLogits(logits, StrFormat("generated token %d", step + 2)));
      conv->row_keys.push_back(static_cast<uint64_t>(next));
      conv->row_bases.push_back(RopeBaseForLength(c, position + 1));
    }
  }
  workspace_.Release();  // an idle session holds no activation memory
  conversation_ = std::move(conv);
  result.timings.decode_ms = MsSince(t0);
  result.timings.decoded_tokens = static_cast<int64_t>(result.tokens.size());
  result.text = decode(result.tokens);
  if (on_text && !cancelled) {
    std::string rest = stream.Finish(result.tokens);
    if (!rest.empty()) on_text(rest);
  }
  return result;
}

Session::Session(const Model& model, const SessionOptions& options)
    : impl_(std::make_unique<SessionImpl>(model.impl(), options)) {}
Session::~Session() = default;
Result<ChatResult> Session::Chat(const ChatRequest& r, const TextCallback& on_text) {
  // The conversation's cache is taken out of the session at the start of a request, so after a failure the next
  // turn starts afresh.
  return CatchAllocationFailure("answering the request", [&] { return impl_->Chat(r, on_text); });
}

Model::Model(std::unique_ptr<ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::Load(const LoadOptions& o) {
  return CatchAllocationFailure("loading the model", [&]() -> Result<std::unique_ptr<Model>> {
    IXC_ASSIGN_OR_RETURN(auto impl, LoadModelImpl(o));
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  });
}

bool Model::HasMode(TaskMode m) const { return CheckModeAvailable(*impl_, m).ok(); }
bool Model::HasVision() const { return impl_->weights.vision.present; }

std::string Model::Describe() const {
  const DecoderConfig& c = impl_->config.text;
  std::string modes = "base";
  if (HasMode(TaskMode::kWeb)) modes += ", web";
  if (HasMode(TaskMode::kWrite)) modes += ", write";
  return StrFormat("%s: %s, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, vision %s, modes: %s",
                   impl_->source.c_str(), impl_->checkpoint->format().c_str(), (long long)c.num_hidden_layers,
                   (long long)c.hidden_size, (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
                   (long long)c.vocab_size, HasVision() ? "yes" : "no", modes.c_str());
}

const char* ChatMetaInstruction() { return kChatMetaInstruction; }

Status LimitInstructionSet(std::string_view name) {
  Isa isa;
  if (!ParseIsa(name, &isa)) {
    return InvalidArgument("unknown instruction set '" + std::string(name) + "' (scalar, avx2, avx512, avx512bf16 or amx)");
  }
  SetIsaLimit(isa);
  return Status::Ok();
}

std::string DescribeCpu() { return CpuDescription(); }

const char* PrecisionName(Precision p) { return p == Precision::kF32 ? "f32" : "fast"; }

Result<Precision> ParsePrecision(std::string_view name) {
  if (name == "fast") return Precision::kFast;
  if (name == "f32") return Precision::kF32;
  return InvalidArgument("unknown precision '" + std::string(name) + "' (fast or f32)");
}

const char* KvCacheTypeName(KvCacheType t) {
  switch (t) {
    case KvCacheType::kF16: return "f16";
    case KvCacheType::kF32: return "f32";
    case KvCacheType::kQ8_0: return "q8_0";
    default: return "auto";
  }
}

Result<KvCacheType> ParseKvCacheType(std::string_view name) {
  for (KvCacheType t : {KvCacheType::kAuto, KvCacheType::kF16, KvCacheType::kF32, KvCacheType::kQ8_0}) {
    if (name == KvCacheTypeName(t)) return t;
  }
  return InvalidArgument("unknown KV cache type '" + std::string(name) + "' (f16, f32 or q8_0)");
}

DType KvDType(Precision p, KvCacheType t) {
  switch (t) {
    case KvCacheType::kF16: return DType::kF16;
    case KvCacheType::kF32: return DType::kF32;
    case KvCacheType::kQ8_0: return DType::kQ8_0;
    default: return p == Precision::kF32 ? DType::kF32 : DType::kF16;
  }
}

const char* TaskModeName(TaskMode m) {
  switch (m) {
    case TaskMode::kWeb: return "web";
    case TaskMode::kWrite: return "write";
    default: return "base";
  }
}

Result<TaskMode> ParseTaskMode(std::string_view name) {
  if (name == "base") return TaskMode::kBase;
  if (name == "web") return TaskMode::kWeb;
  if (name == "write") return TaskMode::kWrite;
  return InvalidArgument("unknown mode '" + std::string(name) + "' (base, web or write)");
}

}  // namespace ixc

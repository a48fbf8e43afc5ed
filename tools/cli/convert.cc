// ixc convert: flags -> ConvertModel, a summary line.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "progress.h"

namespace ixc::cli {

int RunConvert(int argc, char** argv) {
  ConvertOptions o;
  bool help = false;
  FlagSet fs;
  fs.Add({"--model", "-m", "DIR", "the model: a Hugging Face folder (safetensors, .bin or the 4-bit AWQ release) or a "
          "GGUF file ixc wrote",
          [&](const std::string& v) { return ParsePath("-m", v, &o.model_dir); }});
  fs.Add(NoCheckWeightsFlag(&o.check_weights));
  fs.Add({"--output", "-o", "FILE", "the GGUF file to write",
          [&](const std::string& v) { o.output = v; return Status::Ok(); }});
  fs.Add({"--type", "", "T", "bf16 (default: 16-bit matrices), q8_0 (8-bit matrices) or q4_0 (4-bit decoder linears, 8-bit other matrices)",
          [&](const std::string& v) {
            if (v != "bf16" && v != "q8_0" && v != "q4_0") return InvalidArgument("--type must be bf16, q8_0 or q4_0");
            o.type = v;
            return Status::Ok();
          }});
  fs.Add({"--synthetic", "", "", "random weights of the real IXC-2.5 shapes and adapter ranks instead of a model (for "
          "measuring a full-size file without the real weights); needs --tokenizer",
          [&](const std::string&) { o.synthetic = true; return Status::Ok(); }});
  fs.Add({"--config", "", "FILE", "with --synthetic: the shapes of this config.json",
          [&](const std::string& v) { o.synthetic_config = v; return Status::Ok(); }});
  fs.Add({"--tokenizer", "", "FILE", "with --synthetic: the tokenizer.model the file holds",
          [&](const std::string& v) { o.tokenizer = v; return Status::Ok(); }});
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { help = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (help) {
    std::printf("usage: ixc convert -m MODEL -o OUT.gguf [--type bf16|q8_0|q4_0]\n"
                "       ixc convert --synthetic --tokenizer tokenizer.model -o OUT.gguf [--type T] [--config FILE]\n\n"
                "Writes the model as one GGUF file: every tensor under its Hugging Face name, with config.json and\n"
                "tokenizer.model inside. Every ixc command takes the file with -m.\n\n%s", fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (!o.synthetic && (!o.synthetic_config.empty() || !o.tokenizer.empty())) {
    return Fail(InvalidArgument("--config and --tokenizer apply to --synthetic only"));
  }
  if (o.synthetic && !o.model_dir.empty()) return Fail(InvalidArgument("give -m MODEL or --synthetic, not both"));
  if (o.synthetic && o.tokenizer.empty()) return Fail(InvalidArgument("--synthetic needs --tokenizer FILE"));
  if (!o.synthetic && o.model_dir.empty()) return Fail(InvalidArgument("convert needs -m MODEL"));
  if (o.output.empty()) return Fail(InvalidArgument("convert needs -o OUT.gguf"));
  LoadProgressBar bar = LoadProgressBar::Terminal();
  o.progress = bar.callback();
  auto r = ConvertModel(o);
  if (!r.ok()) return Fail(r.status());
  std::printf("wrote %s: %lld tensors (%lld quantised), %.2f GB\n", o.output.c_str(), (long long)r->tensors,
              (long long)r->quantised_tensors, static_cast<double>(r->file_bytes) / 1e9);
  return 0;
}

}  // namespace ixc::cli

// Pieces shared by the ixc subcommands: flag groups, error reporting, streaming output, JSON results.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "flags.h"
#include "ixc/ixc.h"

namespace ixc::cli {

// Set by SIGINT; generation callbacks return false once it is set, which stops generation cleanly.
extern std::atomic<bool> g_interrupted;
void InstallInterruptHandler();

// Prints "ixc: error: ..." and returns the exit code: 2 for usage errors, 1 otherwise.
// Exit codes, one table for every command (README "Exit codes"): 0 ok, 1 run-time or I/O error, 2 usage or
// invalid input, 3 over a resource limit (memory, a request or file bound), 130 interrupted.
int ExitCodeFor(const Status& s);
// Prints the error and returns its exit code.
int Fail(const Status& s);

struct CommonArgs {
  std::string model_dir;
  int threads = 0;
  Precision precision = Precision::kFast;
  KvCacheType kv_type = KvCacheType::kAuto;
  bool json_out = false;
  bool help = false;
  bool check_weights = true;
};

// --no-check-weights: skip the load-time scan for NaN and infinite weights (LoadOptions::check_weights).
Flag NoCheckWeightsFlag(bool* check);

// --kv-type, parsed into *out (chat's flag group, info and bench).
Flag KvTypeFlag(KvCacheType* out);
void AddCommonFlags(FlagSet& fs, CommonArgs& a);
void AddMediaFlags(FlagSet& fs, ChatRequest& r);
void AddGenerationFlags(FlagSet& fs, GenerationOptions& g);

// Loads the model named by -m (errors when none was given).
Result<std::unique_ptr<Model>> LoadModel(const CommonArgs& a);

// Streams reply pieces to stdout; stops on Ctrl-C.
TextCallback StdoutStreamer(bool enabled);

nlohmann::json ResultJson(const ChatResult& r);

// Reads a (small) text file given on the command line.
Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes);

// Exit code for a finished generation: 130 when Ctrl-C stopped it.
int ExitCodeFor(const ChatResult& r);

}  // namespace ixc::cli

// ixc: the command-line front end. Everything goes through the public API (ixc/ixc.h); these files only parse
// flags, print, and decide exit codes.
#include <cstdio>
#include <new>
#include <string>

#include "commands.h"

namespace {

void Usage() {
  std::printf(
      "ixc: InternLM-XComposer-2.5 on the CPU\n\n"
      "usage: ixc COMMAND [options]\n\n"
      "commands:\n"
      "  chat            ask questions about text, images (one-shot with -p, interactive otherwise)\n"
      "  write-article   write an article (the write adapter)\n"
      "  webpage         build a web page from an instruction, a resume or a screenshot (the web adapter)\n"
      "  info            a model folder's format, dtypes, parameter counts, modes and memory estimate\n"
      "  convert         write a model as one GGUF file (bf16, q8_0 or q4_0)\n"
      "  bench           the engine's speed per stage (synthetic or real weights) beside this machine's limits\n"
      "  serve           an OpenAI-compatible HTTP server with a chat page\n\n"
      "Run 'ixc COMMAND --help' for the options of a command.\n");
}

int Run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    Usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "chat") return ixc::cli::RunChat(argc, argv);
  if (cmd == "write-article") return ixc::cli::RunWriteArticle(argc, argv);
  if (cmd == "webpage") return ixc::cli::RunWebpage(argc, argv);
  if (cmd == "info") return ixc::cli::RunInfo(argc, argv);
  if (cmd == "convert") return ixc::cli::RunConvert(argc, argv);
  if (cmd == "bench") return ixc::cli::RunBench(argc, argv);
  if (cmd == "serve") return ixc::cli::RunServe(argc, argv);
  std::fprintf(stderr, "ixc: error: unknown command '%s' (see ixc --help)\n", cmd.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // The library turns allocation failures into errors; this catches the front end's own.
  try {
    return Run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ixc: error: out of memory\n");
    return 3;
  }
}

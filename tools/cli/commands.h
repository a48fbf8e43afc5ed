// The ixc subcommands; each parses its own flags from argv[2..] and returns the process exit code.
#pragma once

namespace ixc::cli {

int RunChat(int argc, char** argv);
int RunWriteArticle(int argc, char** argv);
int RunWebpage(int argc, char** argv);
int RunInfo(int argc, char** argv);
int RunConvert(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunServe(int argc, char** argv);

}  // namespace ixc::cli

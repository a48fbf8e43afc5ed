// Hostile inputs (docs/hostile-inputs.md): paths that are not regular files. A named pipe given as any input used to
// block open() forever; a directory was reported with a nonsensical size or as "not found". Every entry point that
// takes a path checks it with stat() first and names what it found.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <string>

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "core/testing.h"
#include "io/checkpoint.h"
#include "ixc/ixc.h"
#include "media/image.h"
#include "text/tokenizer.h"
#include "video/label_font.h"
#include "video/video_decoder.h"

namespace ixc {
namespace {

namespace fs = std::filesystem;

// Runs `open` on another thread and returns its status; a call still blocked after 10 s fails the test (a writer
// then opens the pipe so the thread can finish).
Status ReturnsPromptly(const std::function<Status()>& open, const std::string& fifo) {
  auto result = std::async(std::launch::async, open);
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on " << fifo;
    const int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    Status s = result.get();
    if (fd >= 0) ::close(fd);
    return s;
  }
  return result.get();
}

TEST(Hostile, PathsThatAreNotRegularFilesAreRefusedWithoutBlocking) {
  const std::string dir = testing::MakeTempDir("hostile_paths");
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string sub = dir + "/folder";
  fs::create_directory(sub);
  struct Case {
    std::string path;
    std::string says;
  };
  const Case cases[] = {{fifo, "named pipe (FIFO), not a regular file"},
                        {sub, "is a directory, not a regular file"},
                        {"/dev/zero", "is a device, not a regular file"},
                        {dir + "/missing", "does not exist"}};
  const std::pair<const char*, std::function<Status(const std::string&)>> entries[] = {
      {"ReadFileToString", [](const std::string& p) { return ReadFileToString(p).status(); }},
      {"MappedFile", [](const std::string& p) { return MappedFile::Open(p).status(); }},
      {"image", [](const std::string& p) { return DecodeImageFile(p).status(); }},
      {"tokenizer", [](const std::string& p) { return Tokenizer::Load(p).status(); }},
      {"video", [](const std::string& p) { return VideoDecoder::Open(p, {}).status(); }},
      {"font", [](const std::string& p) { return LabelFont::Open(p, 16).status(); }},
      {"shard index", [](const std::string& p) { return ReadShardIndex(p).status(); }},
  };
  for (const auto& [entry, open] : entries) {
    for (const Case& c : cases) {
      const Status s = ReturnsPromptly([&, open = open] { return open(c.path); }, fifo);
      EXPECT_FALSE(s.ok()) << entry << " accepted " << c.path;
      EXPECT_NE(s.message().find(c.path), std::string::npos) << entry << ": " << s.message();
      EXPECT_NE(s.message().find(c.says), std::string::npos) << entry << ": " << s.message();
    }
  }
}

// A model folder whose config.json is a pipe: the load fails at once, naming config.json and what it is.
TEST(Hostile, ModelFolderWithAPipeForConfigFails) {
  const std::string dir = testing::MakeTempDir("hostile_model");
  const std::string fifo = dir + "/config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Status s = ReturnsPromptly([&] { return Model::Load({dir}).status(); }, fifo);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("config.json is a named pipe"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ixc

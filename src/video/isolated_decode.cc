#include "video/isolated_decode.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace ixc {
namespace {

// The child's message: status code, message, then (when ok) the probe, the indices and the frames.
class Writer {
 public:
  template <typename T>
  void Put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  void Bytes(const void* p, size_t n) {
    Put<uint64_t>(n);
    buf_.insert(buf_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  }
  const std::vector<uint8_t>& buf() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // A length-prefixed run of bytes (Writer::Bytes) into `out`, a string or a byte vector.
  template <typename C>
  bool Blob(C* out) {
    uint64_t n;
    if (!Get(&n) || b_.size() - pos_ < n) return false;
    out->assign(b_.data() + pos_, b_.data() + pos_ + n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

[[noreturn]] void ChildMain(int fd, const std::function<Status(DecodedVideo*)>& work) {
  DecodedVideo v;
  Status s = CatchAllocationFailure("decoding the video", [&] { return work(&v); });
  Writer w;
  w.Put<int32_t>(static_cast<int32_t>(s.code()));
  w.Bytes(s.message().data(), s.message().size());
  if (s.ok()) {
    w.Put(v.probe.avg_fps);
    w.Put(v.probe.num_frames);
    w.Put<int32_t>(v.probe.width);
    w.Put<int32_t>(v.probe.height);
    w.Put(v.probe.duration_s);
    w.Bytes(v.frame_indices.data(), v.frame_indices.size() * sizeof(int64_t));
    w.Put<uint64_t>(v.frames.size());
    for (const Image& im : v.frames) {
      w.Put<int32_t>(im.width);
      w.Put<int32_t>(im.height);
      w.Bytes(im.rgb.data(), im.rgb.size());
    }
  }
  const std::vector<uint8_t>& b = w.buf();
  for (size_t done = 0; done < b.size();) {
    const ssize_t n = ::write(fd, b.data() + done, b.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(2);
    done += static_cast<size_t>(n);
  }
  _exit(0);  // no atexit handlers or destructors of the parent's state
}

}  // namespace

Result<DecodedVideo> RunIsolated(const std::string& path, const std::function<Status(DecodedVideo*)>& work,
                                 int64_t max_bytes, int timeout_s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Internal(StrFormat("cannot create a pipe: %s", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return ResourceExhausted(StrFormat("cannot start the video decoder process: %s", std::strerror(e)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ChildMain(fds[1], work);
  }
  ::close(fds[1]);

  // Read until the child closes the pipe (it exits), within the byte bound and the time limit.
  const int64_t limit = max_bytes + (int64_t{1} << 20);  // the frames plus the header, indices and message
  std::vector<uint8_t> msg;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  Status failure;
  uint8_t chunk[1 << 16];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      failure = ResourceExhausted(StrFormat("%s: decoding took over %d s", path.c_str(), timeout_s));
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of the child's output
    if (static_cast<int64_t>(msg.size()) + n > limit) {
      failure = ResourceExhausted(StrFormat("%s: the decoded frames are over %lld bytes", path.c_str(), (long long)max_bytes));
      break;
    }
    msg.insert(msg.end(), chunk, chunk + n);
  }
  ::close(fds[0]);
  if (!failure.ok()) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!failure.ok()) return failure;
  if (WIFSIGNALED(wstatus)) {
    return DataLoss(StrFormat("%s: the video decoder crashed on this file (signal %d: %s); it is damaged or not a video "
                              "FFmpeg can read safely",
                              path.c_str(), WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus))));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Internal(StrFormat("%s: the video decoder process failed (exit status %d)", path.c_str(),
                              WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1));
  }

  Reader rd(msg);
  const Status garbled = Internal(StrFormat("%s: garbled reply from the video decoder process", path.c_str()));
  int32_t code;
  std::string message;
  if (!rd.Get(&code) || !rd.Blob(&message)) return garbled;
  if (code != static_cast<int32_t>(StatusCode::kOk)) return Status(static_cast<StatusCode>(code), message);
  DecodedVideo v;
  int32_t w, h;
  std::vector<uint8_t> indices;
  uint64_t nframes;
  if (!rd.Get(&v.probe.avg_fps) || !rd.Get(&v.probe.num_frames) || !rd.Get(&w) || !rd.Get(&h) ||
      !rd.Get(&v.probe.duration_s) || !rd.Blob(&indices) || indices.size() % sizeof(int64_t) != 0 ||
      !rd.Get(&nframes) || nframes > msg.size()) {
    return garbled;
  }
  v.probe.width = w;
  v.probe.height = h;
  v.frame_indices.resize(indices.size() / sizeof(int64_t));
  if (!indices.empty()) std::memcpy(v.frame_indices.data(), indices.data(), indices.size());
  for (uint64_t i = 0; i < nframes; ++i) {
    Image im;
    if (!rd.Get(&im.width) || !rd.Get(&im.height) || !rd.Blob(&im.rgb) || im.width < 0 || im.height < 0 ||
        im.rgb.size() != static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * 3) {
      return garbled;
    }
    v.frames.push_back(std::move(im));
  }
  if (!rd.done()) return garbled;
  return v;
}

}  // namespace ixc

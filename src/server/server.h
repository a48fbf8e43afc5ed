// `ixc serve`: an OpenAI-compatible HTTP server over one Model. Requests run in slots, each a Session that keeps
// its conversation's KV cache, so a client continuing a conversation on the same slot reuses its prefix.
//
//   ixc::server::Server server(model, {.port = 8080, .parallel = 2});
//   if (Status s = server.Bind(); !s.ok()) ...
//   server.Run();  // until Stop() (from another thread, e.g. on SIGTERM)
#pragma once

#include <memory>
#include <string>

#include "ixc/ixc.h"
#include "server/openai.h"

namespace ixc::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (see Server::port)
  int parallel = 1;              // slots: requests running at once (they share the kernel threads)
  int threads = 0;               // kernel threads; 0: all cores
  Precision precision = Precision::kFast;
  KvCacheType kv_type = KvCacheType::kAuto;
  std::string api_key;           // non-empty: /v1/* requests need "Authorization: Bearer <key>"
  std::string model_name = "internlm-xcomposer2d5-7b";  // what /v1/models lists and responses name
  RequestLimits limits;
  int64_t max_body_bytes = int64_t{64} << 20;
  int max_queue = 16;            // requests waiting for a slot; beyond it, 503 with Retry-After
  int read_timeout_s = 30;       // a client that sends nothing for this long is dropped
};

class Server {
 public:
  Server(const Model& model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening socket.
  Status Bind();
  // The bound port (after Bind).
  int port() const;
  // Serves until Stop(); returns once the listener is closed and every accepted request has been answered.
  Status Run();
  // Stops accepting connections; requests already accepted finish. Safe from any thread, more than once.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ixc::server

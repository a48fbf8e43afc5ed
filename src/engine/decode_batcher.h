// The rendezvous behind ixc::DecodeGroup: sessions on their own threads hand in single-token decoder steps, and
// once every member that is decoding has handed in its step, one of them runs all the steps as one batched
// forward (DecoderForwardBatch), reading each weight once for every stream.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <vector>

#include "core/thread_pool.h"
#include "engine/model_impl.h"
#include "model/decoder.h"

namespace ixc {

class DecodeBatcher {
 public:
  // A thread starts or stops taking decoding steps; between the two it must keep calling Step (the others wait
  // for it each step).
  void Join();
  void Leave();
  // Runs `step` together with the steps of the other members; returns when its logits are written.
  void Step(const ModelImpl& model, const DecoderStep& step, ThreadPool* pool, float* logits);

  // What batching achieved so far: forwards run, steps they held, the most steps in one.
  struct Stats {
    int64_t forwards = 0, steps = 0;
    int64_t max_steps = 0;
  };
  Stats stats();

 private:
  struct Pending {
    const ModelImpl* model;
    const DecoderStep* step;
    ThreadPool* pool;
    float* logits;
    bool done = false;
    std::exception_ptr error;  // what the batch threw (e.g. bad_alloc): every member rethrows it
  };
  void RunBatch(std::vector<Pending*>& batch);

  std::mutex mu_;
  std::condition_variable cv_;
  int members_ = 0;       // threads between Join and Leave
  bool running_ = false;  // a batch is being computed
  std::vector<Pending*> pending_;
  Stats stats_;
};

}  // namespace ixc

#include "engine/decode_batcher.h"

#include <algorithm>

#include "ixc/ixc.h"

namespace ixc {

void DecodeBatcher::Join() {
  std::lock_guard<std::mutex> lock(mu_);
  ++members_;
}

void DecodeBatcher::Leave() {
  std::lock_guard<std::mutex> lock(mu_);
  --members_;
  cv_.notify_all();  // the steps handed in may be all there will be now
}

void DecodeBatcher::Step(const ModelImpl& model, const DecoderStep& step, ThreadPool* pool, float* logits) {
  Pending me{&model, &step, pool, logits, false, nullptr};
  std::unique_lock<std::mutex> lock(mu_);
  pending_.push_back(&me);
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [&] {
      return me.done || (!running_ && static_cast<int>(pending_.size()) >= members_);
    });
    if (me.done) {
      if (me.error) std::rethrow_exception(me.error);
      return;
    }
    // Every member has handed in a step (or left): this thread computes the batch. Whatever it throws reaches
    // every member, so none waits for a batch that will never finish.
    std::vector<Pending*> batch;
    batch.swap(pending_);
    running_ = true;
    lock.unlock();
    std::exception_ptr error;
    try {
      RunBatch(batch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    running_ = false;
    for (Pending* p : batch) {
      p->error = error;
      p->done = true;
    }
    cv_.notify_all();
  }
}

// Steps of one model and adapter mode run as one forward; a batch holding several runs one forward per kind.
void DecodeBatcher::RunBatch(std::vector<Pending*>& batch) {
  std::vector<bool> taken(batch.size(), false);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (taken[i]) continue;
    std::vector<DecoderStep> steps;
    std::vector<Pending*> members;
    for (size_t j = i; j < batch.size(); ++j) {
      if (taken[j] || batch[j]->model != batch[i]->model || batch[j]->step->mode != batch[i]->step->mode) continue;
      taken[j] = true;
      steps.push_back(*batch[j]->step);
      members.push_back(batch[j]);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.forwards;
      stats_.steps += static_cast<int64_t>(members.size());
      stats_.max_steps = std::max<int64_t>(stats_.max_steps, static_cast<int64_t>(members.size()));
    }
    const ModelImpl& m = *members[0]->model;
    const int64_t V = m.config.text.vocab_size;
    if (members.size() == 1) {
      DecoderForward(m.config.text, m.weights.text, steps[0], members[0]->pool, members[0]->logits);
      continue;
    }
    std::vector<float> logits(members.size() * V);
    DecoderForwardBatch(m.config.text, m.weights.text, steps, members[0]->pool, logits.data());
    for (size_t k = 0; k < members.size(); ++k) std::copy_n(&logits[k * V], V, members[k]->logits);
  }
}

DecodeBatcher::Stats DecodeBatcher::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

DecodeGroup::DecodeGroup() : impl_(std::make_unique<DecodeBatcher>()) {}
DecodeGroup::~DecodeGroup() = default;

}  // namespace ixc

#include "api/async_requests.h"

#include <vector>

#include "core/random.h"

namespace orrery {

Result<std::string> AsyncRequests::Begin(int64_t tenant_id, const std::string& model) {
  std::lock_guard lock(mutex_);
  SweepLocked(Clock::now());
  Usage& usage = usage_[tenant_id];
  if (usage.pending >= options_.max_pending) {
    return Unavailable("this tenant has " + std::to_string(usage.pending) +
                       " asynchronous requests unanswered, the most allowed; fetch or wait for "
                       "some first");
  }
  std::string id = "req_" + RandomHex(16);
  Entry& entry = entries_[id];
  entry.tenant_id = tenant_id;
  entry.model = model;
  ++usage.pending;
  return id;
}

void AsyncRequests::Finish(const std::string& id, HttpResponse answer) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.done) return;
  Entry& entry = it->second;
  Usage& usage = usage_[entry.tenant_id];
  --usage.pending;
  uint64_t size = answer.body.size();
  if (usage.bytes + size > options_.max_bytes) {
    answer = HttpResponse::Error(Status(
        Code::kInsufficientStorage,
        "the answer (" + std::to_string(size) + " bytes) does not fit in this tenant's " +
            std::to_string(options_.max_bytes) +
            " bytes kept for asynchronous answers; fetch earlier answers or ask synchronously"));
    size = answer.body.size();
  }
  usage.bytes += size;
  entry.answer = std::move(answer);
  entry.done = true;
  entry.finished = Clock::now();
}

void AsyncRequests::Cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (!it->second.done)
    --usage_[it->second.tenant_id].pending;
  else
    usage_[it->second.tenant_id].bytes -= it->second.answer.body.size();
  entries_.erase(it);
}

std::optional<AsyncRequests::State> AsyncRequests::Find(int64_t tenant_id, const std::string& id) {
  std::lock_guard lock(mutex_);
  SweepLocked(Clock::now());
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.tenant_id != tenant_id) return std::nullopt;
  State state;
  state.model = it->second.model;
  if (it->second.expired) {
    state.kind = State::kExpired;
  } else if (it->second.done) {
    state.kind = State::kDone;
    state.answer = it->second.answer;
  }
  return state;
}

void AsyncRequests::SweepLocked(Clock::time_point now) {
  if (now - last_sweep_ < std::chrono::seconds(1)) return;  // a pass over all, at most 1/s
  last_sweep_ = now;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    if (entry.done && !entry.expired && now - entry.finished >= options_.keep) {
      usage_[entry.tenant_id].bytes -= entry.answer.body.size();
      entry.answer = HttpResponse();  // the bytes go; the id stays, expired
      entry.expired = true;
    }
    if (entry.expired && now - entry.finished >= 2 * options_.keep) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace orrery

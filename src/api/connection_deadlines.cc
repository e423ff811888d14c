#include "api/connection_deadlines.h"

#include <vector>

namespace orrery {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ConnectionDeadlines::Start() {
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
    if (error) return;  // the io_context is stopping
    self->Sweep();
    self->Start();
  });
}

uint64_t ConnectionDeadlines::Add(std::weak_ptr<DeadlineHolder> connection) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_id_++;
  connections_.emplace(id, std::move(connection));
  return id;
}

void ConnectionDeadlines::Remove(uint64_t id) {
  std::lock_guard lock(mutex_);
  connections_.erase(id);
}

void ConnectionDeadlines::Sweep() {
  int64_t now = SteadyNowMs();
  std::vector<std::shared_ptr<DeadlineHolder>> expired;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, weak] : connections_) {
      std::shared_ptr<DeadlineHolder> connection = weak.lock();
      if (connection && connection->PastDeadline(now)) expired.push_back(std::move(connection));
    }
  }
  // Outside the lock: a connection's destructor calls Remove().
  for (const auto& connection : expired) connection->Expire();
}

}  // namespace orrery

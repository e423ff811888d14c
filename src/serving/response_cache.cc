// Why one mutex and not shards: the critical section is a map find and a
// list splice (hashing, key comparison and copying are outside it), so it is
// short enough that sharding would buy little, and one recency list keeps
// eviction exactly least-recently-used over the whole capacity (shards
// would make the 1/8 rule and the LRU order per shard).
#include "serving/response_cache.h"

#include <algorithm>
#include <cstring>

#include <xxhash.h>

namespace orrery {
namespace {

// Fixed-width fields in host byte order: the key never leaves the process.
void AppendU64(std::string& out, uint64_t value) {
  char bytes[sizeof value];
  std::memcpy(bytes, &value, sizeof value);
  out.append(bytes, sizeof value);
}

void AppendBytes(std::string& out, std::string_view bytes) {
  AppendU64(out, bytes.size());
  out.append(bytes);
}

uint64_t EntryBytes(const std::string& key, const std::vector<Tensor>& outputs) {
  uint64_t bytes = ResponseCache::kEntryOverhead + key.size();
  for (const Tensor& output : outputs) {
    bytes += ResponseCache::kTensorOverhead + output.name.size() +
             output.shape.size() * sizeof(int64_t) + output.data.size();
  }
  return bytes;
}

}  // namespace

ResponseCache::ResponseCache(Options options) : options_(std::move(options)) {}

std::string ResponseCache::MakeKey(std::string_view version_key, std::string_view digest,
                                   const std::vector<Tensor>& inputs) {
  size_t size = 64 + version_key.size() + digest.size();
  for (const Tensor& input : inputs) {
    size += 32 + input.name.size() + input.shape.size() * 8 + input.data.size();
  }
  std::string key;
  key.reserve(size);
  AppendBytes(key, version_key);
  AppendBytes(key, digest);
  AppendU64(key, inputs.size());
  for (const Tensor& input : inputs) {
    AppendBytes(key, input.name);
    key.push_back(static_cast<char>(input.datatype));
    AppendU64(key, input.shape.size());
    for (int64_t dim : input.shape) AppendU64(key, static_cast<uint64_t>(dim));
    // BYTES data already holds each element's length before its bytes.
    AppendBytes(key, input.data);
  }
  return key;
}

Hash128 ResponseCache::HashKey(std::string_view key) const {
  if (options_.hash) return options_.hash(key);
  XXH128_hash_t hash = XXH3_128bits(key.data(), key.size());
  return Hash128{hash.low64, hash.high64};
}

std::optional<std::vector<Tensor>> ResponseCache::Lookup(const std::string& key) {
  if (!enabled()) return std::nullopt;
  Hash128 hash = HashKey(key);
  std::shared_ptr<const Entry> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(hash);
    if (it == entries_.end()) return std::nullopt;
    recency_.splice(recency_.begin(), recency_, it->second);
    entry = *it->second;
  }
  // Same hash, different request: a miss, never another request's answer.
  if (entry->key != key) return std::nullopt;
  return entry->outputs;
}

bool ResponseCache::Insert(std::string key, const std::vector<Tensor>& outputs) {
  if (!enabled()) return false;
  uint64_t bytes = EntryBytes(key, outputs);
  if (bytes > options_.capacity_bytes / 8) return false;
  auto entry = std::make_shared<Entry>();
  entry->hash = HashKey(key);
  entry->key = std::move(key);
  entry->outputs = outputs;
  entry->bytes = bytes;
  std::vector<std::shared_ptr<const Entry>> dropped;  // freed after the lock is released
  std::lock_guard lock(mutex_);
  auto it = entries_.find(entry->hash);
  if (it != entries_.end()) {
    bytes_ -= (*it->second)->bytes;
    dropped.push_back(std::move(*it->second));
    recency_.erase(it->second);
    entries_.erase(it);
  }
  recency_.push_front(entry);
  entries_.emplace(entry->hash, recency_.begin());
  bytes_ += bytes;
  while (bytes_ > options_.capacity_bytes) {
    std::shared_ptr<const Entry>& oldest = recency_.back();
    bytes_ -= oldest->bytes;
    entries_.erase(oldest->hash);
    dropped.push_back(std::move(oldest));
    recency_.pop_back();
    ++evictions_;
  }
  return true;
}

std::string_view ResponseCache::VersionKeyOf(std::string_view key) {
  uint64_t size = 0;
  if (key.size() < sizeof size) return {};
  std::memcpy(&size, key.data(), sizeof size);
  return key.substr(sizeof size, std::min<uint64_t>(size, key.size() - sizeof size));
}

size_t ResponseCache::EraseVersions(
    const std::function<bool(std::string_view version_key)>& match) {
  std::vector<std::shared_ptr<const Entry>> dropped;  // freed after the lock is released
  std::lock_guard lock(mutex_);
  for (auto it = recency_.begin(); it != recency_.end();) {
    if (!match(VersionKeyOf((*it)->key))) {
      ++it;
      continue;
    }
    bytes_ -= (*it)->bytes;
    entries_.erase((*it)->hash);
    dropped.push_back(std::move(*it));
    it = recency_.erase(it);
  }
  return dropped.size();
}

ResponseCache::Stats ResponseCache::stats() const {
  std::lock_guard lock(mutex_);
  return Stats{options_.capacity_bytes, bytes_, entries_.size(), evictions_};
}

}  // namespace orrery

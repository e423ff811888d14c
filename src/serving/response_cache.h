// ResponseCache: memoized answers of deterministic servables (manifest
// `cache: true`), shared by every version the model manager serves.
//
// An entry maps a canonical key — the servable version ("tenant/name:
// version"), its package digest, and every input's name, datatype, shape and
// bytes in signature order (MakeKey) — to the version's full signature
// outputs. Entries are found by a 128-bit hash of the key (XXH3-128), but
// each entry keeps the whole key and a lookup compares it byte for byte: two
// keys with the same hash are a miss, never another request's answer.
//
// Bounded in bytes (key + outputs + a fixed overhead per entry and tensor);
// inserting beyond the capacity evicts least-recently-used entries. An entry
// larger than 1/8 of the capacity is not stored, so one huge answer cannot
// flush the cache. Capacity 0: a disabled cache (enabled() is false; Lookup
// always misses, Insert stores nothing).
//
// Ownership: entries are immutable and shared (shared_ptr) between the cache
// and lookups in progress, so an answer is copied outside the lock and an
// eviction never frees what a reader is copying.
// Thread-safety: every method is safe from any thread. One mutex guards the
// map and the recency list only; hashing, key comparison and copying happen
// outside it.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace orrery {

struct Hash128 {
  uint64_t low = 0;
  uint64_t high = 0;
  bool operator==(const Hash128&) const = default;
};

class ResponseCache {
 public:
  struct Options {
    uint64_t capacity_bytes = 256ull << 20;  // 0 disables the cache
    // The hash that finds entries; XXH3-128 when empty. Tests inject a
    // constant one to force collisions.
    std::function<Hash128(std::string_view)> hash;
  };

  struct Stats {
    uint64_t capacity_bytes = 0;
    uint64_t bytes = 0;  // counted bytes of the entries held
    uint64_t entries = 0;
    uint64_t evictions = 0;  // entries dropped to make room, ever
  };

  // Bytes counted per entry and per output tensor on top of their contents:
  // list and map nodes, Tensor and string headers.
  static constexpr uint64_t kEntryOverhead = 160;
  static constexpr uint64_t kTensorOverhead = 96;

  explicit ResponseCache(Options options);
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  bool enabled() const { return options_.capacity_bytes > 0; }

  // The canonical key of a request: every variable-length field is
  // length-prefixed, so two different requests never share a key.
  // `inputs` in signature order (as BindInputs leaves them).
  static std::string MakeKey(std::string_view version_key, std::string_view digest,
                             const std::vector<Tensor>& inputs);

  // A copy of the outputs stored under `key`, or nullopt on a miss. A hit
  // makes the entry the most recently used.
  std::optional<std::vector<Tensor>> Lookup(const std::string& key);

  // Stores a copy of `outputs` under `key` (replacing an entry with the same
  // hash) and evicts least-recently-used entries beyond the capacity. False
  // when not stored: disabled, or the entry is over 1/8 of the capacity.
  bool Insert(std::string key, const std::vector<Tensor>& outputs);

  // Drops every entry whose version key (MakeKey's first field) satisfies
  // `match`, e.g. the versions of a deleted servable; returns how many.
  size_t EraseVersions(const std::function<bool(std::string_view version_key)>& match);

  // The version key an entry's key starts with (MakeKey's first field).
  static std::string_view VersionKeyOf(std::string_view key);

  Stats stats() const;

 private:
  struct Entry {
    std::string key;
    std::vector<Tensor> outputs;
    Hash128 hash;
    uint64_t bytes = 0;
  };
  using EntryList = std::list<std::shared_ptr<const Entry>>;  // most recent first
  struct HashOf {
    size_t operator()(const Hash128& hash) const { return static_cast<size_t>(hash.low); }
  };

  Hash128 HashKey(std::string_view key) const;

  const Options options_;
  mutable std::mutex mutex_;
  EntryList recency_;                                                 // GUARDED_BY(mutex_)
  std::unordered_map<Hash128, EntryList::iterator, HashOf> entries_;  // GUARDED_BY(mutex_)
  uint64_t bytes_ = 0;                                                // GUARDED_BY(mutex_)
  uint64_t evictions_ = 0;                                            // GUARDED_BY(mutex_)
};

}  // namespace orrery

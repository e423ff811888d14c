// SHA-256 hashing (OpenSSL EVP) with lowercase hex output.
//
// Thread-safety: a Sha256 object is used by one thread at a time; the free
// functions are thread-safe.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace orrery {

// Incremental SHA-256. Update() any number of times, then FinishHex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // 64 lowercase hex characters. The object must not be used afterwards.
  std::string FinishHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);

// SHA-256 of a file's content, read in 256 KiB chunks.
Result<std::string> Sha256OfFile(const std::filesystem::path& path);

// True for exactly 64 lowercase hex characters.
bool IsSha256Hex(std::string_view text);

// Accepts "sha256:<hex>" or "<hex>" (any case); returns lowercase hex, or ""
// when `text` is not a SHA-256 digest.
std::string NormalizeSha256(std::string_view text);

}  // namespace orrery

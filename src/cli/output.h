// Human output (tables, sizes) and --json output of the CLI.
//
// Results go to stdout; messages for the person (warnings, progress) go to
// stderr so that stdout stays parseable. Not thread-safe (writes to the
// process's streams); the CLI is single-threaded.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace orrery::cli {

// "512 B", "1.5 KiB", "20.0 MiB", "3.2 GiB", "1.0 TiB".
std::string HumanSize(uint64_t bytes);

// The field `key` of `object` as display text: strings as they are, numbers
// and booleans printed, arrays of strings joined with ", ", absent or null as
// "" (or `fallback`).
std::string Field(const nlohmann::json& object, const char* key, const std::string& fallback = "");

// A text table with a header row; columns are padded to their widest cell,
// the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }  // data rows
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `value` as JSON text (indent -1: one line); strings from the server that
// are not UTF-8 are written with U+FFFD rather than throwing.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

// Pretty-prints `value` (2-space indent) to stdout.
void PrintJson(const nlohmann::json& value);

}  // namespace orrery::cli

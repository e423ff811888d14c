// CheckUbjsonBytes: a walk over XGBoost's UBJSON subset (xgboost/src/common/
// json.cc, UBJReader) that checks every read is in bounds, without building
// anything. Values: {, [, Z, T, F, d, D, S, i, U, I, l, L; strings and
// object keys are 'L' + big-endian int64 length + bytes; arrays are `$`
// typed (d, U, l, L) with a `#L` count, `#L` counted, or ']'-terminated.
#include <cstdint>

#include "backends/xgboost/model_check.h"

namespace orrery::xgboost {
namespace {

constexpr int kMaxDepth = 128;  // real models nest about 6 levels

class UbjsonChecker {
 public:
  explicit UbjsonChecker(std::string_view bytes) : bytes_(bytes) {}

  Status Check() { return Value(0); }

 private:
  Status Error(const std::string& problem) const {
    return Unprocessable("malformed UBJSON at byte " + std::to_string(pos_) + ": " + problem);
  }
  size_t Left() const { return bytes_.size() - pos_; }

  Result<char> Next(const char* inside) {
    if (Left() == 0) return Error(std::string("the file ends inside ") + inside);
    return bytes_[pos_++];
  }
  Status Skip(size_t n, const char* what) {
    if (Left() < n) return Error(std::string(what) + " runs past the end of the file");
    pos_ += n;
    return Status::Ok();
  }
  // 'L' and a big-endian int64 >= 0.
  Result<uint64_t> Length(const char* what) {
    ASSIGN_OR_RETURN(char marker, Next(what));
    if (marker != 'L') return Error(std::string("expected 'L' before the length of ") + what);
    RETURN_IF_ERROR(Skip(8, "a length"));
    uint64_t n = 0;
    for (size_t i = pos_ - 8; i < pos_; ++i) n = (n << 8) | static_cast<unsigned char>(bytes_[i]);
    if (n > INT64_MAX) return Error(std::string("negative length of ") + what);
    return n;
  }
  Status String(const char* what) {
    ASSIGN_OR_RETURN(uint64_t n, Length(what));
    if (n > Left()) {
      return Error(std::string(what) + " of " + std::to_string(n) +
                   " bytes runs past the end of the file");
    }
    pos_ += n;
    return Status::Ok();
  }

  Status Value(int depth) {
    if (depth > kMaxDepth)
      return Error("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    ASSIGN_OR_RETURN(char marker, Next("a value"));
    switch (marker) {
      case '{': return Object(depth);
      case '[': return Array(depth);
      case 'Z':
      case 'T':
      case 'F': return Status::Ok();
      case 'i':
      case 'U': return Skip(1, "an integer");
      case 'I': return Skip(2, "an integer");
      case 'l':
      case 'd': return Skip(4, "a number");
      case 'L':
      case 'D': return Skip(8, "a number");
      case 'S': return String("a string");
      default: --pos_; return Error("unknown marker");
    }
  }

  Status Object(int depth) {
    while (true) {
      if (Left() == 0) return Error("the file ends inside an object");
      if (bytes_[pos_] == '}') break;
      RETURN_IF_ERROR(String("an object key"));
      RETURN_IF_ERROR(Value(depth + 1));
    }
    ++pos_;
    return Status::Ok();
  }

  Status Array(int depth) {
    if (Left() == 0) return Error("the file ends inside an array");
    if (bytes_[pos_] == '$') return TypedArray();
    if (bytes_[pos_] == '#') {
      ++pos_;
      ASSIGN_OR_RETURN(uint64_t n, Length("an array"));
      if (n > Left()) {
        return Error("an array of " + std::to_string(n) + " values runs past the end of the file");
      }
      for (uint64_t i = 0; i < n; ++i) RETURN_IF_ERROR(Value(depth + 1));
      return Status::Ok();
    }
    while (true) {
      if (Left() == 0) return Error("the file ends inside an array");
      if (bytes_[pos_] == ']') break;
      RETURN_IF_ERROR(Value(depth + 1));
    }
    ++pos_;
    return Status::Ok();
  }

  Status TypedArray() {
    ++pos_;  // '$'
    ASSIGN_OR_RETURN(char type, Next("a typed array"));
    size_t size = type == 'U' ? 1 : type == 'd' || type == 'l' ? 4 : type == 'L' ? 8 : 0;
    if (size == 0) return Error(std::string("a typed array of unsupported type '") + type + "'");
    ASSIGN_OR_RETURN(char count, Next("a typed array"));
    if (count != '#') return Error("expected '#' in a typed array");
    ASSIGN_OR_RETURN(uint64_t n, Length("a typed array"));
    if (n > Left() / size) {
      return Error("a typed array of " + std::to_string(n) +
                   " values runs past the end of the file");
    }
    pos_ += n * size;
    return Status::Ok();
  }

  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

Status CheckUbjsonBytes(std::string_view bytes) {
  return UbjsonChecker(bytes).Check();
}

}  // namespace orrery::xgboost

// The .npy layout: "\x93NUMPY", major and minor version bytes, the header
// length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0), then the header, a
// Python dict literal padded with spaces and a '\n' so that the data starts
// on a 64-byte boundary, then the raw array data.
#include "tensor/npy.h"

#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

namespace orrery {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlign = 64;

struct Dtype {
  char kind;  // 'b', 'i', 'u', 'f'
  size_t size;
  DataType type;
};

constexpr std::array<Dtype, 12> kDtypes = {{
    {'b', 1, DataType::kBool},
    {'i', 1, DataType::kInt8},
    {'i', 2, DataType::kInt16},
    {'i', 4, DataType::kInt32},
    {'i', 8, DataType::kInt64},
    {'u', 1, DataType::kUint8},
    {'u', 2, DataType::kUint16},
    {'u', 4, DataType::kUint32},
    {'u', 8, DataType::kUint64},
    {'f', 2, DataType::kFp16},
    {'f', 4, DataType::kFp32},
    {'f', 8, DataType::kFp64},
}};

Status Invalid(const std::string& message) {
  return InvalidArgument(".npy: " + message);
}

// Reads the few Python literals a .npy header holds.
class HeaderReader {
 public:
  explicit HeaderReader(std::string_view text) : text_(text) {}

  bool Consume(char c) {
    SkipSpaces();
    if (pos_ < text_.size() && text_[pos_] == c) return ++pos_, true;
    return false;
  }
  char Peek() {
    SkipSpaces();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool AtEnd() {
    SkipSpaces();
    return pos_ == text_.size();
  }
  std::optional<std::string_view> QuotedString() {
    char quote = Peek();
    if (quote != '\'' && quote != '"') return std::nullopt;
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view value = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return value;
  }
  std::optional<bool> Boolean() {
    SkipSpaces();
    for (bool value : {true, false}) {
      std::string_view word = value ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) return pos_ += word.size(), value;
    }
    return std::nullopt;
  }
  // "()", "(5,)", "(2, 3)"; Python 2 wrote "(2L, 3L)".
  std::optional<std::vector<int64_t>> Shape() {
    std::vector<int64_t> shape;
    if (!Consume('(')) return std::nullopt;
    while (!Consume(')')) {
      SkipSpaces();
      int64_t dim = 0;
      auto [end, ec] = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), dim);
      if (ec != std::errc() || dim < 0) return std::nullopt;
      pos_ = end - text_.data();
      Consume('L');
      shape.push_back(dim);
      if (!Consume(',') && Peek() != ')') return std::nullopt;
    }
    return shape;
  }

 private:
  void SkipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) ++pos_;
  }
  std::string_view text_;
  size_t pos_ = 0;
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  unsigned seen = 0;  // bits of the three above
};

Status ReadEntry(HeaderReader& reader, std::string_view key, Header& header) {
  unsigned bit = key == "descr" ? 1 : key == "fortran_order" ? 2 : key == "shape" ? 4 : 0;
  if (header.seen & bit) return Invalid("header key '" + std::string(key) + "' appears twice");
  header.seen |= bit;
  if (key == "descr") {
    if (reader.Peek() == '[') return Invalid("structured dtypes are not supported");
    if (auto value = reader.QuotedString()) return header.descr = *value, Status::Ok();
  } else if (key == "fortran_order") {
    if (auto value = reader.Boolean()) return header.fortran_order = *value, Status::Ok();
  } else if (key == "shape") {
    if (auto value = reader.Shape()) return header.shape = std::move(*value), Status::Ok();
  } else {
    return Invalid("unexpected header key '" + std::string(key) + "'");
  }
  return Invalid("malformed header value for '" + std::string(key) + "'");
}

Result<Header> ParseHeader(std::string_view text) {
  HeaderReader reader(text);
  Header header;
  if (!reader.Consume('{')) return Invalid("header is not a dict");
  while (!reader.Consume('}')) {
    std::optional<std::string_view> key = reader.QuotedString();
    if (!key || !reader.Consume(':')) return Invalid("malformed header");
    RETURN_IF_ERROR(ReadEntry(reader, *key, header));
    if (!reader.Consume(',') && reader.Peek() != '}') return Invalid("malformed header");
  }
  if (!reader.AtEnd()) return Invalid("malformed header");
  if (header.seen != 7) {
    return Invalid("header needs 'descr', 'fortran_order' and 'shape'");
  }
  return header;
}

Result<DataType> ParseDescr(const std::string& descr) {
  if (descr.size() < 2) return Invalid("unsupported dtype '" + descr + "'");
  char order = descr[0], kind = descr[1];
  if (kind == 'O') return Invalid("object arrays are not supported");
  if (kind == 'S' || kind == 'U' || kind == 'a') return Invalid("string dtypes are not supported");
  size_t size = 0;
  auto [end, ec] = std::from_chars(descr.data() + 2, descr.data() + descr.size(), size);
  for (const Dtype& dtype : kDtypes) {
    if (ec != std::errc() || end != descr.data() + descr.size()) break;
    if (dtype.kind != kind || dtype.size != size) continue;
    if (order == '>' && size > 1)
      return Invalid("big-endian data ('" + descr + "') is not supported");
    if (order == '<' || order == '|' || order == '=' || order == '>') return dtype.type;
  }
  return Invalid("unsupported dtype '" + descr + "'");
}

// Splits `bytes` into the header text and the data after it.
Status SplitFile(std::string_view bytes, std::string_view& header, std::string_view& data) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) {
    return Invalid("not a .npy file (bad magic)");
  }
  uint8_t major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0) {
    return Invalid("unsupported format version " + std::to_string(major) + "." +
                   std::to_string(minor));
  }
  size_t prefix = major == 1 ? 10 : 12;
  if (bytes.size() < prefix) return Invalid("truncated header");
  uint32_t length = 0;
  std::memcpy(&length, bytes.data() + 8, major == 1 ? 2 : 4);  // little-endian host
  if (bytes.size() - prefix < length) return Invalid("truncated header");
  header = bytes.substr(prefix, length);
  data = bytes.substr(prefix + length);
  return Status::Ok();
}

Result<std::string> Descr(DataType type) {
  for (const Dtype& dtype : kDtypes) {
    if (dtype.type != type) continue;
    return std::string(dtype.size == 1 ? "|" : "<") + dtype.kind + std::to_string(dtype.size);
  }
  return Invalid(std::string(DataTypeName(type)) + " has no .npy dtype");
}

// Python's repr of the shape tuple: (), (5,), (2, 3).
std::string ShapeTuple(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

Result<Tensor> DecodeNpy(std::string_view bytes, std::string name) {
  std::string_view header_text, data;
  RETURN_IF_ERROR(SplitFile(bytes, header_text, data));
  ASSIGN_OR_RETURN(Header header, ParseHeader(header_text));
  ASSIGN_OR_RETURN(DataType type, ParseDescr(header.descr));
  if (header.fortran_order) {
    return Invalid("fortran_order arrays are not supported; save a C-ordered array");
  }
  Tensor tensor{std::move(name), type, std::move(header.shape), {}};
  std::optional<int64_t> count = tensor.ElementCount();
  size_t size = DataTypeSize(type);
  if (!count || static_cast<uint64_t>(*count) > data.size() / size) {
    return Invalid("truncated data: " + std::to_string(data.size()) + " bytes for shape " +
                   ShapeString(tensor.shape) + " of " + header.descr);
  }
  if (static_cast<uint64_t>(*count) * size != data.size()) {
    return Invalid(std::to_string(data.size() - *count * size) + " bytes after the array data");
  }
  tensor.data.assign(data);
  return tensor;
}

Result<std::string> EncodeNpy(const Tensor& tensor) {
  RETURN_IF_ERROR(ValidateTensor(tensor));
  ASSIGN_OR_RETURN(std::string descr, Descr(tensor.datatype));
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': False, 'shape': " + ShapeTuple(tensor.shape) + ", }";
  // numpy's padding rule: spaces, then '\n', to the next multiple of 64,
  // a full 64 spaces when already aligned.
  bool v1 = 10 + header.size() + 1 + kAlign <= std::numeric_limits<uint16_t>::max();
  size_t prefix = v1 ? 10 : 12;
  header.append(kAlign - (prefix + header.size() + 1) % kAlign, ' ');
  header += '\n';
  std::string file;
  file.reserve(prefix + header.size() + tensor.data.size());
  file += kMagic;
  file += static_cast<char>(v1 ? 1 : 2);
  file += '\0';
  uint32_t length = static_cast<uint32_t>(header.size());
  file.append(reinterpret_cast<const char*>(&length), v1 ? 2 : 4);  // little-endian host
  file += header;
  file += tensor.data;
  return file;
}

}  // namespace orrery

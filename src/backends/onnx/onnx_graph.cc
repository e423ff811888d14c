// A minimal protobuf wire-format reader, enough for OnnxGraph (see the
// header). Field numbers are those of onnx/onnx.proto (IR version 3+).
#include "backends/onnx/onnx_graph.h"

#include <cstdint>
#include <set>

namespace orrery::onnx {
namespace {

enum WireType { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

// Reads the fields of one message, in order.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view bytes) : bytes_(bytes) {}

  bool done() const { return pos_ >= bytes_.size(); }

  // The next field's number and wire type.
  Status Next(uint32_t& field, int& wire) {
    ASSIGN_OR_RETURN(uint64_t key, Varint());
    field = static_cast<uint32_t>(key >> 3);
    wire = static_cast<int>(key & 7);
    return Status::Ok();
  }
  // The payload of a length-delimited field.
  Result<std::string_view> Bytes() {
    ASSIGN_OR_RETURN(uint64_t size, Varint());
    if (size > bytes_.size() - pos_) return Error("a field runs past the end");
    std::string_view out = bytes_.substr(pos_, size);
    pos_ += size;
    return out;
  }
  Status Skip(int wire) {
    switch (wire) {
      case kVarint: return Varint().status();
      case kFixed64: return Advance(8);
      case kFixed32: return Advance(4);
      case kBytes: return Bytes().status();
      default: return Error("unsupported wire type " + std::to_string(wire));
    }
  }

 private:
  Status Error(const std::string& problem) const {
    return Unprocessable("not an ONNX model: protobuf error at byte " + std::to_string(pos_) +
                         ": " + problem);
  }
  Status Advance(size_t n) {
    if (n > bytes_.size() - pos_) return Error("a field runs past the end");
    pos_ += n;
    return Status::Ok();
  }
  Result<uint64_t> Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return Error("a number runs past the end");
      auto byte = static_cast<uint8_t>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Error("a number is too long");
  }

  std::string_view bytes_;
  size_t pos_ = 0;
};

// The string field `number` of `message` ("" when absent).
Result<std::string> StringField(std::string_view message, uint32_t number) {
  ProtoReader reader(message);
  std::string value;
  while (!reader.done()) {
    uint32_t field = 0;
    int wire = 0;
    RETURN_IF_ERROR(reader.Next(field, wire));
    if (field == number && wire == kBytes) {
      ASSIGN_OR_RETURN(std::string_view bytes, reader.Bytes());
      value.assign(bytes);
    } else {
      RETURN_IF_ERROR(reader.Skip(wire));
    }
  }
  return value;
}

Result<OnnxGraph> ReadGraph(std::string_view graph_bytes) {
  OnnxGraph graph;
  std::vector<std::string> inputs;
  std::set<std::string> initializers;
  ProtoReader reader(graph_bytes);
  while (!reader.done()) {
    uint32_t field = 0;
    int wire = 0;
    RETURN_IF_ERROR(reader.Next(field, wire));
    if (wire != kBytes || (field != 5 && field != 11 && field != 12)) {
      RETURN_IF_ERROR(reader.Skip(wire));
      continue;
    }
    ASSIGN_OR_RETURN(std::string_view message, reader.Bytes());
    switch (field) {
      case 5: {  // TensorProto.name = 8
        ASSIGN_OR_RETURN(std::string name, StringField(message, 8));
        initializers.insert(std::move(name));
        break;
      }
      case 11:  // ValueInfoProto.name = 1
      case 12: {
        ASSIGN_OR_RETURN(std::string name, StringField(message, 1));
        (field == 11 ? inputs : graph.outputs).push_back(std::move(name));
        break;
      }
    }
  }
  for (std::string& name : inputs) {
    if (!initializers.count(name)) graph.inputs.push_back(std::move(name));
  }
  return graph;
}

}  // namespace

Result<OnnxGraph> ReadOnnxGraph(std::string_view bytes) {
  ProtoReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0;
    int wire = 0;
    RETURN_IF_ERROR(reader.Next(field, wire));
    if (field == 7 && wire == kBytes) {  // ModelProto.graph
      ASSIGN_OR_RETURN(std::string_view graph, reader.Bytes());
      return ReadGraph(graph);
    }
    RETURN_IF_ERROR(reader.Skip(wire));
  }
  return Unprocessable("not an ONNX model: no graph");
}

}  // namespace orrery::onnx

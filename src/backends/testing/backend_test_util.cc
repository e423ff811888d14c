#include "backends/testing/backend_test_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include "core/files.h"
#include "tensor/batch.h"

namespace orrery::backend_testing {
namespace {

uint16_t FloatToHalf(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t mant = x & 0x7fffff;
  int exp = static_cast<int>((x >> 23) & 0xff);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  int shift = 13;
  uint32_t base = sign | (static_cast<uint32_t>(std::max(e, 0)) << 10);
  if (e <= 0) {  // subnormal half
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    shift = 14 - e;
    base = sign;
  }
  uint32_t half = base | (mant >> shift);
  uint32_t rest = mant & ((1u << shift) - 1);
  uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (half & 1))) ++half;  // a carry is still right
  return static_cast<uint16_t>(half);
}

uint16_t FloatToBf16(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  if (std::isnan(value)) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void Append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void AppendElement(DataType type, double v, std::string& out) {
  switch (type) {
    case DataType::kBool: return Append<uint8_t>(out, v != 0);
    case DataType::kUint8: return Append(out, static_cast<uint8_t>(v));
    case DataType::kUint16: return Append(out, static_cast<uint16_t>(v));
    case DataType::kUint32: return Append(out, static_cast<uint32_t>(v));
    case DataType::kUint64: return Append(out, static_cast<uint64_t>(v));
    case DataType::kInt8: return Append(out, static_cast<int8_t>(v));
    case DataType::kInt16: return Append(out, static_cast<int16_t>(v));
    case DataType::kInt32: return Append(out, static_cast<int32_t>(v));
    case DataType::kInt64: return Append(out, static_cast<int64_t>(v));
    case DataType::kFp16: return Append(out, FloatToHalf(static_cast<float>(v)));
    case DataType::kFp32: return Append(out, static_cast<float>(v));
    case DataType::kFp64: return Append(out, v);
    case DataType::kBf16: return Append(out, FloatToBf16(static_cast<float>(v)));
    case DataType::kBytes: break;
  }
  ADD_FAILURE() << "BYTES tensors are not supported by backend_test_util";
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

}  // namespace

std::filesystem::path SourceDir() {
  return ORRERY_SOURCE_DIR;
}

Result<std::unique_ptr<Package>> ReadPackage(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(std::string yaml, ReadFile(dir / kManifestFileName));
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(yaml));
  return MakePackage(dir, std::move(manifest));
}

std::unique_ptr<Package> MakePackage(const std::filesystem::path& dir, Manifest manifest) {
  auto package = std::make_unique<Package>();
  package->manifest = std::move(manifest);
  package->context.dir = dir;
  package->context.manifest = &package->manifest;
  package->context.tenant = "test";
  package->context.label = "test/" + package->manifest.name + ":1";
  return package;
}

Result<std::unique_ptr<Instance>> LoadPackage(const Package& package) {
  Backend* backend = FindBackend(package.manifest.backend);
  if (backend == nullptr) return NotFound("no backend '" + package.manifest.backend + "' linked");
  return backend->Load(package.context);
}

Result<Tensor> TensorFromJson(const std::string& name, const nlohmann::json& value) {
  Tensor tensor;
  tensor.name = name;
  auto type = ParseDataType(value.at("datatype").get<std::string>());
  if (!type || *type == DataType::kBytes) return InvalidArgument("unsupported datatype");
  tensor.datatype = *type;
  tensor.shape = value.at("shape").get<std::vector<int64_t>>();
  for (const auto& element : value.at("data")) {
    double v = element.is_boolean() ? (element.get<bool>() ? 1.0 : 0.0) : element.get<double>();
    AppendElement(tensor.datatype, v, tensor.data);
  }
  RETURN_IF_ERROR(ValidateTensor(tensor));
  return tensor;
}

Result<std::vector<Tensor>> ExampleInputs(const Manifest& manifest, const nlohmann::json& example) {
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : manifest.inputs) {
    ASSIGN_OR_RETURN(Tensor tensor, TensorFromJson(spec.name, example.at("inputs").at(spec.name)));
    inputs.push_back(std::move(tensor));
  }
  return inputs;
}

Tensor FromDoubles(std::string name, DataType type, std::vector<int64_t> shape,
                   const std::vector<double>& values) {
  Tensor tensor{std::move(name), type, std::move(shape), {}};
  for (double v : values) AppendElement(type, v, tensor.data);
  return tensor;
}

std::unique_ptr<Instance> MustLoad(const Package& package) {
  auto instance = LoadPackage(package);
  EXPECT_TRUE(instance.ok()) << instance.status().ToString();
  return instance.ok() ? std::move(instance).value() : nullptr;
}

// The serving core's batch concatenation (tensor/batch.h), one tensor per part.
Tensor Concat(const std::vector<Tensor>& parts) {
  std::vector<std::vector<Tensor>> requests;
  for (const Tensor& part : parts) requests.push_back({part});
  std::vector<const std::vector<Tensor>*> pointers;
  for (const auto& request : requests) pointers.push_back(&request);
  Result<std::vector<Tensor>> batch = ConcatBatch(pointers);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  return batch.ok() ? std::move(batch->at(0)) : Tensor{};
}

Tensor Rows(const Tensor& tensor, int64_t begin, int64_t end) {
  Tensor out = tensor;
  size_t row_bytes = tensor.data.size() / static_cast<size_t>(tensor.shape.at(0));
  out.shape[0] = end - begin;
  out.data = tensor.data.substr(begin * row_bytes, (end - begin) * row_bytes);
  return out;
}

::testing::AssertionResult TensorNear(const Tensor& actual, const Tensor& expected,
                                      double tolerance) {
  if (actual.name != expected.name || actual.datatype != expected.datatype ||
      actual.shape != expected.shape) {
    return ::testing::AssertionFailure()
           << "got " << actual.name << " " << DataTypeName(actual.datatype) << " "
           << ShapeText(actual.shape) << ", expected " << expected.name << " "
           << DataTypeName(expected.datatype) << " " << ShapeText(expected.shape);
  }
  std::vector<double> a = TensorValues(actual);
  std::vector<double> e = TensorValues(expected);
  if (a.size() != e.size()) return ::testing::AssertionFailure() << "byte sizes differ";
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    if (!both_nan && !(std::abs(a[i] - e[i]) <= tolerance * std::max(1.0, std::abs(e[i])))) {
      return ::testing::AssertionFailure() << actual.name << "[" << i << "] = " << a[i]
                                           << ", expected " << e[i] << " +- " << tolerance;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RunManifestExamples(const Package& package, Instance& instance) {
  const Manifest& manifest = package.manifest;
  if (manifest.examples.empty()) return ::testing::AssertionFailure() << "no examples";
  for (size_t i = 0; i < manifest.examples.size(); ++i) {
    const nlohmann::json& example = manifest.examples[i];
    auto inputs = ExampleInputs(manifest, example);
    if (!inputs.ok()) return ::testing::AssertionFailure() << inputs.status().ToString();
    auto outputs =
        instance.Infer(*inputs, std::chrono::steady_clock::now() + std::chrono::minutes(1));
    if (!outputs.ok()) {
      return ::testing::AssertionFailure()
             << "example " << i << ": " << outputs.status().ToString();
    }
    double tolerance = example.value("tolerance", 1e-6);
    for (size_t o = 0; o < manifest.outputs.size(); ++o) {
      const std::string& name = manifest.outputs[o].name;
      if (!example.at("outputs").contains(name)) continue;
      auto expected = TensorFromJson(name, example["outputs"][name]);
      if (!expected.ok()) return ::testing::AssertionFailure() << expected.status().ToString();
      auto near = TensorNear(outputs->at(o), *expected, tolerance);
      if (!near) return near << " (example " << i << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

int ProcessThreads() {
  int threads = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++threads;
  }
  return threads;
}

void WriteBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(gen() & 0xff);
  return bytes;
}

}  // namespace orrery::backend_testing

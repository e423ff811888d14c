#include "cli/serving_output.h"

#include <cstdio>
#include <ostream>

#include "cli/output.h"

namespace orrery::cli {

using nlohmann::json;

namespace {

std::string ErrorText(const json& output) {
  if (!output.contains("max_abs_error") || !output["max_abs_error"].is_number()) return "";
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", output["max_abs_error"].get<double>());
  return text;
}

bool IsOk(const json& object) {
  return object.is_object() && object.contains("ok") && object["ok"].is_boolean() &&
         object["ok"].get<bool>();
}

std::string YesNo(const json& object) {
  return IsOk(object) ? "yes" : "no";
}

// object[key] when it is an array, else [].
json ArrayField(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_array()) {
    return json::array();
  }
  return object[key];
}

void AddExampleRows(Table& table, const json& example) {
  std::string index = Field(example, "index");
  json outputs = ArrayField(example, "outputs");
  if (outputs.empty()) {
    table.AddRow({index, "-", YesNo(example), "", Field(example, "message")});
    return;
  }
  for (const json& output : outputs) {
    table.AddRow({index, Field(output, "name"), YesNo(output), ErrorText(output),
                  Field(output, "message", Field(example, "message"))});
  }
}

}  // namespace

void PrintInferAnswer(const InferAnswer& answer, bool compact, std::ostream& out,
                      std::ostream& notes) {
  out << DumpJson(answer.header, compact ? -1 : 2) << std::endl;
  for (const AnswerOutput& output : answer.outputs) {
    if (!output.tensor) continue;
    notes << "output " << output.tensor->name << ": " << output.tensor->data.size()
          << " bytes of binary data not shown; use --save DIR to write it" << std::endl;
  }
}

Status PrintVerifyReport(const json& answer, bool json_output, std::ostream& out) {
  json examples = ArrayField(answer, "examples");
  size_t failed = 0;
  for (const json& example : examples) failed += !IsOk(example);
  std::string servable = Field(answer, "servable");
  bool ok = IsOk(answer);
  if (json_output) {
    out << DumpJson(answer, 2) << std::endl;
  } else {
    Table table({"EXAMPLE", "OUTPUT", "OK", "MAX ABS ERROR", "MESSAGE"});
    for (const json& example : examples) AddExampleRows(table, example);
    table.Print(out);
    if (ok) {
      out << "verified " << servable << ": all " << examples.size() << " examples reproduce"
          << std::endl;
    }
  }
  if (ok) return Status::Ok();
  return Unprocessable(servable + ": " + std::to_string(failed) + " of " +
                       std::to_string(examples.size()) + " examples do not reproduce");
}

}  // namespace orrery::cli

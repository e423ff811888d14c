// libyaml events -> yaml-cpp nodes (contract in yaml_load.h). The tree is
// built with an explicit stack of open collections, so no recursion follows
// the nesting of the text. A collection is attached to its parent when it
// opens, not when it closes: yaml-cpp merges a child's node set into its
// parent's at attachment, which per closing level made deep text quadratic.
#include "repository/yaml_load.h"

#include "repository/manifest_internal.h"

#include <yaml.h>

#include <memory>
#include <optional>
#include <string>

namespace orrery {
namespace {

struct ParserDeleter {
  void operator()(yaml_parser_t* parser) const {
    yaml_parser_delete(parser);
    delete parser;
  }
};

struct EventGuard {
  yaml_event_t event{};
  ~EventGuard() { yaml_event_delete(&event); }
};

std::string Where(const yaml_mark_t& mark) {
  return " (line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
         ")";
}

bool IsNullText(std::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

YAML::Node Scalar(const yaml_event_t& event) {
  const auto& scalar = event.data.scalar;
  std::string text(reinterpret_cast<const char*>(scalar.value), scalar.length);
  const char* tag = reinterpret_cast<const char*>(scalar.tag);
  bool quoted = scalar.style != YAML_PLAIN_SCALAR_STYLE && scalar.style != YAML_ANY_SCALAR_STYLE;
  if (!quoted && tag == nullptr && IsNullText(text)) return YAML::Node(YAML::NodeType::Null);
  YAML::Node node(text);
  if (tag != nullptr) {
    node.SetTag(tag);
  } else if (quoted) {
    node.SetTag("!");
  }
  return node;
}

// A collection being filled: its node, and for a map the key read last.
struct Open {
  YAML::Node node;
  std::optional<YAML::Node> key;
};

}  // namespace

Result<std::vector<YAML::Node>> LoadYamlDocuments(std::string_view text) {
  std::unique_ptr<yaml_parser_t, ParserDeleter> parser(new yaml_parser_t);
  if (!yaml_parser_initialize(parser.get())) return Internal("yaml: cannot create a parser");
  yaml_parser_set_input_string(parser.get(), reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  std::vector<YAML::Node> documents;
  std::vector<Open> open;
  std::optional<YAML::Node> root;
  size_t nodes = 0;
  // Puts a finished value where it belongs: a document's root, a sequence's
  // next item, or a map's key or value.
  auto place = [&](YAML::Node value) {
    if (open.empty()) {
      root = value;
      return;
    }
    Open& parent = open.back();
    if (parent.node.IsSequence()) {
      parent.node.push_back(value);
    } else if (!parent.key) {
      parent.key = value;
    } else {
      parent.node.force_insert(*parent.key, value);
      parent.key.reset();
    }
  };
  while (true) {
    EventGuard guard;
    if (!yaml_parser_parse(parser.get(), &guard.event)) {
      std::string problem = parser->problem != nullptr ? parser->problem : "malformed";
      return InvalidArgument(problem + Where(parser->problem_mark));
    }
    const yaml_event_t& event = guard.event;
    if (event.type == YAML_STREAM_END_EVENT) break;
    bool value = event.type == YAML_SCALAR_EVENT || event.type == YAML_SEQUENCE_START_EVENT ||
                 event.type == YAML_MAPPING_START_EVENT;
    if (value && ++nodes > kMaxYamlNodes) {
      return InvalidArgument("too many values" + Where(event.start_mark));
    }
    switch (event.type) {
      case YAML_DOCUMENT_START_EVENT:
        root.reset();
        break;
      case YAML_DOCUMENT_END_EVENT:
        documents.push_back(root ? *root : YAML::Node(YAML::NodeType::Null));
        break;
      case YAML_ALIAS_EVENT:
        return InvalidArgument("aliases (*name) are not allowed" + Where(event.start_mark));
      case YAML_SCALAR_EVENT:
        place(Scalar(event));
        break;
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        if (static_cast<int>(open.size()) >= kMaxYamlDepth) {
          return InvalidArgument("nested deeper than " + std::to_string(kMaxYamlDepth) + " levels" +
                                 Where(event.start_mark));
        }
        bool sequence = event.type == YAML_SEQUENCE_START_EVENT;
        YAML::Node node(sequence ? YAML::NodeType::Sequence : YAML::NodeType::Map);
        const unsigned char* tag =
            sequence ? event.data.sequence_start.tag : event.data.mapping_start.tag;
        if (tag != nullptr) node.SetTag(reinterpret_cast<const char*>(tag));
        place(node);
        open.push_back({node, std::nullopt});
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        open.pop_back();
        break;
      default:
        break;  // stream start, no event
    }
  }
  return documents;
}

Result<nlohmann::json> LoadYamlAsJson(std::string_view text, std::string_view subject) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> documents, LoadYamlDocuments(text));
  if (documents.size() != 1) {
    return Unprocessable(std::string(subject) + ": must be one YAML or JSON document, not " +
                         std::to_string(documents.size()));
  }
  manifest_internal::Budget budget;
  return manifest_internal::ToJsonValue(documents[0], "", budget, 0, subject);
}

}  // namespace orrery

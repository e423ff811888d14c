// BibTeX has no standard field for a licence or a package digest: both go
// into `note`. A DOI among the identifiers becomes the citation's DOI; every
// other identifier is listed (DataCite: alternateIdentifiers).
#include "repository/citation.h"

#include <cctype>
#include <sstream>
#include <vector>

namespace orrery {
namespace {

using nlohmann::json;

std::string Text(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The first identifier of type DOI (case-insensitive), or "".
std::string Doi(const json& manifest) {
  for (const json& id : manifest.value("identifiers", json::array())) {
    std::string type = Text(id, "type");
    for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (type == "DOI") return Text(id, "value");
  }
  return "";
}

std::string Qualified(const json& version) {
  return Text(version, "tenant") + "/" + Text(version, "name") + ":" + Text(version, "version");
}

// Escapes BibTeX's special characters; braces keep their balance.
std::string Bib(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '&' || c == '%' || c == '$' || c == '#' || c == '_' || c == '{' || c == '}') {
      out += '\\';
    }
    if (c == '\\') {
      out += "\\textbackslash{}";
      continue;
    }
    if (c == '\n' || c == '\r') c = ' ';
    out += c;
  }
  return out;
}

// One line of RIS: a value on one line.
std::string RisLine(const char* tag, std::string value) {
  for (char& c : value) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return std::string(tag) + "  - " + value + "\r\n";
}

std::string Note(const json& version) {
  const json& manifest = version["manifest"];
  std::string note = "Orrery " + Text(version, "kind") + " " + Qualified(version) +
                     ", package sha256:" + Text(version, "digest");
  std::string license = Text(manifest, "license");
  if (!license.empty()) note += ", licence " + license;
  return note;
}

std::string Bibtex(const json& version) {
  const json& manifest = version["manifest"];
  std::string key =
      Text(version, "tenant") + "_" + Text(version, "name") + "_v" + Text(version, "version");
  for (char& c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  std::vector<std::string> authors;
  for (const json& creator : manifest.value("creators", json::array())) {
    authors.push_back("{" + Bib(Text(creator, "name")) + "}");
  }
  std::string author_list;
  for (size_t i = 0; i < authors.size(); ++i) author_list += (i ? " and " : "") + authors[i];
  std::ostringstream out;
  out << "@misc{" << key << ",\n";
  out << "  author = {" << author_list << "},\n";
  out << "  title = {{" << Bib(Text(manifest, "title")) << "}},\n";
  out << "  year = {" << Text(manifest, "year") << "},\n";
  out << "  version = {" << Text(version, "version") << "},\n";
  out << "  publisher = {Orrery},\n";
  std::string doi = Doi(manifest);
  if (!doi.empty()) out << "  doi = {" << Bib(doi) << "},\n";
  std::string keywords;
  for (const json& tag : manifest.value("tags", json::array())) {
    keywords += (keywords.empty() ? "" : ", ") + tag.get<std::string>();
  }
  if (!keywords.empty()) out << "  keywords = {" << Bib(keywords) << "},\n";
  out << "  note = {" << Bib(Note(version)) << "}\n}\n";
  return out.str();
}

json Datacite(const json& version) {
  const json& manifest = version["manifest"];
  json creators = json::array();
  for (const json& creator : manifest.value("creators", json::array())) {
    json item = {{"name", Text(creator, "name")}, {"nameType", "Personal"}};
    std::string name = Text(creator, "name");
    size_t comma = name.find(", ");
    if (comma != std::string::npos) {
      item["familyName"] = name.substr(0, comma);
      item["givenName"] = name.substr(comma + 2);
    }
    std::string affiliation = Text(creator, "affiliation");
    if (!affiliation.empty()) item["affiliation"] = json::array({{{"name", affiliation}}});
    std::string orcid = Text(creator, "orcid");
    if (!orcid.empty()) {
      item["nameIdentifiers"] = json::array({{{"nameIdentifier", "https://orcid.org/" + orcid},
                                              {"nameIdentifierScheme", "ORCID"},
                                              {"schemeUri", "https://orcid.org"}}});
    }
    creators.push_back(item);
  }
  bool dataset = Text(version, "kind") == "dataset";
  json out = {
      {"creators", creators},
      {"titles", json::array({{{"title", Text(manifest, "title")}}})},
      {"publisher", "Orrery"},
      {"publicationYear", manifest.value("year", 0)},
      {"types",
       {{"resourceTypeGeneral", dataset ? "Dataset" : "Model"},
        {"resourceType", dataset ? "Dataset" : "Servable"}}},
      {"version", Text(version, "version")},
  };
  std::string doi = Doi(manifest);
  if (!doi.empty()) out["doi"] = doi;
  json alternates = json::array(
      {{{"alternateIdentifier", Qualified(version)}, {"alternateIdentifierType", "Orrery"}}});
  for (const json& id : manifest.value("identifiers", json::array())) {
    if (Text(id, "value") == doi) continue;
    alternates.push_back({{"alternateIdentifier", Text(id, "value")},
                          {"alternateIdentifierType", Text(id, "type")}});
  }
  out["alternateIdentifiers"] = alternates;
  json related = json::array();
  for (const json& id : manifest.value("related_identifiers", json::array())) {
    related.push_back({{"relatedIdentifier", Text(id, "value")},
                       {"relatedIdentifierType", Text(id, "type")},
                       {"relationType", Text(id, "relation")}});
  }
  if (!related.empty()) out["relatedIdentifiers"] = related;
  std::string license = Text(manifest, "license");
  if (!license.empty()) out["rightsList"] = json::array({{{"rights", license}}});
  std::string description = Text(manifest, "description");
  if (!description.empty()) {
    out["descriptions"] =
        json::array({{{"description", description}, {"descriptionType", "Abstract"}}});
  }
  json subjects = json::array();
  for (const json& tag : manifest.value("tags", json::array())) {
    subjects.push_back({{"subject", tag}});
  }
  if (!subjects.empty()) out["subjects"] = subjects;
  return out;
}

std::string Ris(const json& version) {
  const json& manifest = version["manifest"];
  std::string out = RisLine("TY", Text(version, "kind") == "dataset" ? "DATA" : "COMP");
  for (const json& creator : manifest.value("creators", json::array())) {
    out += RisLine("AU", Text(creator, "name"));
  }
  out += RisLine("TI", Text(manifest, "title"));
  out += RisLine("PY", Text(manifest, "year"));
  out += RisLine("PB", "Orrery");
  out += RisLine("ET", Text(version, "version"));
  std::string doi = Doi(manifest);
  if (!doi.empty()) out += RisLine("DO", doi);
  std::string description = Text(manifest, "description");
  if (!description.empty()) out += RisLine("AB", description);
  for (const json& tag : manifest.value("tags", json::array())) {
    out += RisLine("KW", tag.get<std::string>());
  }
  out += RisLine("N1", Note(version));
  out += RisLine("ER", "");
  return out;
}

}  // namespace

Result<CitationFormat> ParseCitationFormat(std::string_view name) {
  if (name == "bibtex") return CitationFormat::kBibtex;
  if (name == "datacite") return CitationFormat::kDatacite;
  if (name == "ris") return CitationFormat::kRis;
  return InvalidArgument("unknown citation format '" + std::string(name) +
                         "' (one of bibtex, datacite, ris)");
}

const char* CitationContentType(CitationFormat format) {
  switch (format) {
    case CitationFormat::kBibtex: return "application/x-bibtex; charset=utf-8";
    case CitationFormat::kDatacite: return "application/vnd.datacite.datacite+json";
    case CitationFormat::kRis: return "application/x-research-info-systems; charset=utf-8";
  }
  return "text/plain";
}

std::string FormatCitation(const nlohmann::json& version, CitationFormat format) {
  switch (format) {
    case CitationFormat::kBibtex: return Bibtex(version);
    case CitationFormat::kDatacite: return Datacite(version).dump(2) + "\n";
    case CitationFormat::kRis: return Ris(version);
  }
  return "";
}

}  // namespace orrery

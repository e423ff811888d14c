// Citations of a published version, from its manifest's DataCite-style
// metadata: BibTeX, DataCite JSON (the attributes of the DataCite REST API,
// schema 4) and RIS. What a scientist pastes into a paper or a reference
// manager to cite a model or dataset published on the hub.
//
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace orrery {

enum class CitationFormat { kBibtex, kDatacite, kRis };

// "bibtex", "datacite" or "ris"; kInvalidArgument naming the choices.
Result<CitationFormat> ParseCitationFormat(std::string_view name);

// The media type of a citation in `format`.
const char* CitationContentType(CitationFormat format);

// A citation of `version`, a version object as the API returns it
// (Repository::DescribeVersion): tenant, name, kind, version, digest,
// published_at and manifest (title, creators with ORCID and affiliation,
// year, license, description, identifiers, related identifiers, tags).
std::string FormatCitation(const nlohmann::json& version, CitationFormat format);

}  // namespace orrery

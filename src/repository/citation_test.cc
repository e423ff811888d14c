// Citations in the three formats, from a version object as the API gives it.
#include "repository/citation.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

using nlohmann::json;

json Version() {
  return {{"tenant", "lab"},
          {"name", "digits_mlp"},
          {"kind", "servable"},
          {"version", 3},
          {"digest", "ab12"},
          {"manifest",
           {{"title", "Digits & more {MLP}"},
            {"creators",
             {{{"name", "Lovelace, Ada"},
               {"affiliation", "Analytical Engines"},
               {"orcid", "0000-0002-1825-0097"}},
              {{"name", "Babbage, Charles"}}}},
            {"year", 2026},
            {"license", "CC-BY-4.0"},
            {"description", "An MLP.\nTwo lines."},
            {"tags", {"digits", "mlp"}},
            {"identifiers", {{{"type", "doi"}, {"value", "10.1234/orrery.5"}},
                             {{"type", "URL"}, {"value", "https://example.org/m"}}}},
            {"related_identifiers",
             {{{"type", "DOI"}, {"value", "10.24432/C50P49"}, {"relation", "IsDerivedFrom"}}}}}}};
}

TEST(CitationTest, Bibtex) {
  EXPECT_EQ(FormatCitation(Version(), CitationFormat::kBibtex),
            "@misc{lab_digits_mlp_v3,\n"
            "  author = {{Lovelace, Ada} and {Babbage, Charles}},\n"
            "  title = {{Digits \\& more \\{MLP\\}}},\n"
            "  year = {2026},\n"
            "  version = {3},\n"
            "  publisher = {Orrery},\n"
            "  doi = {10.1234/orrery.5},\n"
            "  keywords = {digits, mlp},\n"
            "  note = {Orrery servable lab/digits\\_mlp:3, package sha256:ab12, licence "
            "CC-BY-4.0}\n"
            "}\n");
}

TEST(CitationTest, DataciteJson) {
  json out = json::parse(FormatCitation(Version(), CitationFormat::kDatacite));
  EXPECT_EQ(out["doi"], "10.1234/orrery.5");
  EXPECT_EQ(out["publicationYear"], 2026);
  EXPECT_EQ(out["types"]["resourceTypeGeneral"], "Model");
  EXPECT_EQ(out["creators"][0]["familyName"], "Lovelace");
  EXPECT_EQ(out["creators"][0]["givenName"], "Ada");
  EXPECT_EQ(out["creators"][0]["nameIdentifiers"][0]["nameIdentifier"],
            "https://orcid.org/0000-0002-1825-0097");
  EXPECT_EQ(out["creators"][0]["affiliation"][0]["name"], "Analytical Engines");
  EXPECT_FALSE(out["creators"][1].contains("nameIdentifiers"));
  EXPECT_EQ(out["alternateIdentifiers"],
            json::parse(R"([{"alternateIdentifier": "lab/digits_mlp:3",
                             "alternateIdentifierType": "Orrery"},
                            {"alternateIdentifier": "https://example.org/m",
                             "alternateIdentifierType": "URL"}])"));
  EXPECT_EQ(out["relatedIdentifiers"][0]["relationType"], "IsDerivedFrom");
  EXPECT_EQ(out["rightsList"][0]["rights"], "CC-BY-4.0");
  EXPECT_EQ(out["version"], "3");
}

TEST(CitationTest, Ris) {
  EXPECT_EQ(FormatCitation(Version(), CitationFormat::kRis),
            "TY  - COMP\r\nAU  - Lovelace, Ada\r\nAU  - Babbage, Charles\r\n"
            "TI  - Digits & more {MLP}\r\nPY  - 2026\r\nPB  - Orrery\r\nET  - 3\r\n"
            "DO  - 10.1234/orrery.5\r\nAB  - An MLP. Two lines.\r\nKW  - digits\r\n"
            "KW  - mlp\r\nN1  - Orrery servable lab/digits_mlp:3, package sha256:ab12, licence "
            "CC-BY-4.0\r\nER  - \r\n");
}

TEST(CitationTest, DatasetsAndFormats) {
  json dataset = Version();
  dataset["kind"] = "dataset";
  EXPECT_EQ(FormatCitation(dataset, CitationFormat::kRis).substr(0, 12), "TY  - DATA\r\n");
  EXPECT_EQ(json::parse(FormatCitation(dataset, CitationFormat::kDatacite))["types"]
                                                                          ["resourceTypeGeneral"],
            "Dataset");
  EXPECT_EQ(ParseCitationFormat("ris").value(), CitationFormat::kRis);
  EXPECT_EQ(ParseCitationFormat("mla").status().message(),
            "unknown citation format 'mla' (one of bibtex, datacite, ris)");
}

}  // namespace
}  // namespace orrery

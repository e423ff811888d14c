"""Citation and discovery: cite a version, read its model card, find it by DOI or ORCID.

Proves, through the real server and CLI:
- `GET .../cite?format=bibtex|datacite|ris` (and `orrery cite`) render the manifest's creators
  (with ORCID), title, year, licence, DOI and tags, for latest or a given version; an unknown
  format is a 400 naming the choices; another tenant's private servable answers 404 exactly
  like an absent one;
- `orrery show NAME:V` prints creators with ORCID, year, licence, identifiers and relations;
- a package's README.md is its model card: `GET .../readme` (and `orrery show --readme`) return
  it, the version object says `"readme": true`; a version without one is a 404 naming it; a
  README over 256 KiB is refused at publish (422) and nothing is stored;
- search finds a servable by its DOI, a related identifier and a creator's ORCID iD;
- usage: each version counts its downloads and inference requests ("usage" in the version
  object, a line of `orrery show`), per version.
"""

import json
import os
import subprocess
import unittest

import hub
import oip
from hub import HubTestCase

DOI = "10.5281/zenodo.4242"
ORCID = "0000-0002-1825-0097"
CARD = b"# Spectra classifier\n\nTrained on survey spectra; see the paper.\n"


def fields():
    return dict(
        title="Spectra classifier",
        creators=[{"name": "Lovelace, Ada", "affiliation": "Analytical Engines",
                   "orcid": ORCID}, {"name": "Babbage, Charles"}],
        year=2025, license="CC-BY-4.0", tags=["spectra", "astronomy"],
        identifiers=[{"type": "DOI", "value": DOI}],
        related_identifiers=[{"type": "arXiv", "value": "2101.00042",
                              "relation": "IsDescribedBy"}])


class CitationTest(HubTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.server.new_tenant(("publisher",))
        cls.other = cls.server.new_tenant(("publisher",))
        tar, _ = hub.package("spectra", {"model.bin": b"w", "README.md": CARD}, **fields())
        cls.server.publish_ok(cls.t.name, "spectra", tar, cls.t["publisher"])
        tar, _ = hub.package("spectra", {"model.bin": b"w2"}, **fields())
        cls.server.publish_ok(cls.t.name, "spectra", tar, cls.t["publisher"])  # version 2

    def get(self, path, token=None):
        return self.server.request("GET", self.server.obj_path(self.t.name, "spectra") + path,
                                   token or self.t["publisher"])

    def cli(self, *args):
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=self.t["publisher"])
        return subprocess.run([hub.BIN] + list(args), capture_output=True, text=True, env=env,
                              timeout=60)

    def test_bibtex_of_latest_and_of_a_version(self):
        status, body = self.get("/cite")
        self.assertEqual(status, 200, body)
        text = body.decode()
        self.assertTrue(text.startswith("@misc{%s_spectra_v2,\n" % self.t.name), text)
        self.assertIn("  author = {{Lovelace, Ada} and {Babbage, Charles}},\n", text)
        self.assertIn("  title = {{Spectra classifier}},\n", text)
        self.assertIn("  year = {2025},\n", text)
        self.assertIn("  doi = {%s},\n" % DOI, text)
        self.assertIn("licence CC-BY-4.0", text)
        status, body = self.get("/versions/1/cite?format=bibtex")
        self.assertIn("  version = {1},\n", body.decode())

    def test_datacite_and_ris(self):
        status, record = self.get("/versions/1/cite?format=datacite")  # JSON: parsed
        self.assertEqual(status, 200, record)
        self.assertEqual(record["doi"], DOI)
        self.assertEqual(record["creators"][0]["nameIdentifiers"][0]["nameIdentifier"],
                         "https://orcid.org/" + ORCID)
        self.assertEqual(record["relatedIdentifiers"], [{
            "relatedIdentifier": "2101.00042", "relatedIdentifierType": "arXiv",
            "relationType": "IsDescribedBy"}])
        self.assertEqual((record["publicationYear"], record["version"]), (2025, "1"))
        status, body = self.get("/versions/1/cite?format=ris")
        lines = body.decode().split("\r\n")
        self.assertEqual(lines[:3], ["TY  - COMP", "AU  - Lovelace, Ada", "AU  - Babbage, Charles"])
        self.assertIn("DO  - " + DOI, lines)
        self.assertEqual(lines[-2:], ["ER  - ", ""])
        r = self.cli("cite", "spectra:1", "--format", "ris")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, body.decode().replace("\r\n", "\n"))  # text mode reads \r\n

    def test_bad_format_and_invisible_servable(self):
        self.assertError(self.get("/cite?format=mla"), 400,
                         message="unknown citation format 'mla' (one of bibtex, datacite, ris)")
        hidden = self.get("/cite", token=self.other["publisher"])
        absent = self.server.request("GET", self.server.obj_path(self.t.name, "nothing-here") +
                                     "/cite", self.other["publisher"])
        self.assertEqual((hidden[0], absent[0]), (404, 404))
        self.assertEqual(hidden[1]["error"].replace("spectra", "nothing-here"), absent[1]["error"])
        r = self.cli("cite", "%s/spectra" % self.t.name, "--format", "apa")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--format", r.stderr)

    def test_show_prints_citable_metadata(self):
        r = self.cli("show", "spectra:1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("creators:    Lovelace, Ada (ORCID %s), Analytical Engines; Babbage, Charles"
                      % ORCID, r.stdout)
        self.assertIn("year:        2025\n", r.stdout)
        self.assertIn("licence:     CC-BY-4.0\n", r.stdout)
        self.assertIn("identifiers: DOI %s\n" % DOI, r.stdout)
        self.assertIn("related:     IsDescribedBy arXiv 2101.00042\n", r.stdout)
        self.assertIn("model card:  README.md (show --readme)\n", r.stdout)

    def test_model_card(self):
        status, body = self.get("/versions/1/readme")
        self.assertEqual((status, body), (200, CARD))
        self.assertIs(self.get("/versions/1")[1]["readme"], True)
        self.assertIs(self.get("/versions/2")[1]["readme"], False)
        self.assertError(self.get("/readme"), 404,
                         message="%s/spectra:2 has no README.md" % self.t.name)
        r = self.cli("show", "spectra:1", "--readme")
        self.assertEqual((r.returncode, r.stdout), (0, CARD.decode()))

    def test_a_model_card_over_the_limit_is_refused(self):
        blobs = self.server.blob_digests()
        tar, _ = hub.package("big-card", {"model.bin": b"w", "README.md": b"x" * (256 * 1024 + 1)})
        self.assertError(self.server.publish(self.t.name, "big-card", tar, self.t["publisher"]),
                         422, message="README.md (the model card) is 262145 bytes, more than "
                         "the 262144 allowed")
        self.assertEqual(self.server.blob_digests(), blobs)
        self.assertEqual(self.server.describe(self.t.name, "big-card", self.t["publisher"])[0],
                         404)

    def test_search_finds_identifiers_and_orcids(self):
        for words in (DOI, "2101.00042", ORCID):
            with self.subTest(words):
                status, data = self.server.get("/api/v1/search?q=" + hub.q(words),
                                               self.t["publisher"])
                self.assertEqual(status, 200, data)
                names = [(i["tenant"], i["name"]) for i in data["items"]]
                self.assertIn((self.t.name, "spectra"), names)
        status, data = self.server.get("/api/v1/search?q=" + hub.q(ORCID),
                                       self.other["publisher"])
        self.assertEqual(data["items"], [])  # private to its tenant


class UsageTest(HubTestCase):

    def test_downloads_and_inferences_are_counted_per_version(self):
        t = self.server.new_tenant(("publisher",))
        code = "def predict(inputs):\n    return {'y': inputs['x'] + 1}\n"
        io = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
        for _ in range(2):
            self.server.publish_ok(t.name, "used", oip.py_package("used", code, *io),
                                   t["publisher"])
        for _ in range(2):
            status, _ = self.server.request("GET", self.server.obj_path(t.name, "used") +
                                            "/versions/1/archive", t["publisher"])
            self.assertEqual(status, 200)
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
        for _ in range(3):
            status, data, _ = oip.infer_json(self.server, t["publisher"], t.name + "/used", req,
                                             version=2)
            self.assertEqual(status, 200, data)

        def usage(version):
            return self.server.version(t.name, "used", version, t["publisher"])[1]["usage"]
        # Inference counts reach the catalog in batches (every 5 s).
        self.assertTrue(oip.wait_for(lambda: usage(2)["inferences"] == 3, 20), usage(2))
        self.assertEqual(usage(2), {"downloads": 0, "inferences": 3})
        self.assertEqual(usage(1), {"downloads": 2, "inferences": 0})
        env = dict(os.environ, ORRERY_URL=self.server.url, ORRERY_TOKEN=t["publisher"])
        r = subprocess.run([hub.BIN, "show", "used:1"], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertIn("usage:       2 downloads, 0 inferences\n", r.stdout)


if __name__ == "__main__":
    unittest.main()

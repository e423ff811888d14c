"""Unit tests of manifest_files.listed_paths: every form `files:` is written in."""

import glob
import os
import re
import unittest

from orrery.manifest_files import listed_paths

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


class ListedPathsTest(unittest.TestCase):

    def test_block_sequence_of_flow_mappings(self):  # what examples/train.py writes
        text = ("name: x\nfiles:\n- {path: predict.py, sha256: 1b}\n"
                "- {path: 'model.pkl', sha256: 31}  # the pickle\nsignature:\n"
                "  inputs: [{path: not-a-file}]\n")
        self.assertEqual(listed_paths(text), ["predict.py", "model.pkl"])

    def test_block_mappings_and_plain_paths(self):
        text = ("files:\n  - path: a b.py   # spaces are part of a plain path\n    sha256: 00\n"
                "  -   sha256: 11\n      path: \"q,\\\"x.txt\"\n  - data/\n  - 'it''s'\n"
                "backend: python\n")
        self.assertEqual(listed_paths(text), ["a b.py", 'q,"x.txt', "data/", "it's"])

    def test_flow_sequences(self):
        self.assertEqual(listed_paths('files: ["model.py", w.json, {"path": "x:y"}]\n'),
                         ["model.py", "w.json", "x:y"])
        self.assertEqual(listed_paths("files: [\n  {path: a, sha256: 1},\n  b\n]\nkind: s\n"),
                         ["a", "b"])
        self.assertEqual(listed_paths('{"name": "x", "files": [{"path": "m.py"}, "n.py"]}'),
                         ["m.py", "n.py"])

    def test_no_files(self):
        self.assertEqual(listed_paths("name: x\nkind: dataset\n"), [])
        self.assertEqual(listed_paths("name: x\nfiles: []\n"), [])
        self.assertEqual(listed_paths("name: x\nprofiles: [a]\n"), [])

    def test_malformed(self):
        with self.assertRaisesRegex(ValueError, "not closed"):
            listed_paths("files: [a, b\n")
        with self.assertRaisesRegex(ValueError, "neither a path nor has one"):
            listed_paths("files: [{sha256: 1}]\n")

    def test_every_example_manifest(self):
        manifests = glob.glob(os.path.join(EXAMPLES, "*", "orrery.yaml"))
        self.assertTrue(manifests, EXAMPLES)
        for path in manifests:
            with open(path) as f:
                text = f.read()
            want = re.findall(r"(?m)^- \{path: ([^,]+),", text)
            self.assertEqual(listed_paths(text), want, path)


if __name__ == "__main__":
    unittest.main()

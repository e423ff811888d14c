"""A servable cannot fork without bound: its worker's processes are limited (--worker-processes).

Proves, under bubblewrap and in the fallback sandbox: a fork bomb inside a worker fails with
EAGAIN after fewer forks than the limit, its children stay counted while they live (a second
bomb forks none), and another servable keeps answering meanwhile; the server's log states the
limit in force. A host where no limit can be had (no writable pids cgroup and workers that are
root outside) is a skip that says so, never a pass.
"""

import re
import unittest

import oip
from hub import HubTestCase

BOMB = '''
import os
import time

import numpy as np

def predict(inputs):
    forked, error = 0, 0
    while forked < 10000:
        try:
            pid = os.fork()
        except OSError as e:
            error = e.errno
            break
        if pid == 0:  # a child holds its pid until the worker goes
            os.closerange(3, 1024)
            time.sleep(3600)
            os._exit(0)
        forked += 1
    return {"forked": np.array([forked], dtype=np.int64), "errno": np.array([error], dtype=np.int64)}
'''
BOMB_IO = ([("x", "FP64", [-1])], [("forked", "INT64", [1]), ("errno", "INT64", [1])])
GOOD = "def predict(inputs):\n    return {'y': inputs['x'] + 1}\n"
GOOD_IO = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])
LIMIT = 24
EAGAIN = 11


class ForkBombChecks:

    @classmethod
    def setUpClass(cls):
        cls.server_args = cls.extra_args + ("--worker-processes", str(LIMIT))
        super().setUpClass()
        cls.a = cls.server.new_tenant(("publisher",))
        for name, code, io in (("bomb", BOMB, BOMB_IO), ("good", GOOD, GOOD_IO)):
            tar = oip.py_package(name, code, *io, module=name)
            cls.server.publish_ok(cls.a.name, name, tar, cls.a["publisher"])

    def call(self, name):
        req = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
        status, data, _ = oip.infer_json(self.server, self.a["publisher"],
                                         "%s/%s" % (self.a.name, name), req, timeout=120)
        self.assertEqual(status, 200, data)
        return {o["name"]: o["data"][0] for o in data["outputs"]}

    def limit_in_force(self):
        with open(self.server.log_path, errors="replace") as f:
            found = re.search(r"run in workers: (.*)", f.read())
        self.assertIsNotNone(found, "the server did not log its worker isolation")
        line = found.group(1)
        if "no limit on processes" in line:
            self.skipTest("this host allows no bound on a worker's processes: " + line)
        self.assertIn("at most %d processes and threads" % LIMIT, line)

    def test_fork_bomb_fails_inside_while_others_answer(self):
        self.limit_in_force()
        self.assertEqual(self.call("good"), {"y": 2.0})
        first = self.call("bomb")
        self.assertEqual(first["errno"], EAGAIN, first)
        self.assertGreater(first["forked"], 0, first)
        self.assertLess(first["forked"], LIMIT, first)  # the worker itself counts too
        self.assertEqual(self.call("good"), {"y": 2.0})
        again = self.call("bomb")  # its children still hold their pids
        self.assertEqual(again, {"forked": 0, "errno": EAGAIN})
        self.assertEqual(self.call("good"), {"y": 2.0})
        bombs = [p for p in oip.descendants(self.server.proc.pid)
                 if "bomb:predict" in oip.cmdline(p)]
        self.assertLessEqual(len(bombs), LIMIT + 2)  # the limit, and bwrap's monitor


class BubblewrapForkBombTest(ForkBombChecks, HubTestCase):
    extra_args = ()


class FallbackForkBombTest(ForkBombChecks, HubTestCase):
    extra_args = ("--no-bubblewrap",)


if __name__ == "__main__":
    unittest.main()

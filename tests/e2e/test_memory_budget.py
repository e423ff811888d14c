"""The memory budget is a bound (docs/inference.md, "Memory budget").

More Python servables than the budget holds are driven by concurrent clients, each picking
servables with a skewed (Zipf-like) choice, so that loads run side by side and idle models must
make room. Every request succeeds, models are evicted, and the hub's own accounts on /metrics
show that what was reserved and held never exceeded the budget.
"""

import random
import re
import threading
import unittest

import hub
import oip
from hub import HubTestCase

MIB = 1 << 20
BUDGET = 200 * MIB  # three workers at the estimate (64 MiB each), more once measured
SERVABLES = 8
CLIENTS = 4
REQUESTS_PER_CLIENT = 25
ADD_ONE = '''
def predict(inputs):
    return {"y": inputs["x"] + 1}
'''
SIG = ([("x", "FP64", [-1])], [("y", "FP64", [-1])])


def metrics(server):
    status, text = server.get("/metrics", server.admin)
    assert status == 200, text
    text = text.decode() if isinstance(text, bytes) else text
    values = {}
    for line in text.splitlines():
        m = re.match(r"^(orrery_memory_\w+) (\d+)$", line)
        if m:
            values[m.group(1)] = int(m.group(2))
    return values


class MemoryBudgetTest(HubTestCase):
    server_args = ("--memory-budget-bytes", str(BUDGET))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.t = s.new_tenant(("publisher",))
        cls.names = ["s%d" % i for i in range(SERVABLES)]
        for name in cls.names:
            s.publish_ok(cls.t.name, name, oip.py_package(name, ADD_ONE, *SIG),
                         cls.t["publisher"])

    def test_more_models_than_fit_never_exceed_the_budget(self):
        s = self.server
        self.assertEqual(metrics(s)["orrery_memory_budget_bytes"], BUDGET)
        weights = [1.0 / (rank + 1) for rank in range(SERVABLES)]
        failures = []
        answered = []

        def client(seed):
            rng = random.Random(seed)
            for i in range(REQUESTS_PER_CLIENT):
                name = rng.choices(self.names, weights)[0] if i % 3 else self.names[(seed + i) % SERVABLES]
                x = float(seed * 1000 + i)
                status, data, _ = oip.infer_json(
                    s, self.t["publisher"], "%s/%s" % (self.t.name, name),
                    {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]})
                if status != 200 or oip.output_values(data, {}, "y") != [x + 1]:
                    failures.append((name, status, data))
                answered.append(name)

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(len(answered), CLIENTS * REQUESTS_PER_CLIENT)
        self.assertEqual(len(set(answered)), SERVABLES)
        m = metrics(s)
        self.assertGreater(m["orrery_memory_evictions_total"], 0, m)
        self.assertLessEqual(m["orrery_memory_high_water_bytes"], BUDGET, m)
        self.assertLessEqual(m["orrery_memory_reserved_bytes"] + m["orrery_memory_accounted_bytes"],
                             BUDGET, m)
        self.assertEqual(m["orrery_memory_underestimates_total"], 0, m)
        self.assertEqual(m["orrery_memory_waiting_loads"], 0, m)
        # What the loaded models hold now (workers' resident sets) fits the budget too.
        status, text = s.get("/metrics", s.admin)
        text = text.decode()
        held = sum(float(v) for v in re.findall(r'^orrery_servable_memory_bytes\{[^}]*\} (\S+)$',
                                                text, re.M))
        self.assertGreater(held, 0)
        self.assertLessEqual(held, BUDGET)
        # Everything unloaded, nothing stays charged: no reservation or charge leaked.
        for name in self.names:
            s.post("/v2/repository/models/%s/%s/unload" % (self.t.name, name), self.t["publisher"])
        drained = oip.wait_for(lambda: (lambda m: m if m["orrery_memory_reserved_bytes"] == 0 and
                                        m["orrery_memory_accounted_bytes"] == 0 else None)(
            metrics(s)), timeout=30)
        self.assertTrue(drained, metrics(s))


if __name__ == "__main__":
    unittest.main()

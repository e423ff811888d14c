"""Stopping without losing work (README "Serving configuration", `orrery serve --help`).

On SIGTERM (or SIGINT) readiness turns false, requests that arrive later get 503 with
Retry-After (liveness still answers), requests already admitted finish and get their answers,
the worker processes are stopped and the process exits 0. A second signal stops at once (exit
1, the admitted requests cut off), and so does --shutdown-timeout when they take longer. gRPC
stops alike: health NOT_SERVING, new calls UNAVAILABLE, calls in flight answered.

The servable holds each request inside predict() until the test's gate lets it go
(oip.Gate), so "in flight" is a fact the test waited for, not a guess.
"""

import http.client
import os
import signal
import threading
import unittest

import hub
import oip
from hub import HubTestCase


class ShutdownTest(HubTestCase):
    server_args = ()

    def setUp(self):
        self.gate = oip.Gate()
        self.addCleanup(self.gate.close)

    def start(self, instances, extra=()):
        """A server of this test's own with the gated servable published and loaded."""
        tenant = hub.unique("sd")
        server = self.start_server(["--allow-network", tenant + "/gate"] + list(extra))
        server.create_tenant(tenant)
        token = server.create_token(tenant, "publisher")["token"]
        server.publish_ok(tenant, "gate", oip.py_package(
            "gate", oip.GATE_CODE, *oip.GATE_SIGNATURE,
            config={"network": True, "instances": instances}), token)
        status, data = server.post("/v2/repository/models/%s/gate/load" % tenant, token)
        self.assertEqual(status, 200, data)
        return server, tenant, token

    def infer_in_background(self, server, tenant, token, count):
        """Starts `count` inferences; returns {i: (status, data) or the exception}."""
        results = {}

        def call(i):
            try:
                results[i] = oip.infer_json(server, token, tenant + "/gate", self.gate.request())[:2]
            except (OSError, http.client.HTTPException) as error:
                results[i] = error

        threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        self.addCleanup(lambda: [t.join(60) for t in threads])
        return results, threads

    def workers_of(self, server):
        pids = oip.descendants(server.proc.pid)
        self.assertTrue(pids, "no worker process under the server")
        return pids

    def wait_not_ready(self, server, token):
        """Readiness turns false once the signal has been handled."""
        answer = oip.wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
            server.get("/v2/health/ready", token)), timeout=30)
        self.assertEqual(answer, (503, {"ready": False,
                                        "error": "not ready: the server is stopping"}))

    def test_sigterm_lets_admitted_requests_finish_and_refuses_late_ones(self):
        server, tenant, token = self.start(instances=4)
        workers = self.workers_of(server)
        self.assertEqual(server.get("/v2/health/ready", token), (200, {"ready": True}))
        results, threads = self.infer_in_background(server, tenant, token, 4)
        self.gate.arrivals(4)  # all four are running inside the servable

        server.proc.send_signal(signal.SIGTERM)
        self.wait_not_ready(server, token)
        status, data, headers = oip.infer_json(server, token, tenant + "/gate",
                                               self.gate.request())
        self.assertEqual((status, data), (503, {"error": "the server is stopping"}))
        self.assertEqual(headers.get("retry-after"), "1")
        self.assertEqual(server.get("/v2/health/live"), (200, {"live": True}))
        self.assertEqual(server.proc.poll(), None, "the server exited with requests in flight")

        self.gate.release()
        for t in threads:
            t.join(60)
        for i in range(4):
            status, data = results[i]
            self.assertEqual(status, 200, data)
            self.assertEqual(oip.output_values(data, {}, "y"), [float(self.gate.port)])
        self.assertEqual(server.proc.wait(60), 0, server.log_tail())
        self.assertEqual([p for p in workers if oip.alive(p)], [], "worker processes outlived it")
        self.assertIn("every admitted request was answered", server.log_tail())

    def test_grpc_stops_with_the_server(self):
        """gRPC follows the same stop: health NOT_SERVING, new calls UNAVAILABLE, a call in
        flight answered, then the listener closes with the process."""
        import numpy as np
        import oip_grpc
        server, tenant, token = self.start(instances=2)
        client = oip_grpc.Client(server.grpc_port)
        self.addCleanup(client.close)
        self.assertEqual(client.check_health(), ("OK", "SERVING"))
        gated = client.infer_request(tenant + "/gate", {"port": ("INT64", np.array([self.gate.port]))})
        answer = {}
        call = threading.Thread(target=lambda: answer.update(
            grpc=client.call("ModelInfer", gated, token, timeout=60)))
        call.start()
        self.addCleanup(call.join, 60)
        results, threads = self.infer_in_background(server, tenant, token, 1)  # holds HTTP's drain
        self.gate.arrivals(2)

        server.proc.send_signal(signal.SIGTERM)
        self.wait_not_ready(server, token)
        self.assertEqual(client.check_health(), ("OK", "NOT_SERVING"))
        code, ready = client.call("ServerReady", client.pb.ServerReadyRequest(), token)
        self.assertEqual((code, ready.ready), ("OK", False))
        self.assertEqual(client.call("ModelInfer", gated, token),
                         ("UNAVAILABLE", "the server is stopping"))
        code, live = client.call("ServerLive", client.pb.ServerLiveRequest())
        self.assertEqual((code, live.live), ("OK", True))

        self.gate.release()
        call.join(60)
        threads[0].join(60)
        code, response = answer["grpc"]
        self.assertEqual(code, "OK", response)
        self.assertEqual(results[0][0], 200, results[0])
        self.assertEqual(server.proc.wait(60), 0, server.log_tail())

    def test_sigint_is_the_same_stop(self):
        server, tenant, token = self.start(instances=1)
        workers = self.workers_of(server)
        results, threads = self.infer_in_background(server, tenant, token, 1)
        self.gate.arrivals(1)
        server.proc.send_signal(signal.SIGINT)
        self.wait_not_ready(server, token)
        self.gate.release()
        threads[0].join(60)
        self.assertEqual(results[0][0], 200, results[0])
        self.assertEqual(server.proc.wait(60), 0, server.log_tail())
        self.assertEqual([p for p in workers if oip.alive(p)], [])

    def test_idle_server_stops_at_once(self):
        server, tenant, token = self.start(instances=1)
        workers = self.workers_of(server)
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(60), 0, server.log_tail())
        self.assertEqual([p for p in workers if oip.alive(p)], [])

    def test_second_signal_stops_at_once(self):
        server, tenant, token = self.start(instances=1)
        workers = self.workers_of(server)
        results, threads = self.infer_in_background(server, tenant, token, 1)
        self.gate.arrivals(1)
        server.proc.send_signal(signal.SIGTERM)
        self.wait_not_ready(server, token)
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(60), 1, server.log_tail())
        threads[0].join(60)
        self.assertIsInstance(results[0], (OSError, http.client.HTTPException), results[0])
        self.assertEqual([p for p in workers if oip.alive(p)], [])
        self.assertIn("1 admitted requests were cut off", server.log_tail())

    def test_shutdown_timeout_cuts_off_what_is_left(self):
        server, tenant, token = self.start(instances=1, extra=["--shutdown-timeout", "1"])
        workers = self.workers_of(server)
        results, threads = self.infer_in_background(server, tenant, token, 1)
        self.gate.arrivals(1)
        server.proc.send_signal(signal.SIGTERM)
        # The gate is never opened: the server gives up on the request after 1 s.
        self.assertEqual(server.proc.wait(60), 1, server.log_tail())
        threads[0].join(60)
        self.assertIsInstance(results[0], (OSError, http.client.HTTPException), results[0])
        self.assertEqual([p for p in workers if oip.alive(p)], [])
        self.assertIn("shutdown timeout of 1 s", server.log_tail())


if __name__ == "__main__":
    unittest.main()

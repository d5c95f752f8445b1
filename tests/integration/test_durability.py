"""Durability: what got a 200 survives SIGTERM and kill -9 (SPEC 2, 3, 10)."""

import threading
import time
import unittest

import harness
from harness import RepodTestCase, Server, list_snapshot, plugin_body

KILL_LOOPS = 20


class DurabilityTest(RepodTestCase):

    def setUp(self):
        self.server = Server(start=False, name="durability")
        self.addCleanup(self.server.close)
        self.admin = self.server.make_token("domain-a", "admin")
        self.server.start()

    def reg(self, image, **kw):
        return self.assertOK(self.server.api("plugin/register", plugin_body(image, **kw), token=self.admin))

    def snapshot(self):
        return list_snapshot(self.server, self.admin)

    def local_repository(self):
        b = self.assertOK(self.server.api("repository/list", {}, token=self.admin))
        locals_ = [r for r in b["results"] if r.get("repository_type") == "local"]
        self.assertEqual(len(locals_), 1, b)
        return locals_[0]

    def test_sigterm_restart_keeps_everything(self):
        n = 12
        for i in range(n):
            self.reg("acme/plugin-keep-%02d" % i, name="Keep %02d" % i, provider="p%d" % (i % 3),
                     labels=["l%d" % i], tags={"i": str(i)},
                     template={"options": {"schema": {"type": "object", "properties": {}}}})
        self.assertOK(self.server.api("plugin/update", {"plugin_id": "plugin-keep-03", "name": "Renamed"},
                                      token=self.admin))
        self.assertOK(self.server.api("plugin/disable", {"plugin_id": "plugin-keep-04"}, token=self.admin))
        self.assertOK(self.server.api("plugin/deregister", {"plugin_id": "plugin-keep-05"}, token=self.admin))
        before = self.snapshot()
        self.assertEqual(before["total_count"], n - 1)
        repo = self.local_repository()
        for _ in range(2):
            self.assertEqual(self.server.stop(), 0)
            self.server.start()
            after = self.snapshot()
            self.assertEqual(after, before, "data changed across a SIGTERM restart")
            self.assertEqual(self.local_repository(), repo, "local repository changed across restart")
        by_id = {p["plugin_id"]: p for p in after["results"]}
        self.assertEqual(by_id["plugin-keep-03"]["name"], "Renamed")
        self.assertEqual(by_id["plugin-keep-04"]["state"], "DISABLED")
        self.assertNotIn("plugin-keep-05", by_id)
        for p in after["results"]:
            self.assertEqual(p["repository_info"]["repository_id"], repo["repository_id"])
        # the restarted server still takes writes, and duplicates are still refused
        self.assertError(self.server.api("plugin/register", plugin_body("acme/plugin-keep-00"), token=self.admin),
                         409, "ERROR_SAVE_UNIQUE_VALUES")
        self.reg("acme/plugin-keep-05")

    def test_kill9_after_200_loses_nothing(self):
        expected = {}
        repo = self.local_repository()
        for i in range(KILL_LOOPS):
            pid = "plugin-crash-%02d" % i
            p = self.reg("acme/" + pid, name="Crash %02d" % i, labels=["n%d" % i])
            expected[pid] = p
            if i % 5 == 4:      # an update acknowledged just before the crash
                prev = "plugin-crash-%02d" % (i - 1)
                u = self.assertOK(self.server.api("plugin/update", {"plugin_id": prev, "name": "Updated %d" % i},
                                                  token=self.admin))
                expected[prev] = u
            if i % 7 == 6:      # a deregister acknowledged just before the crash
                gone = "plugin-crash-%02d" % (i - 2)
                self.assertOK(self.server.api("plugin/deregister", {"plugin_id": gone}, token=self.admin))
                del expected[gone]
            self.server.kill9()
            self.server.start()
            snap = self.snapshot()
            want = sorted(expected.values(), key=lambda x: x["plugin_id"])
            self.assertEqual(snap["results"], want, "after kill -9 #%d%s" % (i, self.server.describe()))
            self.assertEqual(snap["total_count"], len(expected))
        self.assertEqual(self.local_repository()["repository_id"], repo["repository_id"])

    def test_kill9_during_concurrent_writes(self):
        acked = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w):
            i = 0
            while not stop.is_set():
                pid = "plugin-conc-%d-%03d" % (w, i)
                i += 1
                try:
                    r = self.server.api("plugin/register", plugin_body("acme/" + pid), token=self.admin)
                except (OSError, harness.http.client.HTTPException):
                    return
                if r.status == 200:
                    with lock:
                        acked[pid] = r.body

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 15:
                    break
            time.sleep(0.02)
        self.server.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreaterEqual(len(acked), 1, "no register succeeded before the kill")
        self.server.start()
        snap = self.snapshot()
        by_id = {p["plugin_id"]: p for p in snap["results"]}
        for pid, p in acked.items():
            self.assertIn(pid, by_id, "acknowledged %s lost after kill -9" % pid)
            self.assertEqual(by_id[pid], p)
        for p in snap["results"]:   # unacknowledged ones may exist, but whole and valid
            self.assertPluginInfo(p)
        self.assertEqual(snap["total_count"], len(snap["results"]))

    def test_bad_requests_do_not_change_data(self):
        a = self.reg("acme/plugin-good-a", labels=["a"])
        self.reg("acme/plugin-good-b")
        before = self.snapshot()
        bad = [
            ("plugin/register", dict(plugin_body("acme/plugin-bad-1"), labels="x")),
            ("plugin/register", plugin_body("acme/plugin-good-a", name="Overwrite?")),
            ("plugin/register", plugin_body("Acme/Bad")),
            ("plugin/register", dict(plugin_body("acme/plugin-bad-2"),
                                     template={"options": {"schema": {"type": 7}}})),
            ("plugin/update", {"plugin_id": "plugin-good-a", "labels": "x", "name": "Half"}),
            ("plugin/update", {"plugin_id": "plugin-good-a", "name": "Half", "image": "acme/other"}),
            ("plugin/update", b'{"plugin_id": "plugin-good-a", "name": '),
            ("plugin/update", b'{"plugin_id": "plugin-good-a", "name": "x", "name": "y"}'),
            ("plugin/deregister", {"plugin_id": "plugin-missing"}),
            ("plugin/enable", {"plugin_id": ["plugin-good-a"]}),
        ]
        for path, body in bad:
            with self.subTest(path=path, body=str(body)[:60]):
                r = self.server.request(path, body, token=self.admin)
                self.assertGreaterEqual(r.status, 400, self._ctx(r))
                self.assertEqual(self.snapshot(), before, "bad request changed stored data")
        c = self.reg("acme/plugin-good-c")
        self.assertEqual(self.assertOK(self.server.api("plugin/get", {"plugin_id": "plugin-good-a"},
                                                        token=self.admin)), a)
        after = self.snapshot()
        self.assertEqual(after["total_count"], 3)
        self.assertIn(c, after["results"])
        self.server.kill9()
        self.server.start()
        self.assertEqual(self.snapshot(), after)
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertEqual(self.snapshot(), after)


if __name__ == "__main__":
    unittest.main()

"""The cached plugin get of a mirror (SPEC 6) over its in-memory records.

A mirror answers a get of a cached remote plugin from memory: the remote
repository records, the read model of each repository and the time each
plugin was fetched on its own.  These tests change what that memory
mirrors, right after gets that filled it, and check that the next get
follows: a rename, a deregistration (and a registration again of the same
upstream), a plugin fetched on its own after the catalog went stale, and a
new priority.  Real repod mirrors over TLS on 127.0.0.1, fake upstreams
(fake_upstream.py) on ports picked at run time.
"""

import time
import unittest

import harness
from fake_upstream import FakeUpstream, fake_plugin
from harness import RepodTestCase, Server

A_ID = "repo-0000000000aa"
B_ID = "repo-0000000000bb"


class CachedGetTest(RepodTestCase):

    def setUp(self):
        self.a = self.fake(A_ID, "Alpha Up", [fake_plugin("fake/dup", name="Dup from A"),
                                              fake_plugin("fake/only-a", name="Only A")])
        self.b = self.fake(B_ID, "Bravo Up", [fake_plugin("fake/dup", name="Dup from B")])
        self.server = self.m = Server(start=False, name="cget-M")
        self.addCleanup(self.m.close)
        self.system = self.m.make_token("root", "system")
        self.viewer = self.m.make_token("dv", "viewer")
        self.m.start()

    def fake(self, rid, name, plugins):
        f = FakeUpstream(harness.cert_dir(), repository_id=rid, name=name, plugins=plugins)
        f.start()
        self.addCleanup(f.stop)
        return f

    def register(self, fake, name, **extra):
        body = {"name": name, "repository_type": "remote", "endpoint": fake.endpoint,
                "upstream": {"ca_file": self.m.ca_file}}
        body.update(extra)
        self.assertOK(self.m.api("repository/register", body, token=self.system))
        self.assertOK(self.m.api("repository/sync", {"repository_id": fake.repository_id},
                                 token=self.system))

    def get(self, pid, **extra):
        body = {"plugin_id": pid}
        body.update(extra)
        return self.m.api("plugin/get", body, token=self.viewer)

    def shown(self, pid, **extra):
        """(name, repository_info.name, X-Cache) of a get that must succeed."""
        r = self.get(pid, **extra)
        p = self.assertOK(r)
        return p.get("name"), p.get("repository_info", {}).get("name"), r.headers.get("X-Cache")

    def test_rename_shows_in_the_next_get(self):
        self.register(self.a, "First", cache={"ttl_s": 300})
        self.assertEqual(self.shown("only-a"), ("Only A", "First", "HIT"))
        self.assertEqual(self.shown("only-a", repository_id=A_ID), ("Only A", "First", "HIT"))
        r = self.m.api("repository/update", {"repository_id": A_ID, "name": "Second"},
                       token=self.system)
        self.assertEqual(self.assertOK(r)["name"], "Second")
        self.assertEqual(self.shown("only-a"), ("Only A", "Second", "HIT"),
                         "the get after a rename still shows the old name")
        self.assertEqual(self.shown("only-a", repository_id=A_ID), ("Only A", "Second", "HIT"))
        # a projection is made from the same cached document
        p = self.assertOK(self.get("only-a", only=["plugin_id", "repository_info"]))
        self.assertEqual(p, {"plugin_id": "only-a",
                             "repository_info": {"repository_id": A_ID, "name": "Second",
                                                 "repository_type": "remote", "endpoint": ""}})
        self.assertEqual(self.a.count("plugin/get"), 0, "a cached get asked the upstream")

    def test_deregistered_repository_is_never_served(self):
        self.register(self.a, "Alpha", cache={"ttl_s": 300})
        self.assertEqual(self.shown("only-a"), ("Only A", "Alpha", "HIT"))
        self.assertOK(self.m.api("repository/deregister", {"repository_id": A_ID},
                                 token=self.system))
        self.assertError(self.get("only-a"), 404, "ERROR_NO_PLUGIN")
        self.assertError(self.get("only-a", repository_id=A_ID), 404, "ERROR_NO_PLUGIN")
        self.assertError(self.get("dup"), 404, "ERROR_NO_PLUGIN")
        # the same upstream registered again: its old copies are gone too
        self.a.set_plugins([fake_plugin("fake/only-a", name="Only A again")])
        body = {"name": "Alpha again", "repository_type": "remote", "endpoint": self.a.endpoint,
                "upstream": {"ca_file": self.m.ca_file}, "cache": {"ttl_s": 300}}
        self.assertOK(self.m.api("repository/register", body, token=self.system))
        name, repo, _ = self.shown("only-a")
        self.assertEqual((name, repo), ("Only A again", "Alpha again"),
                         "a copy cached before the deregistration was served")

    def test_plugin_fetched_on_its_own_counts_with_its_own_age(self):
        # stale_while_revalidate: a get judged by the stale catalog's age
        # would answer STALE; one fetched on its own a moment ago is fresh
        self.register(self.a, "Alpha", cache={"ttl_s": 3, "stale_while_revalidate": True,
                                              "stale_if_error_s": 600})
        self.a.set_plugins(self.a.snapshot() + [fake_plugin("fake/late", name="Late")])
        time.sleep(3.2)  # the catalog (without "late") is stale now
        self.assertEqual(self.shown("late"), ("Late", "Alpha", "MISS"))
        self.assertEqual(self.a.count("plugin/get", "late"), 1)
        seen = [self.shown("late")[2] for _ in range(3)]
        self.assertEqual(seen, ["HIT"] * 3,
                         "a plugin fetched on its own a moment ago was judged by the stale "
                         "catalog's age")
        self.assertEqual(self.a.count("plugin/get", "late"), 1, "the fresh copy was fetched again")
        # a plugin only the catalog holds keeps the catalog's age
        self.assertEqual(self.shown("only-a")[2], "STALE")

    def test_new_priority_changes_which_repository_answers(self):
        self.register(self.a, "Alpha", priority=10, cache={"ttl_s": 300})
        self.register(self.b, "Bravo", priority=20, cache={"ttl_s": 300})
        self.assertEqual(self.shown("dup"), ("Dup from A", "Alpha", "HIT"))
        self.assertEqual(self.shown("dup", repository_id=B_ID), ("Dup from B", "Bravo", "HIT"))
        self.assertOK(self.m.api("repository/update", {"repository_id": A_ID, "priority": 30},
                                 token=self.system))
        self.assertEqual(self.shown("dup"), ("Dup from B", "Bravo", "HIT"),
                         "the get after a priority change still follows the old order")
        self.assertEqual(self.shown("dup", repository_id=A_ID), ("Dup from A", "Alpha", "HIT"))
        self.assertOK(self.m.api("repository/update", {"repository_id": B_ID, "priority": 40},
                                 token=self.system))
        self.assertEqual(self.shown("dup"), ("Dup from A", "Alpha", "HIT"))
        self.assertEqual(self.shown("only-a"), ("Only A", "Alpha", "HIT"))


if __name__ == "__main__":
    unittest.main()

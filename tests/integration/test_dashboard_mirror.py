"""Dashboard templates through a mirror: the remote tier (SPEC 5, 6, 14).

Real repod processes over TLS on 127.0.0.1: an upstream repod U holding
dashboard templates in a public domain ("market") and a private one, and a
mirror M of it with local templates of its own.  Lists, stat and get through
M with repository_id of U and merged (local + remote), the cache headers
while U is up and after it is stopped, writes on mirrored templates, the
published schemas of the answers, and an upstream without the dashboard
routes (fake_upstream.py) that keeps plugins working; and the cached get of a
mirrored template right after the mirror's records change (a rename, a
deregistration, a new priority) or after it fetched a template on its own.
"""

import time
import unittest

from fake_upstream import FakeUpstream, fake_plugin
from harness import RepodTestCase, Server, cert_dir
from test_contract import errors_of, load_document, route_schema, validator
from test_federation import local_repository_id, must, register_remote, wait_until

ROUTE = "dashboard-template/"


def template(tid, name, template_type="MULTI", **extra):
    body = {"template_id": tid, "name": name, "template_type": template_type,
            "dashboards": [{"name": "main", "layouts": []}], "labels": ["l-" + tid],
            "tags": {"k": tid}}
    body.update(extra)
    return body


def seed(server, token, templates):
    for t in templates:
        must(server.api(ROUTE + "register", t, token=token), "register %s" % t["template_id"],
             server)


def tids(body):
    return [t.get("template_id") for t in body.get("results", [])]


class DashboardMirrorTest(RepodTestCase):
    """U: 4 public templates of "market", 1 of "private-dom", 1 plugin.
    M: 3 local templates of d1, U mirrored with a long ttl."""

    MARKET = [template("mk-alpha", "Alpha"), template("mk-bravo", "Bravo", "SINGLE"),
              template("mk-delta", "Delta"), template("mk-golf", "Golf", "SINGLE")]
    PRIVATE = [template("pv-secret", "Secret")]
    LOCAL = [template("loc-charlie", "Charlie"), template("loc-echo", "Echo", "SINGLE"),
             template("loc-hotel", "Hotel")]

    @classmethod
    def setUpClass(cls):
        cls.servers = []
        try:
            cls.up = cls._new(Server(start=False, name="dash-U",
                                     overrides={"auth": {"public_domains": ["market"]}}))
            market = cls.up.make_token("market", "admin")
            private = cls.up.make_token("private-dom", "admin")
            cls.up.start()
            seed(cls.up, market, cls.MARKET)
            seed(cls.up, private, cls.PRIVATE)
            must(cls.up.api("plugin/register",
                            {"image": "market/mk-plug", "name": "Plug",
                             "resource_type": "inventory.Collector", "registry_type": "DOCKER_HUB"},
                            token=market), "plugin register", cls.up)
            cls.u_id = local_repository_id(cls.up)
            cls.mirror = cls._new(Server(start=False, name="dash-M"))
            cls.system = cls.mirror.make_token("root", "system")
            cls.admin = cls.mirror.make_token("d1", "admin")
            cls.viewer = cls.mirror.make_token("d1", "viewer")
            cls.mirror.start()
            seed(cls.mirror, cls.admin, cls.LOCAL)
            cls.m_id = local_repository_id(cls.mirror)
            # pages of 3: the 4 market templates take two upstream calls
            must(register_remote(cls.mirror, cls.system, "Market", cls.up,
                                 cache={"ttl_s": 300, "sync_page_size": 3}),
                 "repository register", cls.mirror)
            cls.sync = must(cls.mirror.api("repository/sync", {"repository_id": cls.u_id},
                                           token=cls.system), "repository sync", cls.mirror)
            cls.doc = load_document()
        except BaseException:
            cls._close_all()
            raise

    @classmethod
    def _new(cls, server):
        cls.servers.append(server)
        return server

    @classmethod
    def _close_all(cls):
        for s in reversed(cls.servers):
            s.close()

    @classmethod
    def tearDownClass(cls):
        cls._close_all()

    def valid(self, verb, body):
        v = validator(self.doc, route_schema(self.doc, "dashboard-template", verb))
        self.assertEqual(errors_of(v, body), [], body)

    def test_sync_counts_both_resources(self):
        self.assertEqual(self.sync, {"repository_id": self.u_id, "plugins": 1,
                                     "dashboard_templates": len(self.MARKET)})
        g = self.assertOK(self.mirror.api("repository/get", {"repository_id": self.u_id},
                                          token=self.system))
        self.assertEqual(g["upstream"]["state"], "ok", g)
        self.assertEqual(g["upstream"]["cached_dashboard_templates"], len(self.MARKET), g)
        self.assertEqual(g["upstream"]["skipped_dashboard_templates"], 0, g)
        self.assertEqual(g["upstream"]["cached_plugins"], 1, g)
        # in pages of sync_page_size (3): one sync of the 4 templates is two calls
        self.assertGreaterEqual(self.up.access_count("dashboard-template/list", 200, settle=True),
                                2)

    def test_list_of_the_remote_repository(self):
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id}, token=self.viewer)
        b = self.assertOK(r)
        self.assertEqual(tids(b), ["mk-alpha", "mk-bravo", "mk-delta", "mk-golf"])
        self.assertEqual(b["total_count"], 4)
        self.assertEqual(r.headers.get("X-Cache"), "HIT")
        for t in b["results"]:
            self.assertEqual(t["repository_info"], {"repository_id": self.u_id, "name": "Market",
                                                    "repository_type": "remote", "endpoint": ""})
        self.valid("list", b)
        # the mirror's copy is the upstream's document, repository_info aside
        u = self.assertOK(self.up.api(ROUTE + "get", {"template_id": "mk-bravo"}))
        m = [t for t in b["results"] if t["template_id"] == "mk-bravo"][0]
        self.assertEqual({k: v for k, v in m.items() if k != "repository_info"},
                         {k: v for k, v in u.items() if k != "repository_info"})
        # filters and count_only on the mirrored tier
        b = self.assertOK(self.mirror.api(ROUTE + "list", {"repository_id": self.u_id,
                                                           "template_type": "SINGLE"}))
        self.assertEqual(tids(b), ["mk-bravo", "mk-golf"])
        b = self.assertOK(self.mirror.api(ROUTE + "list", {"repository_id": self.m_id},
                                          token=self.viewer))
        self.assertEqual(tids(b), ["loc-charlie", "loc-echo", "loc-hotel"])

    def test_merged_list_global_sort_and_paging(self):
        names = sorted(t["name"] for t in self.MARKET + self.LOCAL)
        r = self.mirror.api(ROUTE + "list", {}, token=self.viewer)
        b = self.assertOK(r)
        # local first, then the remote tier, each in its default order
        self.assertEqual(tids(b), ["loc-charlie", "loc-echo", "loc-hotel", "mk-alpha",
                                   "mk-bravo", "mk-delta", "mk-golf"])
        self.assertEqual(r.headers.get("X-Cache"), "HIT")
        self.valid("list", b)
        for start, limit in ((1, 3), (2, 3), (4, 2), (6, 5)):
            with self.subTest(start=start, limit=limit):
                b = self.assertOK(self.mirror.api(ROUTE + "list", {"query": {
                    "sort": [{"key": "name"}], "page": {"start": start, "limit": limit}}},
                    token=self.viewer))
                self.assertEqual([t["name"] for t in b["results"]],
                                 names[start - 1:start - 1 + limit])
                self.assertEqual(b["total_count"], 7)
        b = self.assertOK(self.mirror.api(ROUTE + "list", {"query": {
            "sort": [{"key": "name", "desc": True}], "page": {"start": 1, "limit": 2},
            "only": ["template_id", "name"]}}, token=self.viewer))
        self.assertEqual(b["results"], [{"template_id": "loc-hotel", "name": "Hotel"},
                                        {"template_id": "mk-golf", "name": "Golf"}])
        # anonymous: no local domain, the mirrored tier alone
        b = self.assertOK(self.mirror.api(ROUTE + "list", {}))
        self.assertEqual(b["total_count"], 4)

    def test_stat(self):
        q = {"query": {"aggregate": [{"group": {"keys": [{"key": "template_type",
                                                          "name": "type"}],
                                                "fields": [{"operator": "count",
                                                            "name": "n"}]}},
                                     {"sort": {"key": "type"}}]}}
        b = self.assertOK(self.mirror.api(ROUTE + "stat", dict(q, repository_id=self.u_id),
                                          token=self.viewer))
        self.assertEqual(b["results"], [{"type": "MULTI", "n": 2}, {"type": "SINGLE", "n": 2}])
        r = self.mirror.api(ROUTE + "stat", q, token=self.viewer)
        self.assertEqual(self.assertOK(r)["results"],
                         [{"type": "MULTI", "n": 4}, {"type": "SINGLE", "n": 3}])
        self.assertEqual(r.headers.get("X-Cache"), "HIT")

    def test_get_of_a_mirrored_template(self):
        for body in ({"template_id": "mk-delta"},
                     {"template_id": "mk-delta", "repository_id": self.u_id}):
            with self.subTest(body=body):
                r = self.mirror.api(ROUTE + "get", body, token=self.viewer)
                b = self.assertOK(r)
                self.assertEqual(b["template_id"], "mk-delta")
                self.assertEqual(b["repository_info"]["repository_id"], self.u_id)
                self.assertEqual(b["repository_info"]["repository_type"], "remote")
                self.assertEqual(r.headers.get("X-Cache"), "HIT")
                self.valid("get", b)
        b = self.assertOK(self.mirror.api(ROUTE + "get", {"template_id": "mk-delta",
                                                          "only": ["name"]}))
        self.assertEqual(b, {"name": "Delta"})
        # a local template answers from the local tier, with the local repository_info
        r = self.mirror.api(ROUTE + "get", {"template_id": "loc-echo"}, token=self.viewer)
        self.assertEqual(self.assertOK(r)["repository_info"]["repository_id"], self.m_id)
        self.assertIsNone(r.headers.get("X-Cache"))
        # the local repository named: the remote tier is not searched
        self.assertError(self.mirror.api(ROUTE + "get", {"template_id": "mk-delta",
                                                         "repository_id": self.m_id}),
                         404, "ERROR_NOT_FOUND")

    def test_private_templates_of_the_upstream_stay_private(self):
        for body in ({}, {"repository_id": self.u_id}):
            b = self.assertOK(self.mirror.api(ROUTE + "list", body, token=self.viewer))
            self.assertNotIn("pv-secret", tids(b))
        self.assertError(self.mirror.api(ROUTE + "get", {"template_id": "pv-secret"},
                                         token=self.viewer), 404, "ERROR_NOT_FOUND")

    def test_writes_on_a_mirrored_template_are_refused(self):
        for verb, body in (("update", {"template_id": "mk-alpha", "name": "X"}),
                           ("deregister", {"template_id": "mk-alpha"}),
                           ("enable", {"template_id": "mk-alpha"}),
                           ("disable", {"template_id": "mk-alpha"})):
            with self.subTest(verb=verb):
                d = self.assertError(self.mirror.api(ROUTE + verb, body, token=self.admin), 409,
                                     "ERROR_NOT_LOCAL_PLUGIN")
                self.assertIn("template_id = mk-alpha", d["message"])
                self.assertIn(self.u_id, d["message"])
        b = self.assertOK(self.mirror.api(ROUTE + "get", {"template_id": "mk-alpha"}))
        self.assertEqual(b["name"], "Alpha")

    def test_unknown_template_is_not_found(self):
        self.assertError(self.mirror.api(ROUTE + "get", {"template_id": "nope"},
                                         token=self.viewer), 404, "ERROR_NOT_FOUND")


class DashboardOutageTest(RepodTestCase):
    """A mirror with a short ttl: on-demand get (MISS), then the upstream
    stops: STALE answers, and X-Partial once nothing servable is left."""

    TTL_S = 1

    @classmethod
    def setUpClass(cls):
        cls.up = Server(start=False, name="dash-out-U",
                        overrides={"auth": {"public_domains": ["market"]}})
        cls.mirror = Server(start=False, name="dash-out-M")
        try:
            cls.market = cls.up.make_token("market", "admin")
            cls.up.start()
            seed(cls.up, cls.market, [template("out-a", "Out A"), template("out-b", "Out B")])
            cls.u_id = local_repository_id(cls.up)
            cls.system = cls.mirror.make_token("root", "system")
            cls.admin = cls.mirror.make_token("d1", "admin")
            cls.mirror.start()
            seed(cls.mirror, cls.admin, [template("loc-one", "Local One")])
            must(register_remote(cls.mirror, cls.system, "Outage", cls.up,
                                 cache={"ttl_s": cls.TTL_S, "stale_while_revalidate": False,
                                        "stale_if_error_s": 3600, "negative_ttl_s": 0,
                                        "timeout_ms": 1000}),
                 "register", cls.mirror)
        except BaseException:
            cls.mirror.close()
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        cls.up.close()

    def resync(self):
        b = self.assertOK(self.mirror.api("repository/sync", {"repository_id": self.u_id},
                                          token=self.system))
        return b["dashboard_templates"]

    def test_1_hit_then_miss_on_demand(self):
        self.assertEqual(self.resync(), 2)
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertEqual(tids(self.assertOK(r)), ["out-a", "out-b"])
        self.assertIn(r.headers.get("X-Cache"), ("HIT", "MISS"))
        # a template registered upstream after the sync: fetched on its own
        seed(self.up, self.market, [template("out-new", "Out New")])
        time.sleep(self.TTL_S + 0.2)
        r = self.mirror.api(ROUTE + "get", {"template_id": "out-new"})
        self.assertEqual(self.assertOK(r)["template_id"], "out-new")
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        self.assertEqual(r.body["repository_info"]["repository_id"], self.u_id)
        # an expired catalog is synced again on a list (MISS), then fresh (HIT)
        time.sleep(self.TTL_S + 0.2)
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertEqual(tids(self.assertOK(r)), ["out-a", "out-b", "out-new"])
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertEqual(r.headers.get("X-Cache"), "HIT")

    def test_2_stale_answers_once_the_upstream_is_down(self):
        self.resync()
        self.up.stop()
        time.sleep(self.TTL_S + 0.2)
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertEqual(tids(self.assertOK(r)), ["out-a", "out-b", "out-new"])
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        r = self.mirror.api(ROUTE + "get", {"template_id": "out-b"})
        self.assertEqual(self.assertOK(r)["name"], "Out B")
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        r = self.mirror.api(ROUTE + "list", {}, token=self.admin)
        self.assertEqual(tids(self.assertOK(r)), ["loc-one", "out-a", "out-b", "out-new"])
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        self.assertIsNone(r.headers.get("X-Partial"))

    def test_2b_a_restarted_mirror_serves_what_it_had(self):
        if self.up.running():
            self.up.stop()
        self.mirror.restart()
        self.assertIn("remote: read model of %s holds 3 dashboard templates" % self.u_id,
                      self.mirror.log())
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertEqual(tids(self.assertOK(r)), ["out-a", "out-b", "out-new"])
        self.assertEqual(r.headers.get("X-Cache"), "STALE")

    def test_3_partial_when_nothing_servable_is_left(self):
        if self.up.running():
            self.up.stop()
        self.assertOK(self.mirror.api("repository/update", {"repository_id": self.u_id,
                                                            "cache": {"stale_if_error_s": 0}},
                                      token=self.system))
        self.addCleanup(self.mirror.api, "repository/update",
                        {"repository_id": self.u_id, "cache": {"stale_if_error_s": 3600}},
                        token=self.system)
        time.sleep(self.TTL_S + 0.2)
        r = self.mirror.api(ROUTE + "list", {}, token=self.admin)
        self.assertEqual(tids(self.assertOK(r)), ["loc-one"])
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        self.assertEqual(r.headers.get("X-Partial"), self.u_id)
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.u_id})
        self.assertIn(r.status, (503, 504), r.body)


class DashboardCachedGetTest(RepodTestCase):
    """The cached get of a mirrored template follows what the mirror's memory
    mirrors, right after gets that filled it, as a plugin's does
    (test_cached_get.py): a rename, a deregistration (and a registration
    again of the same upstream), a template fetched on its own after the
    catalog went stale (also after a restart), a new priority.  Two upstream
    repods U1 and U2 with public templates ("dup" in both); a new mirror M
    per test."""

    @classmethod
    def setUpClass(cls):
        cls.ups = []
        try:
            for name, templates in (("dcg-U1", [template("dup", "Dup from 1"),
                                                template("only-1", "Only 1")]),
                                    ("dcg-U2", [template("dup", "Dup from 2")])):
                up = Server(start=False, name=name,
                            overrides={"auth": {"public_domains": ["market"]}})
                cls.ups.append(up)
                up.market = up.make_token("market", "admin")
                up.start()
                seed(up, up.market, templates)
                up.rid = local_repository_id(up)
            cls.u1, cls.u2 = cls.ups
        except BaseException:
            for up in cls.ups:
                up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        for up in cls.ups:
            up.close()

    def setUp(self):
        self.m = Server(start=False, name="dcg-M")
        self.addCleanup(self.m.close)
        self.system = self.m.make_token("root", "system")
        self.viewer = self.m.make_token("dv", "viewer")
        self.m.start()

    def register(self, up, name, **extra):
        self.assertOK(register_remote(self.m, self.system, name, up, **extra))
        self.assertOK(self.m.api("repository/sync", {"repository_id": up.rid},
                                 token=self.system))

    def get(self, tid, **extra):
        body = {"template_id": tid}
        body.update(extra)
        return self.m.api(ROUTE + "get", body, token=self.viewer)

    def shown(self, tid, **extra):
        """(name, repository_info.name, X-Cache) of a get that must succeed."""
        r = self.get(tid, **extra)
        t = self.assertOK(r)
        return t.get("name"), t.get("repository_info", {}).get("name"), r.headers.get("X-Cache")

    def upstream_gets(self, up):
        return up.access_count(ROUTE + "get", settle=True)

    def test_rename_shows_in_the_next_get(self):
        self.register(self.u1, "First", cache={"ttl_s": 300})
        gets = self.upstream_gets(self.u1)
        self.assertEqual(self.shown("only-1"), ("Only 1", "First", "HIT"))
        self.assertEqual(self.shown("only-1", repository_id=self.u1.rid),
                         ("Only 1", "First", "HIT"))
        r = self.m.api("repository/update", {"repository_id": self.u1.rid, "name": "Second"},
                       token=self.system)
        self.assertEqual(self.assertOK(r)["name"], "Second")
        self.assertEqual(self.shown("only-1"), ("Only 1", "Second", "HIT"),
                         "the get after a rename still shows the old name")
        self.assertEqual(self.shown("only-1", repository_id=self.u1.rid),
                         ("Only 1", "Second", "HIT"))
        # a projection is made from the same cached document
        t = self.assertOK(self.get("only-1", only=["template_id", "repository_info"]))
        self.assertEqual(sorted(t), ["repository_info", "template_id"])
        self.assertEqual((t["template_id"], t["repository_info"]["repository_id"],
                          t["repository_info"]["name"]), ("only-1", self.u1.rid, "Second"))
        self.assertEqual(self.upstream_gets(self.u1), gets, "a cached get asked the upstream")

    def test_deregistered_repository_is_never_served(self):
        seed(self.u1, self.u1.market, [template("again", "Again")])
        self.register(self.u1, "Alpha", cache={"ttl_s": 300})
        self.assertEqual(self.shown("again"), ("Again", "Alpha", "HIT"))
        self.assertOK(self.m.api("repository/deregister", {"repository_id": self.u1.rid},
                                 token=self.system))
        self.assertError(self.get("again"), 404, "ERROR_NOT_FOUND")
        self.assertError(self.get("again", repository_id=self.u1.rid), 404, "ERROR_NOT_FOUND")
        self.assertError(self.get("dup"), 404, "ERROR_NOT_FOUND")
        # the same upstream registered again: its old copies are gone too
        must(self.u1.api(ROUTE + "update", {"template_id": "again", "name": "Again anew"},
                         token=self.u1.market), "update", self.u1)
        self.register(self.u1, "Alpha again", cache={"ttl_s": 300})
        self.assertEqual(self.shown("again"), ("Again anew", "Alpha again", "HIT"),
                         "a copy cached before the deregistration was served")

    def test_template_fetched_on_its_own_counts_with_its_own_age(self):
        # stale_while_revalidate: a get judged by the stale catalog's age
        # would answer STALE; one fetched on its own a moment ago is fresh
        ttl = 4
        self.register(self.u1, "Alpha", cache={"ttl_s": ttl, "stale_while_revalidate": True,
                                               "stale_if_error_s": 600})
        seed(self.u1, self.u1.market, [template("late", "Late")])
        time.sleep(ttl + 0.2)  # the catalog (without "late") is stale now
        gets = self.upstream_gets(self.u1)
        fetched = time.monotonic()
        self.assertEqual(self.shown("late"), ("Late", "Alpha", "MISS"))
        self.assertEqual(self.upstream_gets(self.u1), gets + 1)
        seen = [self.shown("late")[2] for _ in range(3)]
        self.assertEqual(seen, ["HIT"] * 3,
                         "a template fetched on its own a moment ago was judged by the stale "
                         "catalog's age")
        self.assertEqual(self.upstream_gets(self.u1), gets + 1, "the fresh copy was fetched again")
        # its own fetch time outlives a restart (read back at start)
        self.m.restart()
        r = self.get("late")
        self.assertEqual(self.assertOK(r)["name"], "Late")
        if time.monotonic() - fetched < ttl:
            self.assertEqual(r.headers.get("X-Cache"), "HIT")
        # a template only the catalog holds keeps the catalog's age
        self.assertEqual(self.shown("only-1")[2], "STALE")

    def test_new_priority_changes_which_repository_answers(self):
        self.register(self.u1, "Alpha", priority=10, cache={"ttl_s": 300})
        self.register(self.u2, "Bravo", priority=20, cache={"ttl_s": 300})
        self.assertEqual(self.shown("dup"), ("Dup from 1", "Alpha", "HIT"))
        self.assertEqual(self.shown("dup", repository_id=self.u2.rid),
                         ("Dup from 2", "Bravo", "HIT"))
        self.assertOK(self.m.api("repository/update", {"repository_id": self.u1.rid,
                                                       "priority": 30}, token=self.system))
        self.assertEqual(self.shown("dup"), ("Dup from 2", "Bravo", "HIT"),
                         "the get after a priority change still follows the old order")
        self.assertEqual(self.shown("dup", repository_id=self.u1.rid),
                         ("Dup from 1", "Alpha", "HIT"))
        self.assertOK(self.m.api("repository/update", {"repository_id": self.u2.rid,
                                                       "priority": 40}, token=self.system))
        self.assertEqual(self.shown("dup"), ("Dup from 1", "Alpha", "HIT"))


class DashboardOldUpstreamTest(RepodTestCase):
    """An upstream without the dashboard routes (404 ERROR_UNKNOWN_ROUTE):
    an empty dashboard catalog, the repository stays ok, plugins work."""

    def setUp(self):
        self.fake = FakeUpstream(cert_dir(), plugins=[fake_plugin("acme/fake-a"),
                                                      fake_plugin("acme/fake-b")])
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.mirror = Server(start=False, name="dash-old-M")
        self.addCleanup(self.mirror.close)
        self.system = self.mirror.make_token("root", "system")
        self.mirror.start()
        self.rid = must(register_remote(self.mirror, self.system, "Old", self.fake),
                        "register", self.mirror)["repository_id"]

    def test_old_upstream_keeps_plugins_working(self):
        b = self.assertOK(self.mirror.api("repository/sync", {"repository_id": self.rid},
                                          token=self.system))
        self.assertEqual(b, {"repository_id": self.rid, "plugins": 2, "dashboard_templates": 0})
        self.assertGreaterEqual(self.fake.count("/repository/v1/dashboard-template/list"), 1)
        r = self.mirror.api(ROUTE + "list", {"repository_id": self.rid})
        self.assertEqual(self.assertOK(r), {"results": [], "total_count": 0})
        self.assertEqual(r.headers.get("X-Cache"), "HIT")
        self.assertIsNone(r.headers.get("X-Partial"))
        r = self.mirror.api(ROUTE + "list", {})
        self.assertEqual(self.assertOK(r)["total_count"], 0)
        self.assertIsNone(r.headers.get("X-Partial"))
        g = self.assertOK(self.mirror.api("repository/get", {"repository_id": self.rid},
                                          token=self.system))
        self.assertEqual(g["upstream"]["state"], "ok", g)
        self.assertIsNone(g["upstream"]["last_error"], g)
        self.assertEqual(g["upstream"]["cached_dashboard_templates"], 0, g)
        b = self.assertOK(self.mirror.api("plugin/list", {"repository_id": self.rid}))
        self.assertEqual(sorted(p["plugin_id"] for p in b["results"]), ["fake-a", "fake-b"])
        self.assertEqual(self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "fake-a"}))
                         ["plugin_id"], "fake-a")
        self.assertTrue(wait_until(lambda: self.mirror.api(
            "repository/get", {"repository_id": self.rid},
            token=self.system).body["upstream"]["state"] == "ok"))


if __name__ == "__main__":
    unittest.main()

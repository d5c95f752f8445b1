"""Federation: remote repositories, caching and tiers (SPEC 4, 5, 6, 7).

Real repod processes over TLS on 127.0.0.1: an upstream repod U that
publishes a "market" domain, mirrors M* that register U as a remote
repository, a fake upstream (fake_upstream.py) that misbehaves on purpose,
and a three-tier chain A <- B <- C (plus the cycle A <- C).
"""

import json
import threading
import time
import unittest

import harness
from fake_upstream import FakeUpstream, fake_plugin
from harness import (REPOSITORY_ID_RE, TIMESTAMP_RE, RepodTestCase, Server, free_port,
                     list_snapshot, other_cert_dir, plugin_body)

UPSTREAM_STATUS_KEYS = {"state", "last_sync_at", "last_error", "cached_plugins", "skipped_records",
                        "last_skip_reason", "cached_dashboard_templates",
                        "skipped_dashboard_templates"}
UPSTREAM_ERROR_CODES = ("ERROR_UPSTREAM_BAD_RESPONSE", "ERROR_UPSTREAM_UNAVAILABLE",
                        "ERROR_UPSTREAM_TIMEOUT")


# --------------------------------------------------------------------------
# helpers

def ids(body):
    return [p.get("plugin_id") for p in body.get("results", [])]


def names(body):
    return [p.get("name") for p in body.get("results", [])]


def must(resp, what, server):
    """resp must be a 200 (set-up steps); returns the body."""
    if resp.status != 200 or not isinstance(resp.body, dict):
        raise harness.ServerError("%s failed: HTTP %s %r%s" %
                                  (what, resp.status, resp.body, server.describe()))
    return resp.body


def local_repository_id(server):
    """The server's local repository id (anonymous repository list)."""
    b = must(server.api("repository/list", {"repository_type": "local"}), "repository list", server)
    (repo,) = b["results"]
    return repo["repository_id"]


def seed(server, token, plugins):
    """plugins: (image, name[, extra dict]) tuples registered with token."""
    for item in plugins:
        image, name = item[0], item[1]
        extra = item[2] if len(item) > 2 else {}
        must(server.api("plugin/register", plugin_body(image, name=name, **extra), token=token),
             "register %s" % image, server)


def register_remote(mirror, token, name, target, ca_file=True, **extra):
    """repository register of target (a Server or a FakeUpstream) on mirror;
    extra: more body keys (upstream, cache, priority)."""
    body = {"name": name, "repository_type": "remote", "endpoint": target.endpoint}
    up = dict(extra.pop("upstream", {}) or {})
    if ca_file is True:
        up.setdefault("ca_file", mirror.ca_file)
    elif ca_file:
        up.setdefault("ca_file", ca_file)
    if up:
        body["upstream"] = up
    body.update(extra)
    return mirror.api("repository/register", body, token=token)


def wait_until(fn, timeout=5.0, interval=0.1):
    """Calls fn until it returns a truthy value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


def burst(server, n, path, body, token=None):
    """n identical requests released together over n already-handshaken
    keep-alive connections; returns the n responses."""
    conns = [server.connect() for _ in range(n)]
    for c in conns:
        c.connect()
    gate = threading.Barrier(n)
    out = [None] * n

    def go(i):
        try:
            gate.wait(10)
            out[i] = server.request(path, body, token=token, conn=conns[i])
        except Exception as e:  # reported by the caller
            out[i] = e
        finally:
            conns[i].close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def without(doc, *keys):
    return {k: v for k, v in doc.items() if k not in keys}


# --------------------------------------------------------------------------
# 1, 2, 3, 4, 7, 9: an upstream repod U and mirrors of it

class FederationTest(RepodTestCase):
    """U publishes domain "market" (4 plugins) and hides domain
    "private-dom" (1 plugin); M mirrors U with a long ttl and holds 3 local
    plugins of domain d1 whose names interleave with U's."""

    MARKET = [("market/mk-alpha", "Alpha", {"provider": "aws", "labels": ["cloud"]}),
              ("market/mk-bravo", "Bravo", {"provider": "google"}),
              ("market/mk-delta", "Delta", {"provider": "aws"}),
              ("market/mk-golf", "Golf", {"provider": "atlassian"})]
    PRIVATE = [("private/pv-secret", "Secret Private")]
    LOCAL = [("d1/loc-charlie", "Charlie", {"provider": "aws"}),
             ("d1/loc-echo", "Echo"),
             ("d1/loc-hotel", "Hotel")]
    MARKET_IDS = ["mk-alpha", "mk-bravo", "mk-delta", "mk-golf"]
    LOCAL_IDS = ["loc-charlie", "loc-echo", "loc-hotel"]
    REMOTE_NAME = "Market"

    @classmethod
    def setUpClass(cls):
        cls.servers = []
        try:
            cls.up = cls._new(Server(start=False, name="fed-U",
                                     overrides={"auth": {"public_domains": ["market"]}}))
            cls.u_market_admin = cls.up.make_token("market", "admin")
            cls.u_private_admin = cls.up.make_token("private-dom", "admin")
            cls.u_private_viewer = cls.up.make_token("private-dom", "viewer", name="mirror-reader")
            cls.up.start()
            seed(cls.up, cls.u_market_admin, cls.MARKET)
            seed(cls.up, cls.u_private_admin, cls.PRIVATE)
            cls.u_local_id = local_repository_id(cls.up)

            cls.server = cls.mirror = cls._new(Server(start=False, name="fed-M"))
            cls.m_system = cls.mirror.make_token("root", "system")
            cls.m_admin = cls.mirror.make_token("d1", "admin")
            cls.m_viewer = cls.mirror.make_token("d1", "viewer")
            cls.m_admin2 = cls.mirror.make_token("d2", "admin")
            cls.mirror.start()
            seed(cls.mirror, cls.m_admin, cls.LOCAL)
            cls.m_local_id = local_repository_id(cls.mirror)
            cls.register_answer = must(
                register_remote(cls.mirror, cls.m_system, cls.REMOTE_NAME, cls.up,
                                cache={"ttl_s": 300}),
                "repository register", cls.mirror)
            cls.sync_answer = must(cls.mirror.api("repository/sync",
                                                  {"repository_id": cls.u_local_id},
                                                  token=cls.m_system),
                                   "repository sync", cls.mirror)
            # U's own documents of the market plugins, to compare with M's copies
            cls.u_docs = {}
            for pid in cls.MARKET_IDS:
                cls.u_docs[pid] = must(cls.up.api("plugin/get", {"plugin_id": pid}),
                                       "get %s on U" % pid, cls.up)
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
        try:
            for s in (cls.mirror, cls.up):
                if s.running():
                    s.stop()
        finally:
            cls._close_all()

    def new_mirror(self, name, **overrides):
        """A fresh mirror process (closed at the end of the test)."""
        m = Server(start=False, name=name, overrides=overrides or None)
        self.addCleanup(m.close)
        m.system = m.make_token("root", "system")
        m.start()
        return m

    def test_config_remotes_registered_at_start(self):
        remotes = [{"name": "FromConfig", "endpoint": self.up.endpoint, "priority": 5,
                    "upstream": {"ca_file": self.mirror.ca_file}, "cache": {"ttl_s": 60}}]
        m = self.new_mirror("fed-Mc", remotes=remotes)

        def remote_names():
            b = m.api("repository/list", {"repository_type": "remote"}).body
            return sorted(r["name"] for r in b.get("results", []))

        self.assertEqual(wait_until(lambda: remote_names() == ["FromConfig"], 10) and
                         remote_names(), ["FromConfig"], m.describe())
        r = self.assertOK(m.api("repository/get", {"repository_id": self.u_local_id}))
        self.assertEqual((r["name"], r["priority"]), ("FromConfig", 5))
        published = self.assertOK(self.up.api("plugin/list", {}))["total_count"]  # anonymous
        self.assertGreaterEqual(published, len(self.MARKET_IDS))
        b = wait_until(lambda: self.assertOK(m.api("plugin/list", {})).get("total_count") ==
                       published, 10)
        self.assertTrue(b, "the config remote's catalog was not mirrored%s" % m.describe())
        # a restart registers nothing twice
        m.stop()
        m.start()
        time.sleep(0.5)
        self.assertEqual(remote_names(), ["FromConfig"])

    def mlist(self, body=None, token="admin", server=None):
        tok = {"admin": self.m_admin, "viewer": self.m_viewer, "anon": None}.get(token, token)
        return (server or self.mirror).api("plugin/list", body or {}, token=tok)

    def assertRemoteInfo(self, p, name=None, repository_id=None):
        self.assertEqual(p["repository_info"],
                         {"repository_id": repository_id or self.u_local_id,
                          "name": name or self.REMOTE_NAME, "repository_type": "remote",
                          "endpoint": ""},
                         "repository_info of %s" % p.get("plugin_id"))

    def assertLocalInfo(self, p):
        self.assertEqual(p["repository_info"]["repository_id"], self.m_local_id)
        self.assertEqual(p["repository_info"]["repository_type"], "local")

    # -- registration -----------------------------------------------------------

    def test_register_adopts_upstream_id_and_shows_status(self):
        reg = self.register_answer
        self.assertEqual(reg["repository_id"], self.u_local_id,
                         "the mirror must adopt the upstream's local repository_id")
        self.assertRegex(reg["repository_id"], REPOSITORY_ID_RE)
        self.assertNotEqual(reg["repository_id"], self.m_local_id)
        self.assertEqual(reg["name"], self.REMOTE_NAME)
        self.assertEqual(reg["repository_type"], "remote")
        self.assertEqual(reg["endpoint"], self.up.endpoint)
        self.assertIsInstance(reg["priority"], int)
        self.assertGreaterEqual(reg["priority"], 1)
        self.assertRegex(reg.get("created_at", ""), TIMESTAMP_RE)
        self.assertEqual(set(reg["upstream"]), UPSTREAM_STATUS_KEYS, reg)
        self.assertEqual(self.sync_answer, {"repository_id": self.u_local_id,
                                            "plugins": len(self.MARKET), "dashboard_templates": 0})

        for who, tok in (("system", self.m_system), ("viewer", self.m_viewer), ("anonymous", None)):
            with self.subTest(caller=who):
                r = self.mirror.api("repository/get", {"repository_id": self.u_local_id}, token=tok)
                g = self.assertOK(r)
                self.assertEqual(g["repository_id"], self.u_local_id)
                self.assertEqual(g["repository_type"], "remote")
                if who == "anonymous":
                    # names, ids, type, priority and state only (IdleRecoveryTest)
                    self.assertEqual(g["endpoint"], "", g)  # hidden, key kept
                    self.assertEqual(g["upstream"], {"state": "ok"}, g)
                    continue
                self.assertEqual(g["endpoint"], self.up.endpoint)
                st = g["upstream"]
                self.assertEqual(set(st), UPSTREAM_STATUS_KEYS, g)
                self.assertEqual(st["state"], "ok", g)
                self.assertRegex(st["last_sync_at"] or "", TIMESTAMP_RE)
                self.assertIsNone(st["last_error"], g)
                self.assertEqual(st["cached_plugins"], len(self.MARKET), g)
                self.assertNotIn("upstream_config", g)
                if who != "system":
                    # connection settings (server file paths) are for operators only
                    self.assertNotIn("upstream_settings", g)
                    continue
                us = g["upstream_settings"]
                self.assertEqual(us.get("ca_file"), self.mirror.ca_file)
                self.assertIs(us.get("token_set"), False)
                self.assertNotIn("token", us)

        r = self.mirror.api("repository/list", {}, token=self.m_viewer)
        b = self.assertOK(r)
        self.assertEqual([(x["repository_id"], x["repository_type"]) for x in b["results"]],
                         [(self.m_local_id, "local"), (self.u_local_id, "remote")])
        self.assertEqual(b["total_count"], 2)
        r = self.mirror.api("repository/list", {"repository_type": "remote"}, token=self.m_viewer)
        self.assertEqual(ids_of_repos(self.assertOK(r)), [self.u_local_id])

    def test_register_refusals(self):
        before = self.assertOK(self.mirror.api("repository/list", {}, token=self.m_system))
        with self.subTest("same upstream under another name -> 409"):
            r = register_remote(self.mirror, self.m_system, "Market again", self.up)
            self.assertError(r, 409, ("ERROR_SAVE_UNIQUE_VALUES", "ERROR_EXIST_RESOURCE"))
        with self.subTest("same upstream with a token, another name -> 409"):
            r = register_remote(self.mirror, self.m_system, "Market private", self.up,
                                upstream={"token": self.u_private_viewer})
            self.assertError(r, 409, ("ERROR_SAVE_UNIQUE_VALUES", "ERROR_EXIST_RESOURCE"))
            self.assertNotIn(self.u_private_viewer, json.dumps(r.body))
        with self.subTest("unreachable upstream -> 503, nothing stored"):
            port = free_port()
            r = self.mirror.api("repository/register",
                                {"name": "Nowhere", "repository_type": "remote",
                                 "endpoint": "https://127.0.0.1:%d" % port,
                                 "upstream": {"ca_file": self.mirror.ca_file},
                                 "cache": {"timeout_ms": 1000}}, token=self.m_system)
            self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
        with self.subTest("not a system token -> 403"):
            r = register_remote(self.mirror, self.m_admin, "By admin", self.up)
            self.assertError(r, 403, "ERROR_PERMISSION_DENIED")
        with self.subTest("anonymous -> 401"):
            r = register_remote(self.mirror, None, "By nobody", self.up)
            self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        after = self.assertOK(self.mirror.api("repository/list", {}, token=self.m_system))
        self.assertEqual(after, before, "a refused register changed the repository list")

    # -- reads: list, paging, narrowing, anonymous --------------------------------

    def test_list_merges_local_first_then_remote(self):
        r = self.mlist()
        b = self.assertOK(r)
        self.assertEqual(ids(b), self.LOCAL_IDS + self.MARKET_IDS,
                         "default order: local repository first (by name), then the remote")
        self.assertEqual(b["total_count"], 7)
        self.assertEqual(r.headers.get("X-Cache"), "HIT", "fresh catalog -> X-Cache: HIT")
        for p in b["results"]:
            self.assertPluginInfo(p)
            if p["plugin_id"].startswith("loc-"):
                self.assertLocalInfo(p)
                self.assertEqual(p["domain_id"], "d1")
            else:
                self.assertRemoteInfo(p)
                self.assertEqual(without(p, "repository_info"),
                                 without(self.u_docs[p["plugin_id"]], "repository_info"),
                                 "the mirrored copy differs from U's plugin")
        self.assertNotIn("pv-secret", ids(b), "U's private-domain plugin leaked to the mirror")

    def test_list_sort_by_name_is_global(self):
        b = self.assertOK(self.mlist({"query": {"sort": {"key": "name"}}}))
        self.assertEqual(names(b), ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Golf", "Hotel"])
        self.assertEqual(b["total_count"], 7)
        b = self.assertOK(self.mlist({"query": {"sort": {"key": "name", "desc": True}}}))
        self.assertEqual(names(b), ["Hotel", "Golf", "Echo", "Delta", "Charlie", "Bravo", "Alpha"])

    def test_paging_across_both_tiers(self):
        cases = [
            ({"page": {"start": 3, "limit": 3}}, ["loc-hotel", "mk-alpha", "mk-bravo"]),
            ({"page": {"start": 1, "limit": 2}}, ["loc-charlie", "loc-echo"]),
            ({"page": {"start": 6, "limit": 5}}, ["mk-delta", "mk-golf"]),
            ({"page": {"start": 8, "limit": 5}}, []),
            ({"page": {"start": 2, "limit": 4}, "sort": {"key": "name"}},
             ["mk-bravo", "loc-charlie", "mk-delta", "loc-echo"]),
            ({"page": {"start": 1, "limit": 0}, "sort": {"key": "name"}},
             ["mk-alpha", "mk-bravo", "loc-charlie", "mk-delta", "loc-echo", "mk-golf",
              "loc-hotel"]),
        ]
        for query, expect in cases:
            with self.subTest(query=query):
                b = self.assertOK(self.mlist({"query": query}))
                self.assertEqual(ids(b), expect)
                self.assertEqual(b["total_count"], 7, "total_count counts before paging")
        # the pages of a sorted walk cover the merged set exactly once
        seen = []
        for start in (1, 3, 5, 7):
            b = self.assertOK(self.mlist({"query": {"sort": {"key": "name"},
                                                    "page": {"start": start, "limit": 2}}}))
            seen += ids(b)
        self.assertEqual(sorted(seen), sorted(self.LOCAL_IDS + self.MARKET_IDS))
        self.assertEqual(len(seen), 7)

    def test_filters_apply_to_merged_set(self):
        b = self.assertOK(self.mlist({"provider": "aws"}))
        self.assertEqual(ids(b), ["loc-charlie", "mk-alpha", "mk-delta"])
        self.assertEqual(b["total_count"], 3)
        b = self.assertOK(self.mlist({"query": {"filter": [
            {"k": "repository_info.repository_type", "v": "remote", "o": "eq"}]}}))
        self.assertEqual(ids(b), self.MARKET_IDS)
        b = self.assertOK(self.mlist({"query": {"keyword": "cloud"}}))
        self.assertEqual(ids(b), ["mk-alpha"])
        b = self.assertOK(self.mlist({"query": {"count_only": True,
                                                "filter": [{"k": "provider", "v": "aws", "o": "eq"}]}}))
        self.assertEqual(b["results"], [])
        self.assertEqual(b["total_count"], 3)

    def test_stat_over_merged_set(self):
        r = self.mirror.api("plugin/stat", {"query": {"distinct": "plugin_id"}}, token=self.m_admin)
        b = self.assertOK(r)
        self.assertEqual(b["results"], sorted(self.LOCAL_IDS + self.MARKET_IDS))
        r = self.mirror.api("plugin/stat", {"query": {"aggregate": [
            {"group": {"keys": [{"key": "repository_info.repository_type", "name": "type"}],
                       "fields": [{"name": "n", "operator": "count"}]}},
            {"sort": {"key": "type"}}]}}, token=self.m_admin)
        b = self.assertOK(r)
        self.assertEqual(b["results"], [{"type": "local", "n": 3}, {"type": "remote", "n": 4}])
        r = self.mirror.api("plugin/stat", {"query": {"distinct": "plugin_id"},
                                            "repository_id": self.u_local_id}, token=self.m_admin)
        self.assertEqual(self.assertOK(r)["results"], self.MARKET_IDS)

    def test_repository_id_narrows_to_one_tier(self):
        r = self.mlist({"repository_id": self.u_local_id})
        b = self.assertOK(r)
        self.assertEqual(ids(b), self.MARKET_IDS)
        self.assertEqual(b["total_count"], 4)
        for p in b["results"]:
            self.assertRemoteInfo(p)
        b = self.assertOK(self.mlist({"repository_id": self.m_local_id}))
        self.assertEqual(ids(b), self.LOCAL_IDS)
        self.assertEqual(b["total_count"], 3)
        b = self.assertOK(self.mlist({"repository_id": self.u_local_id,
                                      "query": {"sort": {"key": "name", "desc": True},
                                                "page": {"start": 1, "limit": 1}}}))
        self.assertEqual(ids(b), ["mk-golf"])
        self.assertEqual(b["total_count"], 4)

    def test_anonymous_and_other_domains_see_remote_plugins(self):
        for who, tok in (("anonymous", None), ("d2 admin", self.m_admin2)):
            with self.subTest(caller=who):
                r = self.mirror.api("plugin/list", {}, token=tok)
                b = self.assertOK(r)
                got = [i for i in ids(b) if not i.startswith("d2-")]
                self.assertEqual(got, self.MARKET_IDS,
                                 "remote plugins are visible to every caller, d1's local ones are not")
                r = self.mirror.api("plugin/get", {"plugin_id": "mk-bravo"}, token=tok)
                p = self.assertPluginInfo(self.assertOK(r))
                self.assertRemoteInfo(p)
                r = self.mirror.api("plugin/get", {"plugin_id": "loc-echo"}, token=tok)
                self.assertError(r, 404, "ERROR_NO_PLUGIN")

    def test_private_upstream_plugin_is_not_mirrored(self):
        # sanity: U itself hides it from anonymous callers
        self.assertError(self.up.api("plugin/get", {"plugin_id": "pv-secret"}), 404)
        for tok in (None, self.m_admin, self.m_system):
            r = self.mirror.api("plugin/get", {"plugin_id": "pv-secret"}, token=tok)
            self.assertError(r, 404, "ERROR_NO_PLUGIN")
            r = self.mirror.api("plugin/list", {"plugin_id": "pv-secret"}, token=tok)
            b = self.assertOK(r)
            self.assertEqual((b["results"], b["total_count"]), ([], 0))

    def test_get_remote_plugin(self):
        lst = self.assertOK(self.mlist({"repository_id": self.u_local_id}))
        by_id = {p["plugin_id"]: p for p in lst["results"]}
        for pid in self.MARKET_IDS:
            with self.subTest(plugin_id=pid):
                r = self.mirror.api("plugin/get", {"plugin_id": pid}, token=self.m_viewer)
                p = self.assertPluginInfo(self.assertOK(r))
                self.assertEqual(r.headers.get("X-Cache"), "HIT")
                self.assertRemoteInfo(p)
                self.assertEqual(p, by_id[pid], "get and list disagree")
                r = self.mirror.api("plugin/get", {"plugin_id": pid,
                                                   "repository_id": self.u_local_id},
                                    token=self.m_viewer)
                self.assertEqual(self.assertOK(r), p)
        r = self.mirror.api("plugin/get", {"plugin_id": "mk-alpha",
                                           "repository_id": self.m_local_id}, token=self.m_viewer)
        self.assertError(r, 404, "ERROR_NO_PLUGIN")
        r = self.mirror.api("plugin/get", {"plugin_id": "loc-echo",
                                           "repository_id": self.u_local_id}, token=self.m_viewer)
        self.assertError(r, 404, "ERROR_NO_PLUGIN")
        # a fresh catalog is authoritative: an unknown id is 404 without asking U
        before = self.up.access_count("plugin/get")
        r = self.mirror.api("plugin/get", {"plugin_id": "no-such-plugin"}, token=self.m_viewer)
        self.assertError(r, 404, "ERROR_NO_PLUGIN")
        time.sleep(0.2)
        self.assertEqual(self.up.access_count("plugin/get"), before)

    def test_local_plugin_shadows_remote_one(self):
        # d2 registers its own mk-golf: d2 sees it first, d1 still the remote one
        r = self.mirror.api("plugin/register", plugin_body("d2/mk-golf", name="D2 Golf"),
                            token=self.m_admin2)
        self.assertOK(r)
        self.addCleanup(self.mirror.api, "plugin/deregister", {"plugin_id": "mk-golf"},
                        token=self.m_admin2)
        p = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "mk-golf"}, token=self.m_admin2))
        self.assertEqual(p["name"], "D2 Golf")
        self.assertEqual(p["repository_info"]["repository_type"], "local")
        p = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "mk-golf",
                                                         "repository_id": self.u_local_id},
                                          token=self.m_admin2))
        self.assertEqual(p["name"], "Golf")
        self.assertRemoteInfo(p)
        p = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "mk-golf"}, token=self.m_admin))
        self.assertEqual(p["name"], "Golf")
        # d2's own copy is its to change; the remote one stays as it was
        r = self.mirror.api("plugin/update", {"plugin_id": "mk-golf", "name": "D2 Golf 2"},
                            token=self.m_admin2)
        self.assertEqual(self.assertOK(r)["name"], "D2 Golf 2")
        self.assertEqual(self.u_docs["mk-golf"]["name"], "Golf")
        self.assertOK(self.mirror.api("plugin/deregister", {"plugin_id": "mk-golf"},
                                      token=self.m_admin2))
        p = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "mk-golf"}, token=self.m_admin2))
        self.assertRemoteInfo(p)

    # -- 7: writes to a remote plugin ----------------------------------------------

    def test_writes_to_remote_plugin_are_refused(self):
        before_m = list_snapshot(self.mirror, self.m_admin)
        before_u = must(self.up.api("plugin/get", {"plugin_id": "mk-bravo"}), "get on U", self.up)
        writes = [("update", {"plugin_id": "mk-bravo", "name": "Hijacked", "labels": ["x"]}),
                  ("enable", {"plugin_id": "mk-bravo"}),
                  ("disable", {"plugin_id": "mk-bravo"}),
                  ("deregister", {"plugin_id": "mk-bravo"})]
        for who, tok in (("d1 admin", self.m_admin), ("system", self.m_system)):
            for verb, body in writes:
                with self.subTest(caller=who, verb=verb):
                    r = self.mirror.api("plugin/" + verb, body, token=tok)
                    d = self.assertError(r, 409, "ERROR_NOT_LOCAL_PLUGIN")
                    self.assertTrue(self.REMOTE_NAME in d["message"] or
                                    self.u_local_id in d["message"],
                                    "the message must name the remote repository: %r" % d)
                    self.assertIn("mk-bravo", d["message"])
        # an unknown id is still a plain 404
        r = self.mirror.api("plugin/update", {"plugin_id": "nowhere", "name": "x"}, token=self.m_admin)
        self.assertError(r, 404, "ERROR_NOT_FOUND")
        self.assertEqual(list_snapshot(self.mirror, self.m_admin), before_m)
        self.assertEqual(must(self.up.api("plugin/get", {"plugin_id": "mk-bravo"}), "get on U",
                              self.up), before_u)
        p = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "mk-bravo"}, token=self.m_admin))
        self.assertEqual(p["name"], "Bravo")
        self.assertEqual(p["state"], "ENABLED")

    # -- 2: a mirror with an upstream token -------------------------------------------

    def test_upstream_token_sees_that_tokens_plugins(self):
        m2 = self.new_mirror("fed-M2")
        secret = self.u_private_viewer
        r = register_remote(m2, m2.system, "Market (private)", self.up, upstream={"token": secret})
        reg = self.assertOK(r)
        self.assertEqual(reg["repository_id"], self.u_local_id)
        self.assertIs(reg["upstream_settings"].get("token_set"), True)
        self.assertNotIn(secret, json.dumps(reg), "the upstream token was echoed")

        # the background sync fills the catalog without an explicit sync
        def synced():
            g = m2.api("repository/get", {"repository_id": self.u_local_id}, token=m2.system)
            return g.status == 200 and (g.body["upstream"]["cached_plugins"] or 0) > 0 and g.body
        g = wait_until(synced, 5.0)
        self.assertTrue(g, "the catalog was not synced in the background%s" % m2.describe())
        self.assertNotIn(secret, json.dumps(g))
        self.assertIs(g["upstream_settings"]["token_set"], True)

        # what U shows that token, M2 shows everybody
        expect = must(self.up.api("plugin/list", {"repository_id": self.u_local_id},
                                  token=secret), "list on U", self.up)
        self.assertIn("pv-secret", ids(expect))
        self.assertEqual(g["upstream"]["cached_plugins"], expect["total_count"])
        for tok in (None, m2.system):
            b = self.assertOK(m2.api("plugin/list", {"repository_id": self.u_local_id}, token=tok))
            self.assertEqual(sorted(ids(b)), sorted(ids(expect)))
        p = self.assertOK(m2.api("plugin/get", {"plugin_id": "pv-secret"}))
        self.assertRemoteInfo(p, name="Market (private)")
        self.assertEqual(p["domain_id"], "private-dom")
        r = m2.api("repository/list", {}, token=m2.system)
        self.assertNotIn(secret, json.dumps(self.assertOK(r)))
        # the same upstream a second time on this mirror is a duplicate
        r = register_remote(m2, m2.system, "Market (public)", self.up)
        self.assertError(r, 409, ("ERROR_SAVE_UNIQUE_VALUES", "ERROR_EXIST_RESOURCE"))
        # the token is sent upstream but never logged, by either side
        self.assertNotIn(secret, m2.log())
        # (U's own make_token printed it on stdout, not into its server log)
        self.assertNotIn(secret, self.up.log())

    # -- 3: coalesced cold gets against a real upstream --------------------------------

    def test_concurrent_cold_gets_send_one_upstream_request(self):
        m3 = self.new_mirror("fed-M3")
        self.assertOK(register_remote(m3, m3.system, "Market", self.up,
                                      cache={"ttl_s": 1, "stale_while_revalidate": False}))
        self.assertOK(m3.api("repository/sync", {"repository_id": self.u_local_id},
                             token=m3.system))
        # a plugin that is not in M3's catalog; the catalog goes stale, so
        # it is no longer authoritative and a get has to ask U
        must(self.up.api("plugin/register", plugin_body("market/late-coal", name="Late Coal"),
                         token=self.u_market_admin), "register on U", self.up)
        time.sleep(1.3)
        u_before = self.up.access_count("plugin/get")
        sent_before = m3.metric("repod_upstream_requests_total")
        out = burst(m3, 50, "plugin/get", {"plugin_id": "late-coal"})
        errors = [x for x in out if not isinstance(x, harness.Response)]
        self.assertEqual(errors, [], "requests failed")
        self.assertEqual(sorted(set(x.status for x in out)), [200], [x.body for x in out][:3])
        docs = set(json.dumps(x.body, sort_keys=True) for x in out)
        self.assertEqual(len(docs), 1, "the 50 answers differ")
        p = out[0].body
        self.assertEqual(p["name"], "Late Coal")
        self.assertRemoteInfo(p)
        # the one that asked upstream (and those that waited on it) are MISS;
        # any that arrived after the answer was cached are HIT
        caches = [x.headers.get("X-Cache") for x in out]
        self.assertIn("MISS", caches)
        self.assertLessEqual(set(caches), {"MISS", "HIT"})
        time.sleep(0.3)  # U's access line follows its answer
        self.assertEqual(self.up.access_count("plugin/get") - u_before, 1,
                         "50 concurrent identical misses must cause exactly one upstream "
                         "plugin/get%s" % self.up.describe())
        self.assertEqual(m3.metric("repod_upstream_requests_total") - sent_before, 1)
        answered = sum(m3.metric('repod_cache_answers_total{result="%s"}' % k)
                       for k in ("HIT", "MISS"))
        self.assertGreaterEqual(answered, 50, "cache answers counted in /metrics")

    # -- 4: a change upstream reaches the mirror after the ttl ---------------------------

    def test_upstream_changes_show_after_ttl(self):
        must(self.up.api("plugin/register", plugin_body("market/ttl-a", name="TTL A"),
                         token=self.u_market_admin), "register on U", self.up)
        must(self.up.api("plugin/register", plugin_body("market/ttl-gone", name="TTL Gone"),
                         token=self.u_market_admin), "register on U", self.up)
        m4 = self.new_mirror("fed-M4")
        self.assertOK(register_remote(m4, m4.system, "Market", self.up,
                                      cache={"ttl_s": 1, "stale_while_revalidate": True}))
        self.assertOK(m4.api("repository/sync", {"repository_id": self.u_local_id},
                             token=m4.system))
        body = {"repository_id": self.u_local_id}
        b = self.assertOK(m4.api("plugin/list", body))
        self.assertIn("ttl-a", ids(b))
        self.assertIn("ttl-gone", ids(b))
        self.assertNotIn("ttl-b", ids(b))

        # change U: a new plugin, a renamed one, a removed one
        must(self.up.api("plugin/register", plugin_body("market/ttl-b", name="TTL B"),
                         token=self.u_market_admin), "register on U", self.up)
        must(self.up.api("plugin/update", {"plugin_id": "ttl-a", "name": "TTL A v2"},
                         token=self.u_market_admin), "update on U", self.up)
        must(self.up.api("plugin/deregister", {"plugin_id": "ttl-gone"},
                         token=self.u_market_admin), "deregister on U", self.up)
        time.sleep(1.2)
        # stale_while_revalidate: the first read after the ttl is the stale copy, at once
        r, took = timed(m4.api, "plugin/list", body)
        b = self.assertOK(r)
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        self.assertIn("ttl-gone", ids(b), "a STALE answer is the previous catalog")
        self.assertLess(took, 1.0)

        seen = []

        def updated():
            r = m4.api("plugin/list", body)
            seen.append((r.status, r.headers.get("X-Cache")))
            if r.status != 200:
                return None
            by_id = {p["plugin_id"]: p for p in r.body["results"]}
            ok = ("ttl-b" in by_id and "ttl-gone" not in by_id and
                  by_id.get("ttl-a", {}).get("name") == "TTL A v2")
            return ok and r
        r = wait_until(updated, 5.0, 0.2)
        self.assertTrue(r, "U's changes did not reach the mirror within 5 s: %r%s" % (seen, m4.describe()))
        self.assertIn(r.headers.get("X-Cache"), ("HIT", "STALE", "MISS"))
        p = self.assertOK(m4.api("plugin/get", {"plugin_id": "ttl-a"}))
        self.assertEqual(p["name"], "TTL A v2")
        self.assertRemoteInfo(p)
        # a removed plugin: gone from the catalog, so not found once it is fresh again
        wait_until(lambda: m4.api("plugin/get", {"plugin_id": "ttl-gone"}).status == 404, 3.0, 0.2)
        self.assertError(m4.api("plugin/get", {"plugin_id": "ttl-gone"}), 404, "ERROR_NO_PLUGIN")

    # -- 9: sync and deregister ------------------------------------------------------------

    def test_sync_counts_and_deregister_drops_cache(self):
        m9 = self.new_mirror("fed-M9")
        viewer = m9.make_token("d9", "viewer")
        reg = self.assertOK(register_remote(m9, m9.system, "Market", self.up))
        rid = reg["repository_id"]
        expect = must(self.up.api("plugin/list", {"repository_id": self.u_local_id}),
                      "list on U", self.up)
        # let the background sync that follows a register finish first (a
        # sync during it would rightly share its upstream request)
        self.assertTrue(wait_until(lambda: m9.api("repository/get", {"repository_id": rid},
                                                  token=viewer).body["upstream"]["last_sync_at"]),
                        "no background sync after register%s" % m9.describe())
        # (and the dashboard templates' sync queued with it)
        def settled():
            before = m9.metric("repod_upstream_requests_total")
            time.sleep(0.3)
            return before == m9.metric("repod_upstream_requests_total")
        self.assertTrue(wait_until(settled))
        sent = m9.metric("repod_upstream_requests_total")
        self.assertIsNotNone(sent, "/metrics has no repod_upstream_requests_total")
        r = m9.api("repository/sync", {"repository_id": rid}, token=m9.system)
        self.assertEqual(self.assertOK(r), {"repository_id": rid, "plugins": expect["total_count"],
                                            "dashboard_templates": 0})
        self.assertEqual(m9.metric("repod_upstream_requests_total") - sent, 2,
                         "one sync = one upstream request per resource")
        g = self.assertOK(m9.api("repository/get", {"repository_id": rid}, token=viewer))
        self.assertEqual(g["upstream"]["cached_plugins"], expect["total_count"])
        b = self.assertOK(m9.api("plugin/list", {}, token=viewer))
        self.assertEqual(sorted(ids(b)), sorted(ids(expect)))

        with self.subTest("sync needs a system token and a remote repository"):
            self.assertError(m9.api("repository/sync", {"repository_id": rid}, token=viewer), 403)
            r = m9.api("repository/sync", {"repository_id": local_repository_id(m9)}, token=m9.system)
            self.assertError(r, 400)
            r = m9.api("repository/sync", {"repository_id": "repo-000000000000"}, token=m9.system)
            self.assertError(r, 404, "ERROR_NOT_FOUND")

        r = m9.api("repository/deregister", {"repository_id": rid}, token=m9.system)
        self.assertEqual(self.assertOK(r), {})
        b = self.assertOK(m9.api("plugin/list", {}, token=viewer))
        self.assertEqual((ids(b), b["total_count"]), ([], 0), "deregistered remote still listed")
        self.assertError(m9.api("plugin/get", {"plugin_id": "mk-alpha"}, token=viewer), 404,
                         "ERROR_NO_PLUGIN")
        self.assertError(m9.api("repository/get", {"repository_id": rid}, token=viewer), 404,
                         "ERROR_NOT_FOUND")
        b = self.assertOK(m9.api("repository/list", {}, token=viewer))
        self.assertEqual([x["repository_type"] for x in b["results"]], ["local"])
        self.assertError(m9.api("repository/sync", {"repository_id": rid}, token=m9.system), 404)
        self.assertError(m9.api("plugin/update", {"plugin_id": "mk-alpha", "name": "x"},
                                token=m9.make_token("d9", "admin")), 404, "ERROR_NOT_FOUND")
        # registering again starts from an empty cache
        reg = self.assertOK(register_remote(m9, m9.system, "Market again", self.up))
        self.assertEqual(reg["upstream"]["cached_plugins"], 0)
        r = m9.api("repository/sync", {"repository_id": rid}, token=m9.system)
        self.assertEqual(self.assertOK(r)["plugins"], expect["total_count"])
        p = self.assertOK(m9.api("plugin/get", {"plugin_id": "mk-alpha"}, token=viewer))
        self.assertRemoteInfo(p, name="Market again")

    def test_cold_get_result_is_fresh_for_ttl(self):
        # A plugin fetched on its own (not in the catalog, catalog stale) is a
        # cache entry like any other: a second get within ttl_s is a HIT and
        # does not ask U again (SPEC 6 ttl_s; proxy-cache semantics).
        m = self.new_mirror("fed-Mf")
        self.assertOK(register_remote(m, m.system, "Market", self.up,
                                      cache={"ttl_s": 3, "stale_while_revalidate": False}))
        self.assertOK(m.api("repository/sync", {"repository_id": self.u_local_id}, token=m.system))
        must(self.up.api("plugin/register", plugin_body("market/late-fresh", name="Late Fresh"),
                         token=self.u_market_admin), "register on U", self.up)
        time.sleep(3.1)  # the catalog is stale now, so it no longer answers alone
        before = self.up.access_count("plugin/get")
        r = m.api("plugin/get", {"plugin_id": "late-fresh"})
        self.assertEqual(self.assertOK(r)["name"], "Late Fresh")
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        seen = []
        for _ in range(3):
            r = m.api("plugin/get", {"plugin_id": "late-fresh"})
            self.assertOK(r)
            seen.append(r.headers.get("X-Cache"))
        time.sleep(0.2)
        asked = self.up.access_count("plugin/get") - before
        self.assertEqual((asked, seen), (1, ["HIT"] * 3),
                         "a plugin fetched a moment ago (ttl_s 3) was fetched again from U "
                         "on every get: (upstream plugin/get requests, X-Cache of the "
                         "following gets)")

    def test_remote_priority_order(self):
        fake = FakeUpstream(harness.cert_dir(), repository_id="repo-0000000000fe", name="Fake",
                            plugins=[fake_plugin("fake/mk-bravo", name="Fake Bravo"),
                                     fake_plugin("fake/fz-one", name="Zulu Fake")])
        fake.start()
        self.addCleanup(fake.stop)
        m = self.new_mirror("fed-Mp")
        admin = m.make_token("dp", "admin")
        seed(m, admin, [("dp/loc-zz", "ZZ Local")])
        self.assertOK(register_remote(m, m.system, "Market", self.up, priority=50))
        self.assertOK(register_remote(m, m.system, "Fake", fake, priority=10))
        for rid in (self.u_local_id, "repo-0000000000fe"):
            self.assertOK(m.api("repository/sync", {"repository_id": rid}, token=m.system))
        u_ids = ids(must(self.up.api("plugin/list", {"repository_id": self.u_local_id,
                                                     "query": {"sort": {"key": "name"}}}),
                         "list on U", self.up))
        b = self.assertOK(m.api("plugin/list", {}, token=admin))
        self.assertEqual(ids(b), ["loc-zz", "mk-bravo", "fz-one"] + u_ids,
                         "order: local, then remotes by priority, each by name")
        self.assertEqual(b["total_count"], 3 + len(u_ids))
        r = m.api("repository/list", {"repository_type": "remote"}, token=admin)
        self.assertEqual([x["name"] for x in self.assertOK(r)["results"]], ["Fake", "Market"])
        p = self.assertOK(m.api("plugin/get", {"plugin_id": "mk-bravo"}, token=admin))
        self.assertEqual((p["name"], p["repository_info"]["name"]), ("Fake Bravo", "Fake"),
                         "get: the remote with the lower priority number wins")
        p = self.assertOK(m.api("plugin/get", {"plugin_id": "mk-bravo",
                                               "repository_id": self.u_local_id}, token=admin))
        self.assertEqual((p["name"], p["repository_info"]["name"]), ("Bravo", "Market"))
        # a new priority changes the order
        r = m.api("repository/update", {"repository_id": "repo-0000000000fe", "priority": 200},
                  token=m.system)
        self.assertEqual(self.assertOK(r)["priority"], 200)
        b = self.assertOK(m.api("plugin/list", {}, token=admin))
        self.assertEqual(ids(b), ["loc-zz"] + u_ids + ["mk-bravo", "fz-one"])
        p = self.assertOK(m.api("plugin/get", {"plugin_id": "mk-bravo"}, token=admin))
        self.assertEqual((p["name"], p["repository_info"]["name"]), ("Bravo", "Market"))
        # the remote tier's priority never puts it before the local one
        r = m.api("repository/update", {"repository_id": "repo-0000000000fe", "priority": 0},
                  token=m.system)
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="priority")


def ids_of_repos(body):
    return [x.get("repository_id") for x in body.get("results", [])]


# --------------------------------------------------------------------------
# 5: the upstream goes away and comes back

class UpstreamOutageTest(RepodTestCase):

    PLUGINS = [("market/out-a", "Out A"), ("market/out-b", "Out B"), ("market/out-c", "Out C")]
    TIMEOUT_MS = 800

    @classmethod
    def setUpClass(cls):
        cls.up = Server(start=False, name="out-U", overrides={"auth": {"public_domains": ["market"]}})
        cls.server = cls.mirror = Server(start=False, name="out-M")
        try:
            admin = cls.up.make_token("market", "admin")
            cls.up.start()
            cls.up.pin_port()      # restarts keep the endpoint the mirror knows
            seed(cls.up, admin, cls.PLUGINS)
            cls.u_local_id = local_repository_id(cls.up)
            cls.system = cls.mirror.make_token("root", "system")
            cls.mirror.start()
            must(register_remote(cls.mirror, cls.system, "Outage", cls.up,
                                 cache={"ttl_s": 1, "stale_while_revalidate": True,
                                        "stale_if_error_s": 3600, "negative_ttl_s": 1,
                                        "timeout_ms": cls.TIMEOUT_MS}),
                 "register", cls.mirror)
            must(cls.mirror.api("repository/sync", {"repository_id": cls.u_local_id},
                                token=cls.system), "sync", cls.mirror)
        except BaseException:
            cls.mirror.close()
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        cls.up.close()

    def status(self):
        r = self.mirror.api("repository/get", {"repository_id": self.u_local_id}, token=self.system)
        return self.assertOK(r)["upstream"]

    def assertServesCache(self, allowed_cache=("STALE",)):
        r = self.mirror.api("plugin/list", {})
        b = self.assertOK(r)
        self.assertEqual(ids(b), ["out-a", "out-b", "out-c"])
        self.assertIn(r.headers.get("X-Cache"), allowed_cache)
        r = self.mirror.api("plugin/get", {"plugin_id": "out-b"})
        p = self.assertOK(r)
        self.assertEqual(p["name"], "Out B")
        self.assertEqual(p["repository_info"]["repository_id"], self.u_local_id)
        self.assertIn(r.headers.get("X-Cache"), allowed_cache)

    def test_outage_stale_offline_restart_recovery(self):
        limit = self.TIMEOUT_MS / 1000.0 + 2.0
        self.assertServesCache(("HIT",))
        self.up.stop()

        with self.subTest("within the ttl: served from cache"):
            self.assertServesCache(("HIT", "STALE"))
        time.sleep(1.1)
        with self.subTest("after the ttl: STALE"):
            self.assertServesCache(("STALE",))

        with self.subTest("uncached plugin: 503 within timeout_ms"):
            r, took = timed(self.mirror.api, "plugin/get", {"plugin_id": "out-never-seen"})
            self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
            self.assertLess(took, limit)
            r, took = timed(self.mirror.api, "plugin/list", {"repository_id": self.u_local_id})
            self.assertEqual(ids(self.assertOK(r)), ["out-a", "out-b", "out-c"])
            self.assertLess(took, limit)

        with self.subTest("after 3 failures: offline"):
            def offline():
                self.mirror.api("plugin/get", {"plugin_id": "out-never-seen-2"})
                return self.status()["state"] == "offline"
            self.assertTrue(wait_until(offline, 5.0, 0.1), "state: %r%s" %
                            (self.status(), self.mirror.describe()))
            st = self.status()
            self.assertIsInstance(st["last_error"], str)
            self.assertTrue(st["last_error"])
            self.assertEqual(st["cached_plugins"], 3)
            # offline: nobody waits on the upstream
            r, took = timed(self.mirror.api, "plugin/get", {"plugin_id": "out-never-seen-3"})
            self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
            self.assertLess(took, limit)
            self.assertServesCache(("STALE",))

        with self.subTest("no request hangs"):
            out = [None] * 20

            def one(i):
                body = ({"plugin_id": "out-a"} if i % 3 == 0 else
                        {"plugin_id": "out-x%d" % i} if i % 3 == 1 else {})
                out[i] = timed(self.mirror.api, "plugin/get" if body else "plugin/list", body)
            ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            for i, (r, took) in enumerate(out):
                self.assertIn(r.status, (200, 503, 504), r.body)
                self.assertLess(took, limit, "request %d took %.2f s" % (i, took))
                if i % 3 != 1:
                    self.assertEqual(r.status, 200, r.body)

        with self.subTest("mirror restarted while the upstream is down"):
            self.mirror.restart()
            self.assertServesCache(("STALE",))
            r, took = timed(self.mirror.api, "plugin/get", {"plugin_id": "out-never-seen"})
            self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
            self.assertLess(took, limit)

        with self.subTest("upstream back: state returns to ok"):
            self.up.start()
            self.assertEqual(self.up.endpoint, "https://127.0.0.1:%d" % self.up.port)

            # on its own, through the breaker's probes (1 s, 2 s, 4 s ...)
            def recovered():
                self.mirror.api("plugin/list", {})
                self.mirror.api("plugin/get", {"plugin_id": "out-never-seen-4"})
                return self.status()["state"] == "ok"
            ok = wait_until(recovered, 10.0, 0.3)
            self.assertTrue(ok, "not ok 10 s after the upstream came back: %r%s" %
                            (self.status(), self.mirror.describe()))
            r = self.mirror.api("repository/sync", {"repository_id": self.u_local_id},
                                token=self.system)
            self.assertEqual(self.assertOK(r), {"repository_id": self.u_local_id, "plugins": 3, "dashboard_templates": 0})
            st = self.status()
            self.assertEqual(st["state"], "ok")
            self.assertIsNone(st["last_error"])
            self.assertServesCache(("HIT",))


# --------------------------------------------------------------------------
# 5b: an idle mirror recovers on its own; what anonymous callers see

class IdleRecoveryTest(RepodTestCase):
    """The breaker probes on a timer: with no client traffic but polling
    `repository get` (which never calls the upstream), an offline repository
    returns to ok once its upstream is back on the same port."""

    PLUGINS = [("market/idle-a", "Idle A"), ("market/idle-b", "Idle B")]
    ANON_KEYS = {"repository_id", "name", "repository_type", "priority", "created_at",
                 "upstream"}

    @classmethod
    def setUpClass(cls):
        cls.up = Server(start=False, name="idle-U",
                        overrides={"auth": {"public_domains": ["market"]}})
        cls.server = cls.mirror = Server(start=False, name="idle-M")
        try:
            admin = cls.up.make_token("market", "admin")
            cls.up.start()
            cls.up.pin_port()
            seed(cls.up, admin, cls.PLUGINS)
            cls.u_local_id = local_repository_id(cls.up)
            cls.system = cls.mirror.make_token("root", "system")
            cls.viewer = cls.mirror.make_token("d1", "viewer")
            cls.mirror.start()
            must(register_remote(cls.mirror, cls.system, "Idle", cls.up,
                                 cache={"ttl_s": 3600, "timeout_ms": 1000}),
                 "register", cls.mirror)
            must(cls.mirror.api("repository/sync", {"repository_id": cls.u_local_id},
                                token=cls.system), "sync", cls.mirror)
        except BaseException:
            cls.mirror.close()
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        cls.up.close()

    def get(self, token=None):
        return self.mirror.api("repository/get", {"repository_id": self.u_local_id}, token=token)

    def state(self):
        return self.assertOK(self.get(self.system))["upstream"]["state"]

    def assertAnonymousView(self, doc):
        self.assertLessEqual(set(doc), self.ANON_KEYS | {"endpoint"}, doc)
        self.assertEqual(doc["endpoint"], "", "the key stays, the value is hidden")
        self.assertEqual(doc["repository_id"], self.u_local_id)
        self.assertEqual(doc["name"], "Idle")
        self.assertEqual(doc["repository_type"], "remote")
        self.assertIsInstance(doc["priority"], int)
        self.assertEqual(set(doc["upstream"]), {"state"}, doc)
        self.assertNotIn(self.up.endpoint, json.dumps(doc))

    def test_idle_mirror_recovers_and_anonymous_sees_no_endpoint(self):
        with self.subTest("repository get never calls the upstream"):
            self.assertEqual(self.state(), "ok")
            before = self.mirror.metric("repod_upstream_requests_total")
            for _ in range(10):
                self.assertOK(self.get(self.system))
                self.assertOK(self.get())
            self.assertEqual(self.mirror.metric("repod_upstream_requests_total"), before)

        self.up.stop()
        with self.subTest("three failed syncs: offline"):
            for _ in range(3):
                r = self.mirror.api("repository/sync", {"repository_id": self.u_local_id},
                                    token=self.system)
                self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
            self.assertEqual(self.state(), "offline")

        with self.subTest("anonymous view: names, ids, type, priority, state"):
            doc = self.assertOK(self.get())
            self.assertAnonymousView(doc)
            self.assertEqual(doc["upstream"]["state"], "offline")
            listed = self.assertOK(self.mirror.api("repository/list",
                                                   {"repository_type": "remote"}))
            (doc,) = listed["results"]
            self.assertAnonymousView(doc)
            # what it cannot see, it cannot filter on either
            r = self.mirror.api("repository/list",
                                {"query": {"filter": [{"key": "endpoint", "value": self.up.endpoint,
                                                       "operator": "eq"}]}})
            self.assertEqual(ids_of_repos(self.assertOK(r)), [])

        with self.subTest("a token of any role sees endpoint and last_error"):
            for token in (self.viewer, self.system):
                doc = self.assertOK(self.get(token))
                self.assertEqual(doc["endpoint"], self.up.endpoint)
                self.assertIsInstance(doc["upstream"]["last_error"], str)
                self.assertTrue(doc["upstream"]["last_error"])
                self.assertEqual(doc["upstream"]["cached_plugins"], 2)
            self.assertNotIn("upstream_settings", self.assertOK(self.get(self.viewer)))
            self.assertIn("upstream_settings", self.assertOK(self.get(self.system)))

        with self.subTest("upstream back on the same port: ok without client traffic"):
            time.sleep(2.0)  # a few timed probes fail first
            served = self.up.access_count("plugin/list")
            self.up.start()
            self.assertEqual(self.up.endpoint, "https://127.0.0.1:%d" % self.up.port)
            # the back-off is at most 8 s (+ jitter) by now; polling only
            ok = wait_until(lambda: self.state() == "ok", 30.0, 0.25)
            self.assertTrue(ok, "still %r 30 s after the upstream came back%s" %
                            (self.assertOK(self.get(self.system))["upstream"],
                             self.mirror.describe()))
            st = self.assertOK(self.get(self.system))["upstream"]
            self.assertIsNone(st["last_error"])
            # the probe was a catalog sync the upstream answered
            self.assertGreater(self.up.access_count("plugin/list"), served)
            self.assertEqual(self.assertOK(self.get())["upstream"], {"state": "ok"})

        with self.subTest("restarted while offline: probes resume on their own"):
            self.up.stop()
            for _ in range(3):
                self.mirror.api("repository/sync", {"repository_id": self.u_local_id},
                                token=self.system)
            self.assertEqual(self.state(), "offline")
            self.mirror.restart()
            self.assertEqual(self.state(), "offline")
            self.up.start()
            ok = wait_until(lambda: self.state() == "ok", 30.0, 0.25)
            self.assertTrue(ok, "still %r 30 s after the upstream came back%s" %
                            (self.assertOK(self.get(self.system))["upstream"],
                             self.mirror.describe()))

# --------------------------------------------------------------------------
# 6: a misbehaving upstream

class MisbehavingUpstreamTest(RepodTestCase):

    TIMEOUT_MS = 1000
    MAX_BYTES = 4096
    FAKE_ID = "repo-0123456789ab"
    CATALOG = ["fake-a", "fake-b", "fake-c"]

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeUpstream(harness.cert_dir(),
                                plugins=[fake_plugin("fake/" + i) for i in cls.CATALOG])
        cls.fake.start()
        cls.server = cls.mirror = Server(start=False, name="fake-M")
        try:
            cls.system = cls.mirror.make_token("root", "system")
            cls.admin = cls.mirror.make_token("d1", "admin")
            cls.mirror.start()
            seed(cls.mirror, cls.admin, [("d1/loc-one", "Local One")])
            cls.m_local_id = local_repository_id(cls.mirror)
            # ttl 0 and no revalidation: every read asks the upstream first
            cls.register_answer = must(register_remote(
                cls.mirror, cls.system, "Fake", cls.fake,
                cache={"ttl_s": 0, "stale_while_revalidate": False, "stale_if_error_s": 3600,
                       "negative_ttl_s": 0, "timeout_ms": cls.TIMEOUT_MS,
                       "max_response_bytes": cls.MAX_BYTES}), "register fake", cls.mirror)
        except BaseException:
            cls.mirror.close()
            cls.fake.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mirror.close()
        finally:
            cls.fake.stop()

    def reset_good(self):
        self.fake.mode = "good"
        self.fake.get_delay_s = 0.0
        self.fake.set_plugins([fake_plugin("fake/" + i) for i in self.CATALOG])
        r = self.mirror.api("repository/sync", {"repository_id": self.FAKE_ID}, token=self.system)
        self.assertEqual(self.assertOK(r), {"repository_id": self.FAKE_ID, "plugins": 3, "dashboard_templates": 0})
        self.assertEqual(self.state(), "ok")

    def state(self):
        r = self.mirror.api("repository/get", {"repository_id": self.FAKE_ID}, token=self.system)
        return self.assertOK(r)["upstream"]["state"]

    def fake_list(self):
        return self.mirror.api("plugin/list", {"repository_id": self.FAKE_ID})

    def test_good_upstream(self):
        self.assertEqual(self.register_answer["repository_id"], self.FAKE_ID)
        self.reset_good()
        r = self.fake_list()
        b = self.assertOK(r)
        self.assertEqual(ids(b), self.CATALOG)
        self.assertEqual(r.headers.get("X-Cache"), "MISS", "ttl_s 0: every list asks upstream")
        for p in b["results"]:
            self.assertPluginInfo(p)
            self.assertEqual(p["repository_info"], {"repository_id": self.FAKE_ID, "name": "Fake",
                                                    "repository_type": "remote",
                                                    "endpoint": ""})
        r = self.mirror.api("plugin/get", {"plugin_id": "fake-zzz"})
        self.assertError(r, 404, "ERROR_NO_PLUGIN")

    # mode -> (HTTP status, error codes) of a read that needs the upstream
    BAD_MODES = [
        ("garbage", 502, ("ERROR_UPSTREAM_BAD_RESPONSE",)),
        ("wrong_shape", 502, ("ERROR_UPSTREAM_BAD_RESPONSE",)),
        ("oversized", 502, ("ERROR_UPSTREAM_BAD_RESPONSE",)),
        ("error500", (502, 503), ("ERROR_UPSTREAM_BAD_RESPONSE", "ERROR_UPSTREAM_UNAVAILABLE")),
        ("stall", 504, ("ERROR_UPSTREAM_TIMEOUT",)),
    ]

    def test_bad_upstream_keeps_cache_and_answers_clearly(self):
        limit = self.TIMEOUT_MS / 1000.0 + 2.0
        for mode, status, codes in self.BAD_MODES:
            with self.subTest(mode=mode):
                self.reset_good()
                self.fake.mode = mode
                statuses = status if isinstance(status, tuple) else (status,)

                # an uncached plugin; for a stall, other requests meanwhile
                side = {}

                def uncached():
                    side["get"] = timed(self.mirror.api, "plugin/get",
                                        {"plugin_id": "fake-new-" + mode.replace("_", "-")})
                t = threading.Thread(target=uncached)
                t.start()
                if mode == "stall":
                    time.sleep(0.2)
                    r, took = timed(self.mirror.request, "/healthz", method="GET")
                    self.assertEqual(r.status, 200)
                    self.assertLess(took, 0.5, "/healthz waited on a stalled upstream")
                    r, took = timed(self.mirror.api, "plugin/list",
                                    {"repository_id": self.m_local_id}, token=self.admin)
                    self.assertEqual(ids(self.assertOK(r)), ["loc-one"])
                    self.assertLess(took, 0.5, "a local list waited on a stalled upstream")
                    r, took = timed(self.mirror.api, "repository/list", {}, token=self.admin)
                    self.assertOK(r)
                    self.assertLess(took, 0.5)
                t.join(30)
                r, took = side["get"]
                self.assertIn(r.status, statuses, self._ctx(r))
                self.assertError(r, r.status, codes)
                self.assertLess(took, limit, "uncached read took %.2f s" % took)

                # the previous cache is kept and served
                r, took = timed(self.fake_list)
                b = self.assertOK(r)
                self.assertEqual(ids(b), self.CATALOG, "the cached catalog was lost")
                self.assertEqual(r.headers.get("X-Cache"), "STALE")
                self.assertLess(took, limit)
                for p in b["results"]:
                    self.assertIn("image", p)
                r = self.mirror.api("plugin/get", {"plugin_id": "fake-b"})
                self.assertEqual(self.assertOK(r)["image"], "fake/fake-b")
                self.assertEqual(r.headers.get("X-Cache"), "STALE")
                # a merged list still has both tiers
                b = self.assertOK(self.mirror.api("plugin/list", {}, token=self.admin))
                self.assertEqual(ids(b), ["loc-one"] + self.CATALOG)

                # an explicit sync fails clearly and changes nothing
                r, took = timed(self.mirror.api, "repository/sync",
                                {"repository_id": self.FAKE_ID}, token=self.system)
                self.assertIn(r.status, (502, 503, 504), self._ctx(r))
                self.assertError(r, r.status, UPSTREAM_ERROR_CODES)
                self.assertLess(took, limit)
                self.assertEqual(ids(self.assertOK(self.fake_list())), self.CATALOG)

                # after >= 3 failures the repository is offline and nobody waits
                g = self.assertOK(self.mirror.api("repository/get",
                                                  {"repository_id": self.FAKE_ID},
                                                  token=self.system))
                self.assertEqual(g["upstream"]["state"], "offline", g)
                self.assertTrue(g["upstream"]["last_error"], g)
                self.assertEqual(g["upstream"]["cached_plugins"], 3, g)
                n = self.fake.count("plugin/get")
                r, took = timed(self.mirror.api, "plugin/get", {"plugin_id": "fake-other"})
                self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE")
                self.assertLess(took, 0.5, "an offline repository made a request wait")
                self.assertEqual(self.fake.count("plugin/get"), n,
                                 "the upstream was asked while the breaker was open")
                self.assertOK(self.fake_list())
        self.reset_good()

    def test_concurrent_misses_coalesce(self):
        self.reset_good()
        self.fake.set_plugins([fake_plugin("fake/" + i) for i in self.CATALOG + ["fake-slow"]])
        self.fake.get_delay_s = 0.7
        out = burst(self.mirror, 50, "plugin/get", {"plugin_id": "fake-slow"})
        self.fake.get_delay_s = 0.0
        errors = [x for x in out if not isinstance(x, harness.Response)]
        self.assertEqual(errors, [])
        self.assertEqual(set(x.status for x in out), {200}, [x.body for x in out][:3])
        self.assertEqual(set(x.body["plugin_id"] for x in out), {"fake-slow"})
        self.assertEqual(set(x.headers.get("X-Cache") for x in out), {"MISS"})
        self.assertEqual(self.fake.count("plugin/get", "fake-slow"), 1,
                         "50 concurrent misses must share one upstream request")

    def update_cache(self, **cache):
        r = self.mirror.api("repository/update", {"repository_id": self.FAKE_ID, "cache": cache},
                            token=self.system)
        self.assertOK(r)

    def test_negative_answers_are_remembered(self):
        self.reset_good()
        self.update_cache(negative_ttl_s=30)
        self.addCleanup(self.update_cache, negative_ttl_s=0)
        n = self.fake.count("plugin/get", "ghost-neg")
        for _ in range(3):
            self.assertError(self.mirror.api("plugin/get", {"plugin_id": "ghost-neg"}), 404,
                             "ERROR_NO_PLUGIN")
        self.assertEqual(self.fake.count("plugin/get", "ghost-neg") - n, 1,
                         "an upstream 404 must be remembered for negative_ttl_s")
        # without a negative ttl every miss asks again
        self.update_cache(negative_ttl_s=0)
        self.assertError(self.mirror.api("plugin/get", {"plugin_id": "ghost-neg"}), 404)
        self.assertEqual(self.fake.count("plugin/get", "ghost-neg") - n, 2)
        # once the plugin exists upstream and the catalog is synced, it is found
        self.update_cache(negative_ttl_s=30)
        self.assertError(self.mirror.api("plugin/get", {"plugin_id": "ghost-neg"}), 404)
        self.fake.set_plugins([fake_plugin("fake/" + i) for i in self.CATALOG + ["ghost-neg"]])
        r = self.mirror.api("repository/sync", {"repository_id": self.FAKE_ID}, token=self.system)
        self.assertEqual(self.assertOK(r)["plugins"], 4)
        self.assertEqual(self.assertOK(self.mirror.api("plugin/get",
                                                       {"plugin_id": "ghost-neg"}))["plugin_id"],
                         "ghost-neg")
        self.reset_good()

    def test_cache_older_than_stale_if_error_is_not_served(self):
        self.reset_good()
        self.update_cache(stale_if_error_s=0)
        self.addCleanup(self.reset_good)
        self.addCleanup(self.update_cache, stale_if_error_s=3600)
        self.fake.mode = "garbage"
        r = self.fake_list()
        self.assertError(r, 502, "ERROR_UPSTREAM_BAD_RESPONSE")
        r = self.mirror.api("plugin/get", {"plugin_id": "fake-a"})
        self.assertIn(r.status, (502, 503), self._ctx(r))
        self.assertError(r, r.status, ("ERROR_UPSTREAM_BAD_RESPONSE", "ERROR_UPSTREAM_UNAVAILABLE"))
        # a merged list still answers, with what can be served, and names the tier left out
        r = self.mirror.api("plugin/list", {}, token=self.admin)
        self.assertEqual(ids(self.assertOK(r)), ["loc-one"])
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        self.assertEqual(r.headers.get("X-Partial"), self.FAKE_ID)

    def test_upstream_with_certificate_of_another_ca(self):
        before = self.assertOK(self.mirror.api("repository/list", {}, token=self.system))
        other = FakeUpstream(other_cert_dir(), repository_id="repo-0123456789cd", name="Other CA",
                             plugins=[fake_plugin("fake/other-a")])
        other.start()
        self.addCleanup(other.stop)
        for label, up in (("with the test CA as ca_file", {"ca_file": self.mirror.ca_file}),
                          ("with the system trust store", {})):
            with self.subTest(label):
                r = self.mirror.api("repository/register",
                                    {"name": "Other", "repository_type": "remote",
                                     "endpoint": other.endpoint, "upstream": up,
                                     "cache": {"timeout_ms": self.TIMEOUT_MS}}, token=self.system)
                self.assertError(r, 503, "ERROR_UPSTREAM_UNAVAILABLE", contains="TLS")
        self.assertEqual(self.assertOK(self.mirror.api("repository/list", {}, token=self.system)),
                         before, "a refused register stored something")
        self.assertEqual(other.count("repository/list"), 0,
                         "a request was sent over an unverified connection")
        with self.subTest("verify: false (labs) connects and warns"):
            r = self.mirror.api("repository/register",
                                {"name": "Other", "repository_type": "remote",
                                 "endpoint": other.endpoint, "upstream": {"verify": False}},
                                token=self.system)
            b = self.assertOK(r)
            self.assertEqual(b["repository_id"], "repo-0123456789cd")
            self.assertIs(b["upstream_settings"].get("verify"), False)
            self.addCleanup(self.mirror.api, "repository/deregister",
                            {"repository_id": "repo-0123456789cd"}, token=self.system)
            self.assertRegex(self.mirror.log(), r"(?i)warn.*(verif|tls)")


# --------------------------------------------------------------------------
# 8: tiers A <- B <- C, and the cycle A <- C

class ThreeTierTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.servers = {}
        try:
            for tier, plugins in (("a", [("pub-a/a-one", "A One"), ("pub-a/a-two", "A Two")]),
                                  ("b", [("pub-b/b-one", "B One")]),
                                  ("c", [("pub-c/c-one", "C One")])):
                s = Server(start=False, name="tier-" + tier,
                           overrides={"auth": {"public_domains": ["pub-" + tier]}})
                cls.servers[tier] = s
                s.system = s.make_token("root", "system")
                admin = s.make_token("pub-" + tier, "admin")
                s.start()
                seed(s, admin, plugins)
                s.local_id = local_repository_id(s)
            cls.a, cls.b, cls.c = cls.servers["a"], cls.servers["b"], cls.servers["c"]
            cls.server = cls.c
            # ttl 0: every read goes upstream, so a loop would show at once
            cache = {"ttl_s": 0, "stale_while_revalidate": False, "negative_ttl_s": 0,
                     "timeout_ms": 2000}
            must(register_remote(cls.b, cls.b.system, "Tier A", cls.a, cache=cache), "B<-A", cls.b)
            must(register_remote(cls.c, cls.c.system, "Tier B", cls.b, cache=cache), "C<-B", cls.c)
            for mirror, up in ((cls.b, cls.a), (cls.c, cls.b)):
                must(mirror.api("repository/sync", {"repository_id": up.local_id},
                                token=mirror.system), "sync", mirror)
        except BaseException:
            for s in cls.servers.values():
                s.close()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers.values():
            s.close()

    def anon_ids(self, server, **body):
        r, took = timed(server.api, "plugin/list", body)
        self.assertLess(took, 5.0)
        return sorted(ids(self.assertOK(r)))

    def test_1_chain_sees_only_the_next_tier(self):
        self.assertEqual(len({self.a.local_id, self.b.local_id, self.c.local_id}), 3)
        self.assertEqual(self.anon_ids(self.b), ["a-one", "a-two", "b-one"])
        self.assertEqual(self.anon_ids(self.c), ["b-one", "c-one"],
                         "C must see B's local plugins only: B answers for its own local "
                         "repository, never for what it mirrors")
        self.assertEqual(self.anon_ids(self.c, repository_id=self.b.local_id), ["b-one"])
        for tok in (None, self.c.system):
            r = self.c.api("plugin/get", {"plugin_id": "a-one"}, token=tok)
            self.assertError(r, 404, "ERROR_NO_PLUGIN")
        p = self.assertOK(self.c.api("plugin/get", {"plugin_id": "b-one"}))
        self.assertEqual(p["repository_info"], {"repository_id": self.b.local_id, "name": "Tier B",
                                                "repository_type": "remote",
                                                "endpoint": ""})
        # C's list of B's catalog asked B for its local repository only
        r = self.c.api("repository/list", {"repository_id": self.a.local_id})
        self.assertEqual(self.assertOK(r)["results"], [])

    def test_2_cycle_does_not_loop(self):
        cache = {"ttl_s": 0, "stale_while_revalidate": False, "negative_ttl_s": 0,
                 "timeout_ms": 2000}
        r = register_remote(self.a, self.a.system, "Tier C", self.c, cache=cache)
        self.assertEqual(self.assertOK(r)["repository_id"], self.c.local_id)
        r = self.a.api("repository/sync", {"repository_id": self.c.local_id}, token=self.a.system)
        self.assertEqual(self.assertOK(r), {"repository_id": self.c.local_id, "plugins": 1, "dashboard_templates": 0})
        for mirror, up, n in ((self.b, self.a, 2), (self.c, self.b, 1)):
            r = mirror.api("repository/sync", {"repository_id": up.local_id}, token=mirror.system)
            self.assertEqual(self.assertOK(r)["plugins"], n)

        counts = {t: (s.access_count("plugin/list", settle=True), s.access_count("plugin/get"))
                  for t, s in self.servers.items()}
        self.assertEqual(self.anon_ids(self.a), ["a-one", "a-two", "c-one"])
        self.assertEqual(self.anon_ids(self.b), ["a-one", "a-two", "b-one"])
        self.assertEqual(self.anon_ids(self.c), ["b-one", "c-one"])
        for s in self.servers.values():
            r, took = timed(s.api, "plugin/get", {"plugin_id": "ghost"})
            self.assertError(r, 404, "ERROR_NO_PLUGIN")
            self.assertLess(took, 5.0)
            r, took = timed(s.api, "plugin/stat", {"query": {"distinct": "plugin_id"}})
            self.assertOK(r)
            self.assertLess(took, 5.0)
        time.sleep(0.3)
        # at each tier: its own client's list, plus one plugin/list from the
        # one tier that mirrors it for that tier's list and one for its stat;
        # its own client's get, plus one from the tier that mirrors it.  A
        # loop would multiply these.
        after = {t: (s.access_count("plugin/list", settle=True), s.access_count("plugin/get"))
                 for t, s in self.servers.items()}
        for t in "abc":
            with self.subTest(tier=t):
                lists = after[t][0] - counts[t][0]
                gets = after[t][1] - counts[t][1]
                self.assertEqual(lists, 3, "plugin/list requests at %s: %d" % (t, lists))
                self.assertEqual(gets, 2, "plugin/get requests at %s: %d" % (t, gets))
        self.assertTrue(all(s.running() for s in self.servers.values()))


if __name__ == "__main__":
    unittest.main()

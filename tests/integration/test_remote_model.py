"""The remote tier on the read model: a mirror answers lists, stat and get of
mirrored plugins from one in-memory model per remote repository.

Real repod processes over TLS on 127.0.0.1: two upstreams U1 and U2, each
publishing a public domain of generated plugins, and a mirror M holding
local plugins of its own and both upstreams as remote repositories.  A
dedicated upstream / mirror pair covers the cases that stop the upstream or
restart the mirror.
"""

import functools
import json
import random
import time
import unittest

import harness
from harness import RepodTestCase, Server, plugin_body

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
PROVIDERS = ["aws", "google", "azure", "oracle"]
TYPES = ["inventory.Collector", "monitoring.Webhook", "notification.Protocol"]
SORT_KEYS = ["name", "plugin_id", "provider", "resource_type", "created_at", "updated_at"]
MINIMAL = ["plugin_id", "name", "state", "image", "resource_type", "registry_type", "provider"]
PER_TIER = 80


def must(resp, what, server):
    if resp.status != 200 or not isinstance(resp.body, dict):
        raise harness.ServerError("%s failed: HTTP %s %r%s" %
                                  (what, resp.status, resp.body, server.describe()))
    return resp.body


def seed_plugins(server, token, prefix, rnd, n):
    """n generated plugins with few distinct names, so sorts tie across tiers."""
    conn = server.connect()
    try:
        for i in range(n):
            body = plugin_body("%s/%s-%03d" % (prefix, prefix, i),
                               name="%s %s" % (rnd.choice(WORDS), rnd.choice(WORDS)),
                               resource_type=rnd.choice(TYPES), provider=rnd.choice(PROVIDERS),
                               labels=[rnd.choice(WORDS)])
            must(server.request("plugin/register", body, token=token, conn=conn),
                 "register", server)
    finally:
        conn.close()


def local_id(server):
    b = must(server.api("repository/list", {"repository_type": "local"}), "repository list", server)
    return b["results"][0]["repository_id"]


def register_remote(mirror, token, name, up, **extra):
    body = {"name": name, "repository_type": "remote", "endpoint": up.endpoint,
            "upstream": {"ca_file": mirror.ca_file}}
    body.update(extra)
    return must(mirror.api("repository/register", body, token=token), "register remote", mirror)


def random_filters(rnd):
    """The filter part of a random list query (no sort, page or projection)."""
    q = {}
    kind = rnd.randrange(6)
    if kind == 1:
        q["filter"] = [{"k": "provider", "v": rnd.choice(PROVIDERS), "o": "eq"}]
    elif kind == 2:
        q["filter"] = [{"k": "resource_type", "v": rnd.sample(TYPES, 2), "o": "in"}]
    elif kind == 3:
        q["filter"] = [{"k": "name", "v": rnd.choice(WORDS), "o": "contain"}]
    elif kind == 4:
        q["keyword"] = rnd.choice(WORDS)
    elif kind == 5:
        q["filter"] = [{"k": "provider", "v": rnd.choice(PROVIDERS), "o": "not"}]
        q["filter_or"] = [{"k": "name", "v": "^" + rnd.choice(WORDS), "o": "regex"},
                          {"k": "labels", "v": rnd.choice(WORDS), "o": "eq"}]
    return q


def random_sort(rnd):
    keys = rnd.sample(SORT_KEYS, rnd.choice([1, 1, 2]))
    return [{"key": k, "desc": rnd.random() < 0.5} for k in keys]


def sort_like_repod(docs, sort):
    """A stable sort by string values (every sort key here holds a string)."""
    def cmp(a, b):
        for s in sort:
            x, y = a[s["key"]].encode(), b[s["key"]].encode()
            if x != y:
                c = -1 if x < y else 1
                return -c if s.get("desc") else c
        return 0
    return sorted(docs, key=functools.cmp_to_key(cmp))


class RemoteModelTest(RepodTestCase):
    """M holds PER_TIER local plugins of domain d1 and mirrors U1 ("Zulu",
    priority 1) and U2 ("Alpha", priority 2): tier order local, U1, U2."""

    @classmethod
    def setUpClass(cls):
        cls.servers = []
        rnd = random.Random(20240601)
        try:
            cls.ups = []
            for name in ("rm-U1", "rm-U2"):
                up = Server(start=False, name=name, overrides={"auth": {"public_domains": ["pub"]}})
                cls.servers.append(up)
                admin = up.make_token("pub", "admin")
                up.start()
                seed_plugins(up, admin, name.lower().replace("-", ""), rnd, PER_TIER)
                up.admin = admin
                cls.ups.append(up)
            cls.mirror = m = Server(start=False, name="rm-M")
            cls.servers.append(m)
            cls.system = m.make_token("root", "system")
            cls.admin = m.make_token("d1", "admin")
            cls.viewer = m.make_token("d1", "viewer")
            m.start()
            seed_plugins(m, cls.admin, "loc", rnd, PER_TIER)
            cls.m_local = local_id(m)
            cls.u1_id = register_remote(m, cls.system, "Zulu", cls.ups[0], priority=1,
                                        cache={"ttl_s": 600})["repository_id"]
            cls.u2_id = register_remote(m, cls.system, "Alpha", cls.ups[1], priority=2,
                                        cache={"ttl_s": 600})["repository_id"]
            for rid in (cls.u1_id, cls.u2_id):
                must(m.api("repository/sync", {"repository_id": rid}, token=cls.system), "sync", m)
        except BaseException:
            cls._close_all()
            raise

    @classmethod
    def _close_all(cls):
        for s in reversed(cls.servers):
            s.close()

    @classmethod
    def tearDownClass(cls):
        cls._close_all()

    def mlist(self, body):
        return self.assertOK(self.mirror.api("plugin/list", body, token=self.viewer))

    def tier_lists(self, filters, sort):
        """Every tier's whole answer to filters + sort, in tier order, each
        checked against what its upstream computes over the same plugins."""
        tiers = []
        for rid, up in ((self.m_local, None), (self.u1_id, self.ups[0]), (self.u2_id, self.ups[1])):
            q = dict(filters)
            if sort:
                q["sort"] = sort
            got = self.mlist({"repository_id": rid, "query": q})["results"]
            if up is not None:
                theirs = self.assertOK(up.api("plugin/list", {"query": q}))["results"]
                self.assertEqual([p["plugin_id"] for p in got], [p["plugin_id"] for p in theirs],
                                 "the mirror's tier differs from its upstream for %r" % q)
            tiers.append(got)
        return tiers

    def test_merged_lists_equal_the_tiers_merged(self):
        rnd = random.Random(7)
        checked = 0
        for _ in range(40):
            filters = random_filters(rnd)
            sort = random_sort(rnd) if rnd.random() < 0.8 else None
            tiers = self.tier_lists(filters, sort)
            concat = [p for t in tiers for p in t]
            expect = sort_like_repod(concat, sort) if sort else concat
            for _ in range(4):
                q = dict(filters)
                if sort:
                    q["sort"] = sort
                start, limit = rnd.randint(1, 60), rnd.choice([0, 1, 5, 20, 33])
                if rnd.random() < 0.85:
                    q["page"] = {"start": start, "limit": limit}
                else:
                    start, limit = 1, 0
                count_only = rnd.random() < 0.1
                minimal = rnd.random() < 0.15
                if count_only:
                    q["count_only"] = True
                if minimal:
                    q["minimal"] = True
                got = self.mlist({"query": q})
                window = expect[start - 1:(start - 1 + limit) if limit else None]
                if count_only:
                    window = []
                if minimal:
                    window = [{k: p[k] for k in MINIMAL if k in p} for p in window]
                self.assertEqual(got["total_count"], len(concat), q)
                self.assertEqual([p.get("plugin_id") for p in got["results"]],
                                 [p.get("plugin_id") for p in window], q)
                self.assertEqual(got["results"], window, q)
                checked += 1
        self.assertEqual(checked, 160)

    def test_merged_stat_equals_the_tiers_summed(self):
        rnd = random.Random(11)
        for _ in range(8):
            filters = random_filters(rnd)
            key = rnd.choice(["provider", "resource_type", "name"])
            sq = dict(filters)
            sq["aggregate"] = [{"group": {"keys": [{"key": key, "name": "k"}],
                                          "fields": [{"name": "n", "operator": "count"}]}}]
            expect = {}
            for rid in (self.m_local, self.u1_id, self.u2_id):
                b = self.assertOK(self.mirror.api("plugin/stat", {"repository_id": rid,
                                                                  "query": sq}, token=self.viewer))
                for row in b["results"]:
                    expect[row["k"]] = expect.get(row["k"], 0) + row["n"]
            b = self.assertOK(self.mirror.api("plugin/stat", {"query": sq}, token=self.viewer))
            self.assertEqual({row["k"]: row["n"] for row in b["results"]}, expect, sq)

    def test_merged_facets_equal_the_merged_list_grouped(self):
        """The console's facets over every tier (each tier's groups counted
        by its read model and summed) equal the merged list grouped here,
        order of the groups included; a stat the models cannot count (a
        push field) gives the same groups by decoding the matches."""
        rnd = random.Random(23)
        facets = [["provider"], ["resource_type"], ["state"],
                  ["repository_info.repository_id", "repository_info.name",
                   "repository_info.repository_type"]]
        names = ["value", "label", "type"]
        tiers = [self.m_local, self.u1_id, self.u2_id]
        seen_repos = set()
        for _ in range(10):
            filters = random_filters(rnd)
            if rnd.random() < 0.4:
                filters.setdefault("filter", []).append(
                    {"k": "repository_info.repository_id", "v": rnd.choice(tiers), "o": "eq"})
            listed = self.mlist({"query": filters})
            docs = listed["results"]
            self.assertEqual(listed["total_count"], len(docs))
            for keys in facets:
                for push in (False, True):
                    fields = [{"name": "count", "operator": "count"}]
                    if push:
                        fields.append({"name": "ids", "key": "plugin_id", "operator": "push"})
                    sq = dict(filters)
                    sq["aggregate"] = [
                        {"group": {"keys": [{"key": k, "name": n} for k, n in zip(keys, names)],
                                   "fields": fields}},
                        {"sort": {"key": "count", "desc": True}}]
                    groups = {}
                    for d in docs:
                        vals = tuple(functools.reduce(lambda o, part: o[part], k.split("."), d)
                                     for k in keys)
                        row = groups.setdefault(vals, {"count": 0, "ids": []})
                        row["count"] += 1
                        row["ids"].append(d["plugin_id"])
                    expect = []
                    for vals, row in groups.items():
                        e = dict(zip(names, vals))
                        e["count"] = row["count"]
                        if push:
                            e["ids"] = row["ids"]
                        expect.append(e)
                    expect.sort(key=lambda e: -e["count"])  # stable, as repod's sort
                    b = self.assertOK(self.mirror.api("plugin/stat", {"query": sq},
                                                      token=self.viewer))
                    self.assertEqual(b["results"], expect, sq)
                    if len(keys) == 3:
                        seen_repos.update(e["value"] for e in expect)
        self.assertEqual(seen_repos, set(tiers))

    def test_mirrored_get_is_the_listed_view_bytes(self):
        rnd = random.Random(3)
        for rid, up in ((self.u1_id, self.ups[0]), (self.u2_id, self.ups[1])):
            ids = [p["plugin_id"] for p in self.mlist({"repository_id": rid})["results"]]
            for pid in rnd.sample(ids, 5):
                r = self.mirror.api("plugin/get", {"plugin_id": pid}, token=self.viewer)
                self.assertEqual(r.headers.get("X-Cache"), "HIT")
                self.assertEqual(r.headers.get("Content-Type"), "application/json")
                c = self.mirror.connect()
                try:
                    c.request("POST", harness.API_PREFIX + "plugin/get",
                              body=json.dumps({"plugin_id": pid}).encode(),
                              headers={"Authorization": "Bearer " + self.viewer,
                                       "Content-Type": "application/json"})
                    resp = c.getresponse()
                    raw_get = resp.read()
                    self.assertEqual(resp.headers.get("X-Cache"), "HIT")
                    self.assertEqual(int(resp.headers.get("Content-Length")), len(raw_get))
                    c.request("POST", harness.API_PREFIX + "plugin/list",
                              body=json.dumps({"plugin_id": pid, "repository_id": rid}).encode(),
                              headers={"Authorization": "Bearer " + self.viewer,
                                       "Content-Type": "application/json"})
                    raw_list = c.getresponse().read()
                finally:
                    c.close()
                self.assertEqual(raw_list, b'{"results":[' + raw_get + b'],"total_count":1}')
                theirs = self.assertOK(up.api("plugin/get", {"plugin_id": pid}))
                mine = json.loads(raw_get)
                self.assertEqual({k: v for k, v in mine.items() if k != "repository_info"},
                                 {k: v for k, v in theirs.items() if k != "repository_info"})
                self.assertEqual(mine["repository_info"]["repository_id"], rid)
                # a projection still goes through the engine
                r = self.mirror.api("plugin/get", {"plugin_id": pid, "only": ["name"]},
                                    token=self.viewer)
                self.assertEqual(self.assertOK(r), {"name": mine["name"]})

    def test_sync_replaces_the_catalog_for_the_next_read(self):
        up = self.ups[1]
        added = "rmu2-new"
        must(up.api("plugin/register", plugin_body("rmu2/" + added, name="alpha new",
                                                   provider="aws"), token=up.admin),
             "register", up)
        self.addCleanup(up.api, "plugin/deregister", {"plugin_id": added}, token=up.admin)
        gone = self.mlist({"repository_id": self.u2_id, "query": {"page": {"limit": 1}}})
        gone_id = gone["results"][0]["plugin_id"]
        before_total = gone["total_count"]
        self.assertEqual(self.mlist({"plugin_id": added})["total_count"], 0)
        must(up.api("plugin/deregister", {"plugin_id": gone_id}, token=up.admin), "drop", up)
        r = self.mirror.api("repository/sync", {"repository_id": self.u2_id}, token=self.system)
        self.assertEqual(self.assertOK(r)["plugins"], before_total)
        merged = self.mlist({"query": {"filter": [{"k": "plugin_id", "v": [added, gone_id],
                                                   "o": "in"}]}})
        self.assertEqual([p["plugin_id"] for p in merged["results"]], [added])
        self.assertEqual(self.mlist({"repository_id": self.u2_id})["total_count"], before_total)
        self.assertOK(self.mirror.api("plugin/get", {"plugin_id": added}, token=self.viewer))
        self.assertError(self.mirror.api("plugin/get", {"plugin_id": gone_id}, token=self.viewer),
                         404, "ERROR_NO_PLUGIN")
        # put it back for the other tests
        must(up.api("plugin/register", plugin_body("rmu2/" + gone_id, name=gone["results"][0]["name"],
                                                   provider=gone["results"][0]["provider"],
                                                   resource_type=gone["results"][0]["resource_type"],
                                                   labels=gone["results"][0]["labels"]),
                    token=up.admin), "register", up)
        must(up.api("plugin/deregister", {"plugin_id": added}, token=up.admin), "drop", up)
        self.assertOK(self.mirror.api("repository/sync", {"repository_id": self.u2_id},
                                      token=self.system))

    def test_renamed_remote_shows_its_new_name(self):
        def infos():
            b = self.mlist({"repository_id": self.u1_id, "query": {"page": {"limit": 5}}})
            return {p["repository_info"]["name"] for p in b["results"]}
        self.assertEqual(infos(), {"Zulu"})
        self.assertOK(self.mirror.api("repository/update", {"repository_id": self.u1_id,
                                                            "name": "Zulu Renamed"},
                                      token=self.system))
        self.addCleanup(self.mirror.api, "repository/update",
                        {"repository_id": self.u1_id, "name": "Zulu"}, token=self.system)
        self.assertEqual(infos(), {"Zulu Renamed"})
        merged = self.mlist({"query": {"filter": [{"k": "repository_info.repository_id",
                                                   "v": self.u1_id, "o": "eq"}]}})
        self.assertEqual(merged["total_count"], PER_TIER)
        self.assertEqual({p["repository_info"]["name"] for p in merged["results"]},
                         {"Zulu Renamed"})
        pid = merged["results"][0]["plugin_id"]
        got = self.assertOK(self.mirror.api("plugin/get", {"plugin_id": pid}, token=self.viewer))
        self.assertEqual(got["repository_info"]["name"], "Zulu Renamed")


class RemoteModelRestartTest(RepodTestCase):
    """A mirror with a short ttl: a plugin fetched on its own shows in lists,
    and after a restart with the upstream stopped the model still answers."""

    def setUp(self):
        self.up = Server(start=False, name="rmr-U", overrides={"auth": {"public_domains": ["pub"]}})
        self.addCleanup(self.up.close)
        self.up_admin = self.up.make_token("pub", "admin")
        self.up.start()
        seed_plugins(self.up, self.up_admin, "rmr", random.Random(5), 30)
        self.m = Server(start=False, name="rmr-M")
        self.addCleanup(self.m.close)
        self.system = self.m.make_token("root", "system")
        self.viewer = self.m.make_token("d1", "viewer")
        self.m.start()
        self.rid = register_remote(self.m, self.system, "Up", self.up,
                                   cache={"ttl_s": 1, "stale_if_error_s": 3600,
                                          "stale_while_revalidate": False,
                                          "timeout_ms": 2000})["repository_id"]
        self.assertOK(self.m.api("repository/sync", {"repository_id": self.rid},
                                 token=self.system))

    def mlist(self, body=None):
        return self.m.api("plugin/list", body or {}, token=self.viewer)

    def test_single_fetch_shows_in_lists_and_restart_serves_the_model(self):
        solo = "rmr-solo"
        must(self.up.api("plugin/register", plugin_body("rmr/" + solo, name="solo"),
                         token=self.up_admin), "register", self.up)
        time.sleep(1.2)  # the catalog is stale: a get asks the upstream for the plugin
        r = self.m.api("plugin/get", {"plugin_id": solo}, token=self.viewer)
        self.assertEqual(self.assertOK(r)["plugin_id"], solo)
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        self.up.stop()
        # the upstream is down: the list is served stale, with the fetched plugin
        r = self.mlist({"query": {"sort": {"key": "name"}}})
        body = self.assertOK(r)
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        self.assertEqual(body["total_count"], 31)
        self.assertIn(solo, [p["plugin_id"] for p in body["results"]])
        before = body

        self.m.restart()
        self.assertIn("remote: read model of %s holds 31 plugins" % self.rid, self.m.log())
        r = self.mlist({"query": {"sort": {"key": "name"}}})
        self.assertEqual(self.assertOK(r), before)
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        # fetched on its own a moment ago: fresh or stale, but served
        r = self.m.api("plugin/get", {"plugin_id": solo}, token=self.viewer)
        self.assertEqual(self.assertOK(r)["plugin_id"], solo)
        self.assertIn(r.headers.get("X-Cache"), ("HIT", "STALE"))
        other = [p for p in before["results"] if p["plugin_id"] != solo][0]
        r = self.m.api("plugin/get", {"plugin_id": other["plugin_id"]}, token=self.viewer)
        self.assertEqual(self.assertOK(r), other)
        self.assertEqual(r.headers.get("X-Cache"), "STALE")
        r = self.m.api("plugin/stat", {"query": {"aggregate": [{"count": {"name": "n"}}]}},
                       token=self.viewer)
        self.assertEqual(self.assertOK(r)["results"], [{"n": 31}])


if __name__ == "__main__":
    unittest.main()

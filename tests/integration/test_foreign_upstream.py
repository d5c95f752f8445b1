"""test_foreign_upstream.py - a mirror of an upstream that is not repod.

The upstream here is written from the published contract only (PluginInfo,
PluginsInfo, VersionsInfo, RepositoryInfo; Query with page {start, limit},
start 1-based), not from repod's code: records with client-chosen plugin_ids
(not the last segment of image), `docs`, a field the mirror does not know,
and one malformed record.  What is checked (SPEC 6 and 14):

- every valid record is served as received, the malformed one is skipped
  and counted in the repository's `upstream` status;
- catalogs are synced in pages, each within max_response_bytes, so a
  catalog larger than one answer fills completely;
- a page failing mid-sync keeps the old catalog whole;
- a merged read with a tier that cannot answer says so in X-Partial.
"""

import copy
import http.server
import json
import os
import socketserver
import ssl
import threading
import unittest

import harness
from harness import RepodTestCase, Server
from test_federation import ids, must, register_remote, seed, wait_until


class ForeignUpstream:
    """A marketplace behind a gateway: both route styles, paged plugin list.

    fail_page: the page start (1-based) answered 500; stall_page: the page
    start whose answer waits until `release` is set; list_fails: every
    plugin list answers 500; bad_shape: `results` is an object;
    ignore_paging: every plugin list answers the whole catalog."""

    def __init__(self, repository_id, plugins):
        self.repository_id = repository_id
        self.plugins = list(plugins)
        self.fail_page = None
        self.stall_page = None
        self.release = threading.Event()
        self.list_fails = False
        self.bad_shape = False
        self.ignore_paging = False
        self.pages = []  # (start, limit) of every plugin list received
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                                  or b"{}")
                verb = self.path.replace("/repository/v1/", "/repository/", 1)
                with fake.lock:
                    plugins = copy.deepcopy(fake.plugins)
                if verb == "/repository/repository/list":
                    self.send(200, {"results": [fake.repository_info()], "total_count": 1})
                elif verb == "/repository/plugin/list":
                    page = (body.get("query") or {}).get("page") or {}
                    start, limit = int(page.get("start", 1)), int(page.get("limit", 0))
                    with fake.lock:
                        fake.pages.append((start, limit))
                    if fake.stall_page == start:
                        fake.release.wait(60)
                    if fake.list_fails or fake.fail_page == start:
                        self.send(500, {"detail": {"code": "ERROR_INTERNAL",
                                                   "message": "Internal error."}})
                    elif fake.bad_shape:
                        self.send(200, {"results": {"oops": 1}, "total_count": 1})
                    else:
                        chunk = plugins[start - 1:start - 1 + limit]
                        if fake.ignore_paging or not limit:
                            chunk = plugins
                        self.send(200, {"results": chunk, "total_count": len(plugins)})
                elif verb in ("/repository/plugin/get", "/repository/plugin/get-versions"):
                    hit = [p for p in plugins if p.get("plugin_id") == body.get("plugin_id")]
                    if not hit:
                        self.send(404, {"detail": {"code": "ERROR_NOT_FOUND",
                                                   "message": "Not found."}})
                    elif verb.endswith("get"):
                        self.send(200, hit[0])
                    else:
                        vs = ["1.1.0", "1.0.0"]
                        self.send(200, {"version": vs, "results": vs, "total_count": 2})
                else:
                    self.send(404, {"detail": {"code": "ERROR_UNKNOWN_ROUTE", "message": "?"}})

        class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                try:  # the handshake runs in the request's thread
                    with ctx.wrap_socket(request, server_side=True) as tls:
                        Handler(tls, client_address, self)
                except (OSError, ssl.SSLError):
                    pass

        certs = harness.cert_dir()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"))
        self.srv = TLSServer(("127.0.0.1", 0), Handler)
        self.endpoint = "https://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def repository_info(self):
        return {"repository_id": self.repository_id, "name": "Foreign Market",
                "repository_type": "local", "endpoint": "", "priority": 0,
                "created_at": "2024-01-01T00:00:00.000Z"}

    def set_plugins(self, plugins):
        with self.lock:
            self.plugins = list(plugins)
            self.pages = []

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def record(image, plugin_id=None, **extra):
    """A PluginInfo as the published schema describes it."""
    doc = {"plugin_id": plugin_id or image.rsplit("/", 1)[-1], "name": "N " + image,
           "state": "ENABLED", "image": image, "registry_type": "DOCKER_HUB",
           "registry_url": "registry.hub.docker.com", "registry_config": {}, "capability": {},
           "template": {}, "labels": ["x"], "tags": {}, "provider": "cloudforet",
           "resource_type": "inventory.Collector", "domain_id": "domain-abc",
           "repository_info": {"repository_id": "repo-f0f0f0f0f0f0", "name": "Foreign Market",
                               "repository_type": "local"},
           "created_at": "2024-05-06T07:08:09.123Z", "updated_at": "2024-05-06T07:08:09.123Z"}
    doc.update(extra)
    return doc


def catalog(n, prefix="p"):
    return [record("cloudforet/%s-%03d" % (prefix, i)) for i in range(n)]


class ForeignUpstreamTest(RepodTestCase):

    MAX_BYTES = 8192
    PAGE = 10

    @classmethod
    def setUpClass(cls):
        cls.fakes = []
        cls.server = cls.mirror = Server(start=False, name="foreign", overrides={
            "remote_defaults": {"max_response_bytes": cls.MAX_BYTES,
                                "sync_page_size": cls.PAGE}})
        try:
            cls.system = cls.mirror.make_token("root", "system")
            cls.admin = cls.mirror.make_token("d1", "admin")
            cls.mirror.start()
            seed(cls.mirror, cls.admin, [("d1/loc-one", "Local One")])
        except BaseException:
            cls.mirror.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        for f in cls.fakes:
            f.stop()

    def upstream(self, repository_id, plugins, name, **cache):
        fake = ForeignUpstream(repository_id, plugins)
        self.fakes.append(fake)
        extra = {"cache": cache} if cache else {}
        b = must(register_remote(self.mirror, self.system, name, fake, **extra), "register",
                 self.mirror)
        self.assertEqual(b["repository_id"], repository_id)
        # the first sync, queued by the registration, is over before a test counts pages
        ok = wait_until(lambda: self.status(repository_id)["last_sync_at"] is not None, 10)
        self.assertTrue(ok, self.mirror.describe())
        fake.set_plugins(plugins)
        return fake

    def sync(self, repository_id):
        return self.mirror.api("repository/sync", {"repository_id": repository_id},
                               token=self.system)

    def listing(self, repository_id):
        return self.mirror.api("plugin/list", {"repository_id": repository_id,
                                               "query": {"page": {"limit": 1000}}})

    def status(self, repository_id):
        r = self.mirror.api("repository/get", {"repository_id": repository_id},
                            token=self.system)
        return self.assertOK(r)["upstream"]

    def test_client_chosen_ids_docs_and_unknown_fields(self):
        rid = "repo-a1a1a1a1a1a1"
        docs = {"en": {"title": "Jira", "body": "# Jira"}, "ko": {"title": "지라"}}
        good = [
            record("cloudforet/plugin-jira-noti", plugin_id="my-jira", docs=docs,
                   x_vendor_extra={"tier": "gold", "n": [1, 2]}),
            record("cloudforet/plugin-slack-noti", plugin_id="plugin-3c5e9a7b1d2f", docs={}),
            record("cloudforet/plugin-aws-ec2"),
        ]
        bad = record("cloudforet/plugin-broken", name=42)
        self.upstream(rid, good[:2] + [bad] + good[2:], "Foreign")
        r = self.sync(rid)
        self.assertEqual(self.assertOK(r), {"repository_id": rid, "plugins": 3, "dashboard_templates": 0})

        b = self.assertOK(self.listing(rid))
        self.assertEqual(b["total_count"], 3)
        got = {p["plugin_id"]: p for p in b["results"]}
        self.assertEqual(set(got), {"my-jira", "plugin-3c5e9a7b1d2f", "plugin-aws-ec2"})
        self.assertEqual(got["my-jira"]["docs"], docs)
        self.assertEqual(got["my-jira"]["x_vendor_extra"], {"tier": "gold", "n": [1, 2]})
        self.assertEqual(got["my-jira"]["image"], "cloudforet/plugin-jira-noti")
        self.assertEqual(got["my-jira"]["repository_info"]["repository_id"], rid)

        r = self.mirror.api("plugin/list", {"repository_id": rid, "plugin_id": "my-jira", "query": {
            "only": ["plugin_id", "docs", "x_vendor_extra"]}})
        (p,) = self.assertOK(r)["results"]
        self.assertEqual(p, {"plugin_id": "my-jira", "docs": docs,
                             "x_vendor_extra": {"tier": "gold", "n": [1, 2]}})
        r = self.mirror.api("plugin/get", {"plugin_id": "my-jira"})
        p = self.assertOK(r)
        self.assertEqual((p["docs"], p["x_vendor_extra"]["tier"]), (docs, "gold"))
        r = self.mirror.api("plugin/get-versions", {"plugin_id": "my-jira"})
        self.assertEqual(self.assertOK(r)["results"], ["1.1.0", "1.0.0"])
        # the merged list holds both tiers
        r = self.mirror.api("plugin/list", {}, token=self.admin)
        self.assertIn("my-jira", ids(self.assertOK(r)))
        self.assertIn("loc-one", ids(r.body))
        self.assertEqual(r.headers.get("X-Cache"), "HIT")
        self.assertIsNone(r.headers.get("X-Partial"), "every tier answered")

        st = self.status(rid)
        self.assertEqual(st["state"], "ok", st)
        self.assertEqual(st["cached_plugins"], 3, st)
        self.assertEqual(st["skipped_records"], 1, st)
        self.assertIn("name", st["last_skip_reason"] or "", st)
        self.assertIn("plugin-broken", st["last_skip_reason"] or "", st)
        self.assertIn("skipped 1 invalid record of 4", self.mirror.log())

        # an answer of the wrong shape is refused whole: the cache stays
        self.fakes[-1].bad_shape = True
        r = self.sync(rid)
        self.assertError(r, 502, "ERROR_UPSTREAM_BAD_RESPONSE")
        self.assertEqual(self.assertOK(self.listing(rid))["total_count"], 3)
        self.fakes[-1].bad_shape = False
        self.assertOK(self.sync(rid))

    def test_paged_sync_fills_past_max_response_bytes(self):
        rid = "repo-b2b2b2b2b2b2"
        plugins = catalog(95)
        whole = json.dumps({"results": plugins, "total_count": len(plugins)})
        self.assertGreater(len(whole), 4 * self.MAX_BYTES, "one answer must not fit")
        fake = self.upstream(rid, plugins, "Paged")
        r = self.sync(rid)
        self.assertEqual(self.assertOK(r), {"repository_id": rid, "plugins": 95, "dashboard_templates": 0})
        self.assertEqual(fake.pages, [(s, self.PAGE) for s in range(1, 96, self.PAGE)])
        b = self.assertOK(self.listing(rid))
        self.assertEqual(b["total_count"], 95)
        self.assertEqual(sorted(ids(b)), sorted(p["plugin_id"] for p in plugins))
        self.assertEqual(self.status(rid)["skipped_records"], 0)
        # a per-repository page size
        r = self.mirror.api("repository/update", {"repository_id": rid,
                                                  "cache": {"sync_page_size": 7}},
                            token=self.system)
        self.assertOK(r)
        fake.set_plugins(plugins[:20])
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 20)
        self.assertEqual(fake.pages, [(1, 7), (8, 7), (15, 7)])
        self.assertEqual(self.assertOK(self.listing(rid))["total_count"], 20)
        # an upstream that does not page: its one answer is the catalog
        fake.ignore_paging = True
        fake.set_plugins(plugins[:12])
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 12)
        self.assertEqual(fake.pages, [(1, 7)])

    def test_page_failing_mid_sync_keeps_old_catalog(self):
        rid = "repo-c3c3c3c3c3c3"
        old = catalog(25, "old")
        fake = self.upstream(rid, old, "Midway")
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 25)
        # the new catalog's first pages bring ids the old one does not have
        fake.set_plugins(catalog(12, "new") + old)
        fake.fail_page = 2 * self.PAGE + 1
        r = self.sync(rid)
        self.assertIn(r.status, (502, 503), self._ctx(r))
        self.assertEqual([s for s, _ in fake.pages], [1, 11, 21])
        r = self.listing(rid)
        b = self.assertOK(r)
        self.assertEqual(sorted(ids(b)), sorted(p["plugin_id"] for p in old))
        self.assertIn(r.headers.get("X-Cache"), ("HIT", "STALE"))
        st = self.status(rid)
        self.assertEqual(st["cached_plugins"], 25, st)
        self.assertTrue(st["last_error"], st)
        r = self.mirror.api("plugin/get", {"plugin_id": "new-000"})
        self.assertNotEqual(r.status, 200, "a plugin of an unfinished sync is served")
        # once every page arrives the new catalog replaces the old one
        fake.fail_page = None
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 37)
        self.assertEqual(self.assertOK(self.listing(rid))["total_count"], 37)

    def test_sync_killed_midway_leaves_nothing_after_restart(self):
        rid = "repo-d4d4d4d4d4d4"
        old = catalog(25, "old")
        fake = self.upstream(rid, old, "Killed")
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 25)
        # pages 1 and 11 of the new catalog are written, page 21 never answers
        fake.set_plugins(catalog(12, "gone") + old)
        fake.stall_page = 2 * self.PAGE + 1
        del fake.pages[:]
        def sync_quietly():
            try:
                self.sync(rid)
            except Exception:  # the mirror is killed under it
                pass
        waiter = threading.Thread(target=sync_quietly, daemon=True)
        waiter.start()
        try:
            ok = wait_until(lambda: (2 * self.PAGE + 1, self.PAGE) in fake.pages, 10)
            self.assertTrue(ok, self.mirror.describe())
            # nothing of the unfinished sync is visible meanwhile
            b = self.assertOK(self.listing(rid))
            self.assertEqual(b["total_count"], 25)
            r = self.mirror.api("plugin/get", {"plugin_id": "gone-000"})
            self.assertNotEqual(r.status, 200, "a plugin of an unfinished sync is served")
            self.mirror.kill9()
        finally:
            fake.list_fails = True  # no sync succeeds after the restart
            fake.release.set()
            waiter.join(30)
        self.mirror.start()
        self.assertTrue(self.mirror.wait_log(
            "removed 20 cached plugins of %s that its catalog does not hold" % rid),
            self.mirror.describe())
        b = self.assertOK(self.listing(rid))
        self.assertEqual(sorted(ids(b)), sorted(p["plugin_id"] for p in old))
        r = self.mirror.api("plugin/get", {"plugin_id": "gone-000"})
        self.assertNotEqual(r.status, 200, "a plugin of an unfinished sync is served")
        fake.list_fails = False
        fake.stall_page = None
        self.assertEqual(self.assertOK(self.sync(rid))["plugins"], 37)
        self.assertEqual(self.assertOK(self.listing(rid))["total_count"], 37)

    def test_merged_read_names_the_tiers_left_out(self):
        ids_down = ["repo-d4d4d4d4d4d4", "repo-e5e5e5e5e5e5"]
        for i, rid in enumerate(ids_down):
            fake = ForeignUpstream(rid, catalog(3, "down%d" % i))
            fake.list_fails = True
            self.fakes.append(fake)
            must(register_remote(self.mirror, self.system, "Down%d" % i, fake,
                                 priority=500 + i), "register", self.mirror)
        self.addCleanup(self._drop, ids_down)
        r = self.mirror.api("plugin/list", {}, token=self.admin)
        b = self.assertOK(r)
        self.assertIn("loc-one", ids(b))
        self.assertFalse([i for i in ids(b) if i.startswith("down")])
        self.assertEqual(r.headers.get("X-Cache"), "MISS")
        self.assertEqual(r.headers.get("X-Partial"), ",".join(ids_down))
        r = self.mirror.api("plugin/stat", {"query": {"distinct": "plugin_id"}}, token=self.admin)
        self.assertOK(r)
        self.assertEqual(r.headers.get("X-Partial"), ",".join(ids_down))
        # naming the repository makes it the error
        r = self.mirror.api("plugin/list", {"repository_id": ids_down[0]}, token=self.admin)
        self.assertIn(r.status, (502, 503), self._ctx(r))
        self.assertIsNone(r.headers.get("X-Partial"))

    def _drop(self, rids):
        for rid in rids:
            self.mirror.api("repository/deregister", {"repository_id": rid}, token=self.system)


if __name__ == "__main__":
    unittest.main()

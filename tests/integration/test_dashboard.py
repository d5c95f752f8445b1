"""The DashboardTemplate resource (SPEC 14), local tier: every verb over real
TLS in both route styles (/repository/v1/dashboard-template/<verb> and
/repository/dashboard-template/<verb>), validation (named 400s, nothing
stored), 409 on an id clash, tenancy (domain isolation, public domains,
roles), list filters / query / sort / page / count_only, stat,
enable / disable, deregister, the audit line of a write, and a restart.
"""

import re
import time
import unittest

from harness import RepodTestCase, Server

STYLES = ("/repository/v1/", "/repository/")
INFO_KEYS = {"template_id", "name", "state", "template_type", "dashboards", "labels", "tags",
             "domain_id", "repository_info", "created_at", "updated_at"}
GENERATED_ID_RE = r"^template-[0-9a-f]{12}$"
TIMESTAMP_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def body(name, **extra):
    b = {"name": name, "dashboards": [{"name": "overview", "layouts": [[{"widget": "w1"}]]}],
         "labels": ["cost", "aws"], "tags": {"team": "ops"}}
    b.update(extra)
    return b


class DashboardTemplateTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"auth": {"anonymous_read": True, "public_domains": ["market"]}},
                            start=False, name="dashboard")
        try:
            s = cls.server
            cls.admin = s.make_token("d1", "admin", name="admin-d1")
            cls.viewer = s.make_token("d1", "viewer")
            cls.admin2 = s.make_token("d2", "admin")
            cls.admin3 = s.make_token("d3", "admin")
            cls.market = s.make_token("market", "admin")
            cls.system = s.make_token("root", "system")
            s.start()
            r = s.api("repository/list", {"repository_type": "local"}, token=cls.admin)
            cls.local_id = r.body["results"][0]["repository_id"]
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def call(self, verb, b, token, style=STYLES[0]):
        return self.server.request(style + "dashboard-template/" + verb, b, token=token)

    def ok(self, verb, b, token, style=STYLES[0]):
        return self.assertOK(self.call(verb, b, token, style), msg="%s %r" % (verb, b))

    def assertInfo(self, t):
        self.assertEqual(set(t), INFO_KEYS, t)
        self.assertIn(t["state"], ("ENABLED", "DISABLED"))
        self.assertIn(t["template_type"], ("MULTI", "SINGLE"))
        self.assertRegex(t["created_at"], TIMESTAMP_RE)
        self.assertRegex(t["updated_at"], TIMESTAMP_RE)
        self.assertEqual(t["repository_info"],
                         {"repository_id": self.local_id, "name": "Local",
                          "repository_type": "local", "endpoint": ""})
        return t

    def ids(self, token, b=None):
        r = self.ok("list", b or {}, token)
        return sorted(t["template_id"] for t in r["results"])

    # ---- register / get ----------------------------------------------------

    def test_register_and_get_both_styles(self):
        for i, style in enumerate(STYLES):
            chosen = "reg-chosen-%d" % i
            t = self.assertInfo(self.ok("register", body("Chosen %d" % i, template_id=chosen),
                                        self.admin, style))
            self.assertEqual(t["template_id"], chosen)
            self.assertEqual(t["state"], "ENABLED")
            self.assertEqual(t["template_type"], "MULTI")  # the default
            self.assertEqual(t["domain_id"], "d1")
            self.assertEqual(t["dashboards"], body("x")["dashboards"])
            self.assertEqual(t["labels"], ["cost", "aws"])
            self.assertEqual(t["tags"], {"team": "ops"})
            self.assertEqual(t["created_at"], t["updated_at"])
            got = self.ok("get", {"template_id": chosen}, self.viewer, style)
            self.assertEqual(got, t)
            g = self.assertInfo(self.ok("register", {"name": "Generated %d" % i}, self.admin,
                                        style))
            self.assertRegex(g["template_id"], GENERATED_ID_RE)
            self.assertEqual((g["dashboards"], g["labels"], g["tags"]), ([], [], {}))
            self.assertEqual(self.ok("get", {"template_id": g["template_id"]}, self.viewer,
                                     style)["name"], "Generated %d" % i)
        # repository_id: the local one finds it, another one does not
        self.ok("get", {"template_id": "reg-chosen-0", "repository_id": self.local_id},
                self.viewer)
        self.assertError(self.call("get", {"template_id": "reg-chosen-0",
                                           "repository_id": "repo-000000000000"}, self.viewer),
                         404, "ERROR_NOT_FOUND", contains="template_id = reg-chosen-0")
        # only projects
        self.assertEqual(self.ok("get", {"template_id": "reg-chosen-0", "only": ["name"]},
                                 self.viewer), {"name": "Chosen 0"})
        self.assertError(self.call("get", {"template_id": "nope"}, self.viewer), 404,
                         "ERROR_NOT_FOUND", contains="template_id = nope")

    def test_template_type(self):
        t = self.ok("register", body("Single", template_id="type-single", template_type="SINGLE"),
                    self.admin)
        self.assertEqual(t["template_type"], "SINGLE")
        for bad in ("multi", "BOTH", ""):
            self.assertError(self.call("register", body("Bad", template_id="type-bad",
                                                        template_type=bad), self.admin),
                             400, "ERROR_INVALID_PARAMETER", contains="key = template_type")
        self.assertError(self.call("get", {"template_id": "type-bad"}, self.admin), 404)
        t = self.ok("update", {"template_id": "type-single", "template_type": "MULTI"}, self.admin)
        self.assertEqual(t["template_type"], "MULTI")
        self.assertError(self.call("update", {"template_id": "type-single",
                                              "template_type": "X"}, self.admin),
                         400, "ERROR_INVALID_PARAMETER", contains="key = template_type")

    def test_clash_is_409_and_other_domains_may_reuse_the_id(self):
        first = self.ok("register", body("First", template_id="clash"), self.admin)
        for style in STYLES:
            self.assertError(self.call("register", body("Second", template_id="clash"),
                                       self.admin, style),
                             409, "ERROR_SAVE_UNIQUE_VALUES",
                             contains=["key = template_id", "value = clash"])
        self.assertEqual(self.ok("get", {"template_id": "clash"}, self.admin), first)
        other = self.ok("register", body("Other", template_id="clash"), self.admin2)
        self.assertEqual(other["domain_id"], "d2")
        self.assertEqual(self.ok("get", {"template_id": "clash"}, self.admin)["name"], "First")

    def test_bad_requests_are_named_400s_and_store_nothing(self):
        before = self.ids(self.admin)
        cases = [
            ({"template_id": "bad-1"}, "ERROR_REQUIRED_PARAMETER", "key = name"),
            (body("", template_id="bad-1"), "ERROR_REQUIRED_PARAMETER", "key = name"),
            (body(5, template_id="bad-1"), "ERROR_INVALID_PARAMETER_TYPE",
             "key = name, type = string"),
            (body("x", template_id=7), "ERROR_INVALID_PARAMETER_TYPE", "key = template_id"),
            (body("x", template_id="bad-1", dashboards={"a": 1}), "ERROR_INVALID_PARAMETER_TYPE",
             "key = dashboards, type = array"),
            (body("x", template_id="bad-1", labels="x"), "ERROR_INVALID_PARAMETER_TYPE",
             "key = labels, type = array"),
            (body("x", template_id="bad-1", labels=[1]), "ERROR_INVALID_PARAMETER_TYPE",
             "key = labels, type = array of strings"),
            (body("x", template_id="bad-1", tags=[]), "ERROR_INVALID_PARAMETER_TYPE",
             "key = tags, type = object"),
            (body("x", template_id="bad-1", template_type=1), "ERROR_INVALID_PARAMETER_TYPE",
             "key = template_type"),
            (body("x", template_id="bad-1", state="DISABLED"), "ERROR_INVALID_PARAMETER",
             "key = state"),
            (body("x", template_id="bad-1", image="a/b"), "ERROR_INVALID_PARAMETER",
             "key = image"),
            (body("x", template_id="Bad_Upper"), "ERROR_INVALID_PARAMETER", "key = template_id"),
            (body("x", template_id="a" * 41), "ERROR_INVALID_PARAMETER", "key = template_id"),
            (body("x", template_id="bad--double"), "ERROR_INVALID_PARAMETER",
             "key = template_id"),
        ]
        for style in STYLES:
            for b, code, text in cases:
                self.assertError(self.call("register", b, self.admin, style), 400, code,
                                 contains=text, msg=repr(b))
        self.ok("register", body("Upd", template_id="bad-upd"), self.admin)
        stored = self.ok("get", {"template_id": "bad-upd"}, self.admin)
        for b, code, text in [
                ({"name": "x"}, "ERROR_REQUIRED_PARAMETER", "key = template_id"),
                ({"template_id": "bad-upd", "name": ""}, "ERROR_REQUIRED_PARAMETER", "key = name"),
                ({"template_id": "bad-upd", "labels": {}}, "ERROR_INVALID_PARAMETER_TYPE",
                 "key = labels"),
                ({"template_id": "bad-upd", "state": "DISABLED"}, "ERROR_INVALID_PARAMETER",
                 "reason = update cannot change it"),
                ({"template_id": "bad-upd", "created_at": "x"}, "ERROR_INVALID_PARAMETER",
                 "key = created_at"),
                ({"template_id": "bad-upd", "foo": 1}, "ERROR_INVALID_PARAMETER", "key = foo")]:
            self.assertError(self.call("update", b, self.admin), 400, code, contains=text,
                             msg=repr(b))
        for verb in ("get", "enable", "disable", "deregister"):
            self.assertError(self.call(verb, {}, self.admin), 400, "ERROR_REQUIRED_PARAMETER",
                             contains="key = template_id")
            self.assertError(self.call(verb, {"template_id": "bad-upd", "x": 1}, self.admin),
                             400, "ERROR_INVALID_PARAMETER", contains="key = x")
        self.assertError(self.call("list", {"plugin_id": "x"}, self.admin), 400,
                         "ERROR_INVALID_PARAMETER", contains="key = plugin_id")
        self.assertError(self.call("list", {"name": 3}, self.admin), 400,
                         "ERROR_INVALID_PARAMETER_TYPE", contains="key = name")
        self.assertError(self.call("register", "[1]", self.admin), 400, "ERROR_INVALID_JSON")
        self.assertEqual(self.ok("get", {"template_id": "bad-upd"}, self.admin), stored)
        self.assertEqual(self.ids(self.admin), sorted(before + ["bad-upd"]))

    # ---- tenancy ------------------------------------------------------------

    def test_domain_isolation(self):
        self.ok("register", body("Secret", template_id="iso-secret"), self.admin2)
        self.assertNotIn("iso-secret", self.ids(self.admin))
        self.assertNotIn("iso-secret", self.ids(self.viewer, {"template_id": "iso-secret"}))
        for verb in ("get", "enable", "disable", "deregister"):
            self.assertError(self.call(verb, {"template_id": "iso-secret"}, self.admin), 404,
                             "ERROR_NOT_FOUND", contains="template_id = iso-secret")
        self.assertError(self.call("update", {"template_id": "iso-secret", "name": "x"},
                                   self.admin), 404, "ERROR_NOT_FOUND")
        st = self.ok("stat", {"query": {"aggregate": [{"count": {"name": "n"}}]}}, self.admin2)
        st1 = self.ok("stat", {"query": {"filter": [{"k": "template_id", "v": "iso-secret",
                                                     "o": "eq"}],
                                         "aggregate": [{"count": {"name": "n"}}]}}, self.admin)
        self.assertGreaterEqual(st["results"][0]["n"], 1)
        self.assertEqual(st1["results"], [])
        # untouched by d1's attempts
        self.assertEqual(self.ok("get", {"template_id": "iso-secret"}, self.admin2)["state"],
                         "ENABLED")
        # a system token acts for the domain it names
        r = self.ok("get", {"template_id": "iso-secret", "domain_id": "d2"}, self.system)
        self.assertEqual(r["domain_id"], "d2")

    def test_public_domains_are_readable_never_writable(self):
        self.ok("register", body("Market", template_id="pub-one"), self.market)
        for token in (self.admin, self.viewer, None):
            self.assertEqual(self.ok("get", {"template_id": "pub-one"}, token)["domain_id"],
                             "market")
            self.assertIn("pub-one", self.ids(token))
        self.assertNotIn("iso-d1", self.ids(None))
        for verb, extra in (("update", {"name": "x"}), ("enable", {}), ("disable", {}),
                            ("deregister", {})):
            b = dict({"template_id": "pub-one"}, **extra)
            self.assertError(self.call(verb, b, self.admin), 403, "ERROR_PERMISSION_DENIED",
                             contains="template_id = pub-one")
            self.assertError(self.call(verb, b, None), 401, "ERROR_AUTHENTICATE_FAILURE")
        self.assertEqual(self.ok("get", {"template_id": "pub-one"}, self.market)["name"],
                         "Market")

    def test_viewer_cannot_write(self):
        self.ok("register", body("Mine", template_id="viewer-target"), self.admin)
        for verb, b in (("register", body("V", template_id="viewer-new")),
                        ("update", {"template_id": "viewer-target", "name": "V"}),
                        ("enable", {"template_id": "viewer-target"}),
                        ("disable", {"template_id": "viewer-target"}),
                        ("deregister", {"template_id": "viewer-target"})):
            for style in STYLES:
                self.assertError(self.call(verb, b, self.viewer, style), 403,
                                 "ERROR_PERMISSION_DENIED")
        self.assertEqual(self.ok("get", {"template_id": "viewer-target"}, self.viewer)["name"],
                         "Mine")
        self.assertError(self.call("get", {"template_id": "viewer-new"}, self.viewer), 404)

    # ---- list / stat ----------------------------------------------------------

    def test_list_filters_query_sort_page_count_only(self):
        tok = self.admin3  # domain d3 holds exactly these
        for tid, name, ttype, labels in (("l-a", "Alpha", "MULTI", ["x"]),
                                         ("l-b", "Bravo", "SINGLE", ["y"]),
                                         ("l-c", "Charlie", "MULTI", ["x", "y"]),
                                         ("l-d", "Delta", "SINGLE", [])):
            self.ok("register", {"template_id": tid, "name": name, "template_type": ttype,
                                 "labels": labels}, tok)
        self.ok("disable", {"template_id": "l-d"}, tok)
        for style in STYLES:
            r = self.ok("list", {}, tok, style)
            self.assertEqual([t["template_id"] for t in r["results"]],
                             ["l-a", "l-b", "l-c", "l-d"])  # default order: name
            self.assertEqual(r["total_count"], 4)
            for t in r["results"]:
                self.assertInfo(t)
        self.assertEqual(self.ids(tok, {"template_type": "SINGLE"}), ["l-b", "l-d"])
        self.assertEqual(self.ids(tok, {"state": "DISABLED"}), ["l-d"])
        self.assertEqual(self.ids(tok, {"name": "Charlie"}), ["l-c"])
        self.assertEqual(self.ids(tok, {"template_id": "l-a"}), ["l-a"])
        self.assertEqual(self.ids(tok, {"repository_id": self.local_id}),
                         ["l-a", "l-b", "l-c", "l-d"])
        self.assertEqual(self.ids(tok, {"repository_id": "repo-000000000000"}), [])
        self.assertEqual(self.ids(tok, {"query": {"filter": [{"k": "labels", "v": ["x"],
                                                              "o": "in"}]}}), ["l-a", "l-c"])
        self.assertEqual(self.ids(tok, {"query": {"keyword": "brav"}}), ["l-b"])
        r = self.ok("list", {"query": {"sort": [{"key": "name", "desc": True}],
                                       "page": {"start": 2, "limit": 2}}}, tok)
        self.assertEqual([t["template_id"] for t in r["results"]], ["l-c", "l-b"])  # start is 1-based
        self.assertEqual(r["total_count"], 4)
        r = self.ok("list", {"query": {"count_only": True}, "template_type": "MULTI"}, tok)
        self.assertEqual(r, {"results": [], "total_count": 2})
        r = self.ok("list", {"query": {"minimal": True}, "template_id": "l-a"}, tok)
        self.assertEqual(set(r["results"][0]), {"template_id", "name", "state", "template_type"})
        self.assertError(self.call("list", {"query": {"filter": [{"k": "name", "o": "nope",
                                                                  "v": 1}]}}, tok),
                         400)

    def test_stat(self):
        tok = self.market
        for tid, ttype in (("s-1", "MULTI"), ("s-2", "MULTI"), ("s-3", "SINGLE")):
            self.ok("register", {"template_id": tid, "name": tid, "template_type": ttype}, tok)
        q = {"filter": [{"k": "template_id", "v": "s-", "o": "contain"}],
             "aggregate": [{"group": {"keys": [{"key": "template_type", "name": "type"}],
                                      "fields": [{"operator": "count", "name": "n"}]}},
                           {"sort": {"key": "type"}}]}
        for style in STYLES:
            r = self.ok("stat", {"query": q}, tok, style)
            self.assertEqual(r["results"], [{"type": "MULTI", "n": 2}, {"type": "SINGLE", "n": 1}])
        r = self.ok("stat", {"query": {"distinct": "template_type",
                                       "filter": [{"k": "template_id", "v": "s-",
                                                   "o": "contain"}]}}, tok)
        self.assertEqual(sorted(r["results"]), ["MULTI", "SINGLE"])
        r = self.ok("stat", {"query": q, "repository_id": "repo-000000000000"}, tok)
        self.assertEqual(r["results"], [])
        self.assertError(self.call("stat", {}, tok), 400, "ERROR_REQUIRED_PARAMETER",
                         contains="key = query")
        self.assertError(self.call("stat", {"query": []}, tok), 400,
                         "ERROR_INVALID_PARAMETER_TYPE", contains="key = query")

    # ---- writes --------------------------------------------------------------

    def test_update_enable_disable_deregister_both_styles(self):
        for i, style in enumerate(STYLES):
            tid = "w-%d" % i
            t0 = self.ok("register", body("Before", template_id=tid), self.admin, style)
            time.sleep(0.002)
            t = self.assertInfo(self.ok("update", {"template_id": tid, "name": "After",
                                                   "dashboards": [], "labels": ["new"],
                                                   "tags": {"a": "b"}}, self.admin, style))
            self.assertEqual((t["name"], t["dashboards"], t["labels"], t["tags"]),
                             ("After", [], ["new"], {"a": "b"}))
            self.assertEqual(t["created_at"], t0["created_at"])
            self.assertGreater(t["updated_at"], t0["updated_at"])
            self.assertEqual(t["template_type"], "MULTI")
            t = self.ok("disable", {"template_id": tid}, self.admin, style)
            self.assertEqual(t["state"], "DISABLED")
            self.assertEqual(self.ok("get", {"template_id": tid}, self.admin)["state"], "DISABLED")
            t = self.ok("enable", {"template_id": tid}, self.admin, style)
            self.assertEqual(t["state"], "ENABLED")
            self.assertEqual(self.ok("deregister", {"template_id": tid}, self.admin, style), {})
            self.assertError(self.call("get", {"template_id": tid}, self.admin, style), 404,
                             "ERROR_NOT_FOUND")
            self.assertError(self.call("deregister", {"template_id": tid}, self.admin, style),
                             404, "ERROR_NOT_FOUND")
            self.assertNotIn(tid, self.ids(self.admin))
            # the id is free again
            self.ok("register", body("Again", template_id=tid), self.admin, style)

    def test_writes_are_audited(self):
        self.ok("register", body("Audited", template_id="audit-me"), self.admin)
        self.assertError(self.call("update", {"template_id": "audit-gone", "name": "x"},
                                   self.admin), 404)
        pat = re.compile(r"audit dashboard-template\.register id=audit-me domain=d1 "
                         r"token=admin-d1 role=admin status=200 code=OK")
        pat404 = re.compile(r"audit dashboard-template\.update id=audit-gone domain=d1 .*"
                            r"status=404 code=ERROR_NOT_FOUND")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            log = self.server.log()
            if pat.search(log) and pat404.search(log):
                break
            time.sleep(0.02)
        self.assertRegex(self.server.log(), pat)
        self.assertRegex(self.server.log(), pat404)

    def test_z_survives_restart_and_plugins_unaffected(self):
        self.ok("register", body("Durable", template_id="durable"), self.admin)
        self.ok("disable", {"template_id": "durable"}, self.admin)
        before = self.ok("list", {}, self.admin)
        p = self.server.api("plugin/list", {}, token=self.admin)
        self.assertEqual(p.body["total_count"], 0)  # dashboards are not plugins
        self.server.restart()
        self.assertEqual(self.ok("list", {}, self.admin), before)
        self.assertEqual(self.ok("get", {"template_id": "durable"}, self.admin)["state"],
                         "DISABLED")
        self.assertIn("read model holds", self.server.log())
        self.assertIn("local dashboard templates", self.server.log())


if __name__ == "__main__":
    unittest.main()

"""The Plugin and Repository APIs on the local repository (SPEC 2, 3, 4, 8)."""

import copy
import json
import time
import unittest

import harness
from harness import (PLUGIN_INFO_KEYS, REPOSITORY_ID_RE, SEED_JIRA_REGISTER, TIMESTAMP_RE,
                     RepodTestCase, Server, list_snapshot, plugin_body)


class PluginApiTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        # harbor.example.com is registered (never read): it must be allowed
        cls.server = Server(start=False, name="plugin-api", overrides={
            "registry": {"allowed_hosts": ["harbor.example.com"]}})
        try:
            cls.admin = cls.server.make_token("domain-a", "admin")
            cls.viewer = cls.server.make_token("domain-a", "viewer")
            cls.admin_e = cls.server.make_token("domain-err", "admin")   # error cases
            cls.admin_q = cls.server.make_token("domain-q", "admin")     # list / stat queries
            cls.system = cls.server.make_token("domain-root", "system")
            cls.server.start()
            cls._seed_query_domain()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    # domain-q holds five plugins for the query tests.
    Q_PLUGINS = [
        ("acme/q-alpha", "Alpha", "atlassian", "notification.Protocol", ["jira"]),
        ("acme/q-bravo", "Bravo", "aws", "inventory.Collector", ["cloud", "aws"]),
        ("acme/q-charlie", "Charlie", "aws", "monitoring.DataSource", ["cloud"]),
        ("acme/q-delta", "Delta", "google", "inventory.Collector", []),
        ("acme/q-echo", "Echo", "atlassian", "notification.Protocol", ["jira", "chat"]),
    ]

    @classmethod
    def _seed_query_domain(cls):
        for image, name, provider, rtype, labels in cls.Q_PLUGINS:
            r = cls.server.api("plugin/register",
                               plugin_body(image, name=name, resource_type=rtype,
                                           provider=provider, labels=labels),
                               token=cls.admin_q)
            if r.status != 200:
                raise harness.ServerError("seeding domain-q failed: %r%s" %
                                          ((r.status, r.body), cls.server.describe()))
        r = cls.server.api("plugin/disable", {"plugin_id": "q-delta"}, token=cls.admin_q)
        if r.status != 200:
            raise harness.ServerError("disable q-delta failed: %r" % ((r.status, r.body),))

    def call(self, verb, body=None, token=None):
        return self.server.api("plugin/" + verb, body, token=token or self.admin)

    def q_list(self, body):
        r = self.server.api("plugin/list", body, token=self.admin_q)
        return self.assertOK(r)

    # -- the seed example, full life cycle -------------------------------------

    def test_lifecycle_seed_jira_example(self):
        t_before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 5))
        r = self.call("register", SEED_JIRA_REGISTER)
        p = self.assertPluginInfo(self.assertOK(r))
        self.assertEqual(set(p), set(PLUGIN_INFO_KEYS))
        expect = {
            "plugin_id": "plugin-jira-noti-protocol",
            "name": "JIRA Issue notification",
            "state": "ENABLED",
            "resource_type": "notification.Procotol",
            "service_type": "notification.Procotol",
            "image": "pyengine/plugin-jira-noti-protocol",
            "provider": "atlassian",
            "registry_type": "DOCKER_HUB",
            "registry_url": "registry.hub.docker.com",
            "registry_config": {},
            "capability": SEED_JIRA_REGISTER["capability"],
            "template": SEED_JIRA_REGISTER["template"],
            "labels": SEED_JIRA_REGISTER["labels"],
            "tags": SEED_JIRA_REGISTER["tags"],
            "domain_id": "domain-a",
        }
        for k, v in expect.items():
            self.assertEqual(p[k], v, "field %s" % k)
        ri = p["repository_info"]
        self.assertEqual(set(ri), {"repository_id", "name", "repository_type", "endpoint"})
        self.assertEqual(ri["endpoint"], "")
        self.assertRegex(ri["repository_id"], REPOSITORY_ID_RE)
        self.assertEqual(ri["name"], "Local")
        self.assertEqual(ri["repository_type"], "local")
        self.assertRegex(p["created_at"], TIMESTAMP_RE)
        self.assertRegex(p["updated_at"], TIMESTAMP_RE)
        self.assertEqual(p["created_at"], p["updated_at"])
        self.assertGreater(p["created_at"], t_before, "created_at is not now (UTC)")
        pid = p["plugin_id"]

        # get: the same record
        got = self.assertOK(self.call("get", {"plugin_id": pid}))
        self.assertEqual(got, p)
        # a viewer of the domain reads it too
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": pid}, token=self.viewer)), p)
        # get with only
        got = self.assertOK(self.call("get", {"plugin_id": pid, "only": ["plugin_id", "name"]}))
        self.assertEqual(got.get("plugin_id"), pid)
        self.assertEqual(got.get("name"), p["name"])
        self.assertNotIn("template", got)
        self.assertNotIn("image", got)

        # list
        lst = self.assertOK(self.call("list", {}))
        self.assertIsInstance(lst["total_count"], int)
        self.assertEqual(lst["total_count"], len(lst["results"]))
        hits = [x for x in lst["results"] if x.get("plugin_id") == pid]
        self.assertEqual(hits, [p])

        # update
        time.sleep(0.01)
        r = self.call("update", {"plugin_id": pid, "name": "JIRA v2", "labels": ["x", "y"],
                                 "tags": {"k": "v"}})
        u = self.assertPluginInfo(self.assertOK(r))
        self.assertEqual(u["name"], "JIRA v2")
        self.assertEqual(u["labels"], ["x", "y"])
        self.assertEqual(u["tags"], {"k": "v"})
        self.assertEqual(u["created_at"], p["created_at"])
        self.assertGreaterEqual(u["updated_at"], p["updated_at"])
        for k in ("plugin_id", "image", "registry_type", "registry_url", "resource_type",
                  "domain_id", "capability", "template", "provider", "repository_info", "state"):
            self.assertEqual(u[k], p[k], "update changed %s" % k)
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": pid})), u)

        # disable / enable
        d = self.assertPluginInfo(self.assertOK(self.call("disable", {"plugin_id": pid})))
        self.assertEqual(d["state"], "DISABLED")
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": pid}))["state"], "DISABLED")
        e = self.assertPluginInfo(self.assertOK(self.call("enable", {"plugin_id": pid})))
        self.assertEqual(e["state"], "ENABLED")
        self.assertEqual(e["name"], "JIRA v2")

        # deregister
        r = self.call("deregister", {"plugin_id": pid})
        self.assertEqual(self.assertOK(r), {})
        self.assertError(self.call("get", {"plugin_id": pid}), 404, "ERROR_NO_PLUGIN")
        for verb, body in (("update", {"plugin_id": pid, "name": "again"}),
                           ("enable", {"plugin_id": pid}),
                           ("disable", {"plugin_id": pid}),
                           ("deregister", {"plugin_id": pid})):
            with self.subTest(verb=verb):
                self.assertError(self.call(verb, body), 404, "ERROR_NOT_FOUND", contains=pid)
        lst = self.assertOK(self.call("list", {}))
        self.assertNotIn(pid, [x.get("plugin_id") for x in lst["results"]])

        # it can be registered again after deregister
        r = self.call("register", SEED_JIRA_REGISTER)
        self.assertOK(r)
        self.assertOK(self.call("deregister", {"plugin_id": pid}))

    def test_resource_type_key_and_defaults(self):
        r = self.call("register", {"name": "Min", "resource_type": "inventory.Collector",
                                   "image": "cloudforet/plugin-min-defaults"})
        p = self.assertPluginInfo(self.assertOK(r))
        self.assertEqual(p["plugin_id"], "plugin-min-defaults")
        self.assertEqual(p["resource_type"], "inventory.Collector")
        self.assertEqual(p["service_type"], "inventory.Collector")
        self.assertEqual(p["provider"], "")
        self.assertEqual(p["registry_type"], "DOCKER_HUB")
        self.assertEqual(p["registry_url"], "registry.hub.docker.com")
        self.assertEqual(p["registry_config"], {})
        self.assertEqual(p["capability"], {})
        self.assertEqual(p["template"], {})
        self.assertEqual(p["labels"], [])
        self.assertEqual(p["tags"], {})
        self.assertEqual(p["state"], "ENABLED")
        # single-component and three-component images; plugin_id is the last segment
        for image, pid in (("plugin-one-segment", "plugin-one-segment"),
                           ("org_x/team.y/plugin-three-x", "plugin-three-x")):
            with self.subTest(image=image):
                p = self.assertOK(self.call("register", plugin_body(image)))
                self.assertEqual(p["plugin_id"], pid)
                self.assertEqual(p["image"], image)
        # HARBOR with a registry_url, legacy keys domain_id / project_id accepted
        r = self.call("register", plugin_body("team/plugin-harbor-ok", registry_type="HARBOR",
                                              registry_url="harbor.example.com",
                                              registry_config={"project": "team"},
                                              project_id="project-1234"))
        p = self.assertOK(r)
        self.assertEqual(p["registry_type"], "HARBOR")
        self.assertEqual(p["registry_url"], "harbor.example.com")
        self.assertEqual(p["registry_config"], {"project": "team"})
        self.assertEqual(p["domain_id"], "domain-a")

    def test_duplicate_register_409_keeps_stored(self):
        body = plugin_body("acme/plugin-dup", name="Original", labels=["one"])
        first = self.assertOK(self.call("register", body))
        time.sleep(0.01)
        dup = dict(body, name="Changed", labels=["two"])
        self.assertError(self.call("register", dup), 409, "ERROR_SAVE_UNIQUE_VALUES")
        # a different image path with the same last segment is the same plugin_id
        self.assertError(self.call("register", plugin_body("other/plugin-dup", name="Other")),
                         409, "ERROR_SAVE_UNIQUE_VALUES")
        now = self.assertOK(self.call("get", {"plugin_id": "plugin-dup"}))
        self.assertEqual(now, first)

    # -- validation errors: nothing stored ------------------------------------

    def test_register_validation_errors(self):
        base = plugin_body("acme/plugin-valid-base", name="Valid")
        long_image = "pyengine/" + "a" * 32
        self.assertEqual(len(long_image), 41)
        ok_image_40 = "pyengine/" + "b" * 31
        bad_schema_cases = [
            {"options": {"schema": {"type": "object", "properties": []}}},
            {"options": {"schema": {"type": "no-such-type"}}},
            {"options": {"schema": {"type": "object", "required": [1, 2]}}},
            {"options": {"schema": "not an object"}},
        ]
        cases = [
            ("missing image", {"name": "X", "resource_type": "a.B"},
             400, "ERROR_REQUIRED_PARAMETER", ["key = image"]),
            ("missing name", {"resource_type": "a.B", "image": "acme/plugin-noname"},
             400, "ERROR_REQUIRED_PARAMETER", ["name"]),
            ("missing resource_type", {"name": "X", "image": "acme/plugin-nort"},
             400, "ERROR_REQUIRED_PARAMETER", ["resource_type"]),
            ("image 41 chars", dict(base, image=long_image), 400, "ERROR_INVALID_IMAGE_LENGTH", []),
            ("image upper case", dict(base, image="Pyengine/X"), 400, "ERROR_INVALID_IMAGE_FORMAT", []),
            ("image with tag", dict(base, image="acme/plugin-x:1.0"), 400, "ERROR_INVALID_IMAGE_FORMAT", []),
            ("image 4 components", dict(base, image="docker.io/acme/x/y"), 400, "ERROR_INVALID_IMAGE_FORMAT", []),
            ("image double sep", dict(base, image="acme//plugin-x"), 400, "ERROR_INVALID_IMAGE_FORMAT", []),
            ("image trailing sep", dict(base, image="acme/plugin-x-"), 400, "ERROR_INVALID_IMAGE_FORMAT", []),
            ("image not string", dict(base, image=12), 400, "ERROR_INVALID_PARAMETER_TYPE", ["image"]),
            ("registry GCR", dict(base, registry_type="GCR"), 400, "ERROR_INVALID_REGISTRY_TYPE", []),
            ("HARBOR no url", dict(base, registry_type="HARBOR"),
             400, "ERROR_REQUIRED_PARAMETER", ["registry_url"]),
            ("ECR no url", dict(base, registry_type="AWS_PRIVATE_ECR"),
             400, "ERROR_REQUIRED_PARAMETER", ["registry_url"]),
            ("labels string", dict(base, labels="x"), 400, "ERROR_INVALID_PARAMETER_TYPE", ["labels"]),
            ("tags list", dict(base, tags=["x"]), 400, "ERROR_INVALID_PARAMETER_TYPE", ["tags"]),
            ("capability string", dict(base, capability="x"), 400, "ERROR_INVALID_PARAMETER_TYPE", ["capability"]),
            ("name number", dict(base, name=5), 400, "ERROR_INVALID_PARAMETER_TYPE", ["name"]),
            ("unknown key", dict(base, colour="blue"), 400, "ERROR_INVALID_PARAMETER", ["colour"]),
        ] + [("bad template %d" % i, dict(base, template=t), 400, "ERROR_INVALID_TEMPLATE_SCHEMA",
              ["template.options"]) for i, t in enumerate(bad_schema_cases)]
        before = list_snapshot(self.server, self.admin_e)
        for label, body, status, code, words in cases:
            with self.subTest(case=label):
                r = self.call("register", body, token=self.admin_e)
                self.assertError(r, status, code, contains=words)
                self.assertEqual(list_snapshot(self.server, self.admin_e), before,
                                 "a bad register changed stored data")
        # the boundary: exactly 40 characters is fine
        p = self.assertOK(self.call("register", dict(base, image=ok_image_40), token=self.admin_e))
        self.assertEqual(p["image"], ok_image_40)

    def test_update_and_id_request_errors(self):
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-upd-err", labels=["a"]),
                                    token=self.admin_e))
        before = list_snapshot(self.server, self.admin_e)
        cases = [
            ("update no plugin_id", "update", {"name": "x"}, 400, "ERROR_REQUIRED_PARAMETER", ["plugin_id"]),
            ("update labels str", "update", {"plugin_id": "plugin-upd-err", "labels": "x"},
             400, "ERROR_INVALID_PARAMETER_TYPE", ["labels"]),
            ("update bad template", "update",
             {"plugin_id": "plugin-upd-err", "template": {"options": {"schema": {"type": "bogus"}}}},
             400, "ERROR_INVALID_TEMPLATE_SCHEMA", ["template.options"]),
            ("update unknown key", "update", {"plugin_id": "plugin-upd-err", "colour": "x"},
             400, "ERROR_INVALID_PARAMETER", ["colour"]),
            ("get no plugin_id", "get", {}, 400, "ERROR_REQUIRED_PARAMETER", ["plugin_id"]),
            ("get plugin_id number", "get", {"plugin_id": 3}, 400, "ERROR_INVALID_PARAMETER_TYPE", ["plugin_id"]),
            ("enable no plugin_id", "enable", {}, 400, "ERROR_REQUIRED_PARAMETER", ["plugin_id"]),
            ("deregister unknown key", "deregister", {"plugin_id": "plugin-upd-err", "x": 1},
             400, "ERROR_INVALID_PARAMETER", []),
            ("get missing", "get", {"plugin_id": "plugin-never-was"}, 404, "ERROR_NO_PLUGIN", []),
        ]
        for label, verb, body, status, code, words in cases:
            with self.subTest(case=label):
                self.assertError(self.call(verb, body, token=self.admin_e), status, code, contains=words)
                self.assertEqual(list_snapshot(self.server, self.admin_e), before,
                                 "a bad %s changed stored data" % verb)
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-upd-err"},
                                                 token=self.admin_e)), p)

    # -- list / stat -----------------------------------------------------------

    def ids(self, body):
        return [x["plugin_id"] for x in body["results"]]

    def test_list_default_order_and_counts(self):
        b = self.q_list({})
        self.assertEqual(b["total_count"], 5)
        self.assertEqual(self.ids(b), ["q-alpha", "q-bravo", "q-charlie", "q-delta", "q-echo"])
        for p in b["results"]:
            self.assertPluginInfo(p)
            self.assertEqual(p["domain_id"], "domain-q")

    def test_list_top_level_filters(self):
        cases = [
            ({"provider": "aws"}, ["q-bravo", "q-charlie"]),
            ({"provider": "nobody"}, []),
            ({"state": "DISABLED"}, ["q-delta"]),
            ({"state": "ENABLED"}, ["q-alpha", "q-bravo", "q-charlie", "q-echo"]),
            ({"resource_type": "inventory.Collector"}, ["q-bravo", "q-delta"]),
            ({"service_type": "notification.Protocol"}, ["q-alpha", "q-echo"]),
            ({"name": "Charlie"}, ["q-charlie"]),
            ({"plugin_id": "q-echo"}, ["q-echo"]),
            ({"registry_type": "DOCKER_HUB", "provider": "google"}, ["q-delta"]),
            ({"registry_type": "HARBOR"}, []),
        ]
        for req, want in cases:
            with self.subTest(req=req):
                b = self.q_list(req)
                self.assertEqual(self.ids(b), want)
                self.assertEqual(b["total_count"], len(want))

    def test_list_query_filter_sort_page_only_count(self):
        b = self.q_list({"query": {"filter": [{"k": "provider", "v": "atlassian", "o": "eq"}]}})
        self.assertEqual(self.ids(b), ["q-alpha", "q-echo"])
        b = self.q_list({"query": {"filter": [{"key": "plugin_id", "value": ["q-bravo", "q-echo", "zz"],
                                               "operator": "in"}]}})
        self.assertEqual(self.ids(b), ["q-bravo", "q-echo"])
        self.assertEqual(b["total_count"], 2)
        b = self.q_list({"query": {"filter": [{"k": "labels", "v": "CLOUD", "o": "contain"}],
                                   "sort": {"key": "name", "desc": True}}})
        self.assertEqual(self.ids(b), ["q-charlie", "q-bravo"])
        b = self.q_list({"query": {"sort": {"key": "name", "desc": True}}})
        self.assertEqual(self.ids(b), ["q-echo", "q-delta", "q-charlie", "q-bravo", "q-alpha"])
        b = self.q_list({"query": {"sort": {"key": "name", "desc": True}, "page": {"start": 2, "limit": 2}}})
        self.assertEqual(self.ids(b), ["q-delta", "q-charlie"])
        self.assertEqual(b["total_count"], 5, "total_count must count before paging")
        b = self.q_list({"query": {"page": {"start": 5, "limit": 10}}})
        self.assertEqual(self.ids(b), ["q-echo"])
        self.assertEqual(b["total_count"], 5)
        b = self.q_list({"query": {"only": ["plugin_id", "name"]}})
        self.assertEqual(b["total_count"], 5)
        for p in b["results"]:
            self.assertTrue({"plugin_id", "name"} <= set(p), p)
            self.assertTrue(set(p) <= {"plugin_id", "name", "repository_info"}, p)
        b = self.q_list({"query": {"count_only": True}})
        self.assertEqual(b["results"], [])
        self.assertEqual(b["total_count"], 5)
        b = self.q_list({"provider": "aws", "query": {"count_only": True}})
        self.assertEqual(b["total_count"], 2)

    def test_list_bad_query(self):
        before = list_snapshot(self.server, self.admin_q)
        r = self.server.api("plugin/list", {"query": {"filter": [{"k": "name", "v": "x", "o": "frob"}]}},
                            token=self.admin_q)
        self.assertError(r, 400, "ERROR_DB_QUERY", contains="frob")
        r = self.server.api("plugin/list", {"query": {"filter": [{"k": "name", "v": "x", "o": "in"}]}},
                            token=self.admin_q)
        self.assertError(r, 400, ("ERROR_OPERATOR_LIST_VALUE_TYPE", "ERROR_OPERATOR_VALUE_TYPE"))
        r = self.server.api("plugin/list", {"query": "x"}, token=self.admin_q)
        self.assertError(r, 400, ("ERROR_INVALID_PARAMETER_TYPE", "ERROR_DB_QUERY"))
        self.assertEqual(list_snapshot(self.server, self.admin_q), before)

    def test_stat_distinct_and_aggregate(self):
        r = self.server.api("plugin/stat", {"query": {"distinct": "provider"}}, token=self.admin_q)
        b = self.assertOK(r)
        self.assertEqual(b["results"], ["atlassian", "aws", "google"])
        r = self.server.api("plugin/stat", {"query": {
            "filter": [{"k": "state", "v": "ENABLED", "o": "eq"}],
            "aggregate": [
                {"group": {"keys": [{"key": "provider", "name": "provider"}],
                           "fields": [{"name": "count", "operator": "count"}]}},
                {"sort": {"key": "provider"}}]}}, token=self.admin_q)
        b = self.assertOK(r)
        self.assertEqual(b["results"], [{"provider": "atlassian", "count": 2},
                                        {"provider": "aws", "count": 2}])
        r = self.server.api("plugin/stat", {"query": {}}, token=self.admin_q)
        self.assertError(r, 400, "ERROR_REQUIRED_PARAMETER", contains="aggregate")
        r = self.server.api("plugin/stat", {}, token=self.admin_q)
        self.assertError(r, 400, "ERROR_REQUIRED_PARAMETER", contains="query")

    # -- repositories ------------------------------------------------------------

    def test_repository_local(self):
        r = self.server.api("repository/list", {}, token=self.admin)
        repos = b = self.assertOK(r)
        locals_ = [x for x in b["results"] if x.get("repository_type") == "local"]
        self.assertEqual(len(locals_), 1, b)
        repo = locals_[0]
        self.assertEqual(repo["name"], "Local")
        self.assertRegex(repo["repository_id"], REPOSITORY_ID_RE)
        self.assertRegex(repo.get("created_at", ""), TIMESTAMP_RE)
        self.assertEqual(b["total_count"], len(b["results"]))
        # plugins carry the same id
        p = self.assertOK(self.server.api("plugin/list", {}, token=self.admin_q))["results"][0]
        self.assertEqual(p["repository_info"]["repository_id"], repo["repository_id"])
        # get by id
        got = self.assertOK(self.server.api("repository/get", {"repository_id": repo["repository_id"]},
                                            token=self.viewer))
        self.assertEqual(got["repository_id"], repo["repository_id"])
        self.assertEqual(got["name"], "Local")
        self.assertEqual(got["repository_type"], "local")
        self.assertError(self.server.api("repository/get", {"repository_id": "repo-000000000000"},
                                         token=self.admin), 404, "ERROR_NOT_FOUND")
        # list restricted by plugin repository_id
        b = self.assertOK(self.server.api("plugin/list", {"repository_id": repo["repository_id"]},
                                          token=self.admin_q))
        self.assertEqual(b["total_count"], 5)
        # a second local repository -> 409 (system), 403 for an admin
        r = self.server.api("repository/register", {"name": "Local2", "repository_type": "local"},
                            token=self.system)
        self.assertError(r, 409)
        r = self.server.api("repository/register", {"name": "Local3", "repository_type": "local"},
                            token=self.admin)
        self.assertError(r, 403, "ERROR_PERMISSION_DENIED")
        again = self.assertOK(self.server.api("repository/list", {}, token=self.admin))
        self.assertEqual(again, repos)
        self.assertEqual([x for x in again["results"] if x.get("repository_type") == "local"], [repo])


    # -- the published contract of today: docs, plugin_id, both route styles --

    def test_docs_register_update_get_list_only_stat(self):
        docs = {"en": {"overview": "Jira guide", "level": 2}, "ko": {"overview": "x"}}
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-docs-a", docs=docs)))
        self.assertEqual(p["docs"], docs)
        plain = self.assertOK(self.call("register", plugin_body("acme/plugin-docs-b")))
        self.assertEqual(plain["docs"], {}, "docs defaults to {}")
        got = self.assertOK(self.call("get", {"plugin_id": "plugin-docs-a", "only": ["docs"]}))
        self.assertEqual(got, {"docs": docs})
        upd = self.assertOK(self.call("update", {"plugin_id": "plugin-docs-b",
                                                 "docs": {"en": {"overview": "B", "level": 1}}}))
        self.assertEqual(upd["docs"], {"en": {"overview": "B", "level": 1}})
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-docs-b"}))["docs"],
                         {"en": {"overview": "B", "level": 1}})
        b = self.assertOK(self.call("list", {"query": {
            "filter": [{"k": "docs.en.overview", "v": "jira", "o": "contain"}],
            "only": ["plugin_id", "docs"]}}))
        self.assertEqual(b["results"], [{"plugin_id": "plugin-docs-a", "docs": docs}])
        st = self.assertOK(self.call("stat", {"query": {
            "filter": [{"k": "docs.en.level", "v": 1, "o": "gte"}],
            "group_by": ["docs.en.level"], "fields": {"n": {"operator": "count"}},
            "sort": [{"key": "level", "desc": True}]}}))
        self.assertEqual(st["results"], [{"level": 2, "n": 1}, {"level": 1, "n": 1}])
        for bad in ([], "en", 5, True):
            r = self.call("register", plugin_body("acme/plugin-docs-c", docs=bad))
            self.assertError(r, 400, "ERROR_INVALID_PARAMETER_TYPE", "(key = docs, type = object)")
            r = self.call("update", {"plugin_id": "plugin-docs-b", "docs": bad})
            self.assertError(r, 400, "ERROR_INVALID_PARAMETER_TYPE", "(key = docs, type = object)")
        self.assertError(self.call("get", {"plugin_id": "plugin-docs-c"}), 404, "ERROR_NO_PLUGIN")

    def _raw(self, verb, body, token=None):
        """(status, headers, raw body bytes) of one plugin call."""
        c = self.server.connect()
        try:
            c.request("POST", harness.API_PREFIX + "plugin/" + verb,
                      body=json.dumps(body).encode(),
                      headers={"Authorization": "Bearer " + (token or self.admin),
                               "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def test_get_bytes_equal_the_listed_view(self):
        # a local get answers the read model's ready bytes: exactly the
        # plugin's view as a list serialises it, defaults included
        self.assertOK(self.call("register", plugin_body("acme/plugin-bytes")))
        status, headers, got = self._raw("get", {"plugin_id": "plugin-bytes"})
        self.assertEqual(status, 200, got)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertEqual(headers.get("Cache-Control"), "no-store")
        self.assertIsNone(headers.get("X-Cache"))
        self.assertEqual(int(headers.get("Content-Length")), len(got))
        _, _, listed = self._raw("list", {"plugin_id": "plugin-bytes"})
        self.assertEqual(listed, b'{"results":[' + got + b'],"total_count":1}')
        doc = json.loads(got)
        self.assertEqual(doc["docs"], {})
        self.assertEqual(doc["repository_info"]["endpoint"], "")
        self.assertEqual(set(doc), set(self.call("get", {"plugin_id": "plugin-bytes",
                                                         "only": None}).body))
        _, _, null_only = self._raw("get", {"plugin_id": "plugin-bytes", "only": None})
        self.assertEqual(null_only, got)
        # a projection still goes through the engine
        _, _, projected = self._raw("get", {"plugin_id": "plugin-bytes", "only": ["name"]})
        self.assertEqual(json.loads(projected), {"name": doc["name"]})
        # an update is seen by the next get
        self.assertOK(self.call("update", {"plugin_id": "plugin-bytes", "name": "Renamed"}))
        _, _, after = self._raw("get", {"plugin_id": "plugin-bytes"})
        self.assertEqual(json.loads(after)["name"], "Renamed")

    def test_client_chosen_plugin_id(self):
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-chosen-img",
                                                            plugin_id="my-chosen.id_1")))
        self.assertEqual((p["plugin_id"], p["image"]), ("my-chosen.id_1", "acme/plugin-chosen-img"))
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "my-chosen.id_1"}))["image"],
                         "acme/plugin-chosen-img")
        self.assertError(self.call("get", {"plugin_id": "plugin-chosen-img"}), 404,
                         "ERROR_NO_PLUGIN")
        # "" counts as absent: derived from image
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-chosen-two", plugin_id="")))
        self.assertEqual(p["plugin_id"], "plugin-chosen-two")
        before = list_snapshot(self.server, self.admin)
        # a clash with a chosen id or with a derived id: 409, nothing changed
        for body in (plugin_body("acme/other-image", plugin_id="my-chosen.id_1"),
                     plugin_body("acme/other-image", plugin_id="plugin-chosen-two")):
            self.assertError(self.call("register", body), 409, "ERROR_SAVE_UNIQUE_VALUES",
                             "key = plugin_id")
        # another domain may use the same id
        r = self.call("register", plugin_body("acme/x", plugin_id="my-chosen.id_1"),
                      token=self.admin_e)
        self.assertEqual(self.assertOK(r)["plugin_id"], "my-chosen.id_1")
        self.assertOK(self.call("deregister", {"plugin_id": "my-chosen.id_1"}, token=self.admin_e))
        for bad in ("Upper", "a/b", "a" * 41, "-lead", "a..b", "sp ace", "a:1"):
            r = self.call("register", plugin_body("acme/plugin-chosen-bad", plugin_id=bad))
            self.assertError(r, 400, "ERROR_INVALID_PARAMETER", "key = plugin_id")
        self.assertError(self.call("register", plugin_body("acme/x", plugin_id=7)), 400,
                         "ERROR_INVALID_PARAMETER_TYPE", "key = plugin_id")
        self.assertEqual(list_snapshot(self.server, self.admin), before)
        # a chosen id as long as a derived id may be
        p = self.assertOK(self.call("register", plugin_body("acme/y", plugin_id="b" * 40)))
        self.assertEqual(p["plugin_id"], "b" * 40)

    def test_gateway_routes_are_the_same_routes(self):
        gw = lambda verb, body, token=self.admin: self.server.request(  # noqa: E731
            "/repository/plugin/" + verb, body, token=token)
        p = self.assertOK(gw("register", plugin_body("acme/plugin-gw-one", docs={"en": {}})))
        self.assertPluginInfo(p)
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-gw-one"})), p)
        self.assertEqual(self.assertOK(gw("get", {"plugin_id": "plugin-gw-one"})), p)
        self.assertEqual(self.assertOK(gw("list", {"plugin_id": "plugin-gw-one"}))["results"], [p])
        self.assertEqual(self.assertOK(gw("disable", {"plugin_id": "plugin-gw-one"}))["state"],
                         "DISABLED")
        self.assertEqual(self.assertOK(gw("enable", {"plugin_id": "plugin-gw-one"}))["state"],
                         "ENABLED")
        self.assertEqual(self.assertOK(gw("update", {"plugin_id": "plugin-gw-one",
                                                     "name": "GW"}))["name"], "GW")
        # same auth and errors
        self.assertError(gw("register", plugin_body("acme/plugin-gw-two"), token=None), 401,
                         "ERROR_AUTHENTICATE_FAILURE")
        self.assertError(gw("register", plugin_body("acme/plugin-gw-two"), token=self.viewer), 403,
                         "ERROR_PERMISSION_DENIED")
        self.assertError(gw("register", plugin_body("acme/plugin-gw-one")), 409,
                         "ERROR_SAVE_UNIQUE_VALUES")
        self.assertError(gw("get", {"plugin_id": "nope"}), 404, "ERROR_NO_PLUGIN")
        self.assertError(gw("get_versions", {"plugin_id": "plugin-gw-one"}), 404,
                         "ERROR_UNKNOWN_ROUTE")
        self.assertError(self.server.request("/repository/plugin/get", None, method="GET"), 405,
                         "ERROR_METHOD_NOT_ALLOWED")
        self.assertError(self.server.request("/repository/nothing/get", {}), 404,
                         "ERROR_UNKNOWN_ROUTE")
        b = self.assertOK(self.server.request("/repository/repository/list", {},
                                              token=self.viewer))
        (local,) = [x for x in b["results"] if x["repository_type"] == "local"]
        self.assertEqual(local["endpoint"], "")
        self.assertOK(gw("deregister", {"plugin_id": "plugin-gw-one"}))
        # the same audit line as the versioned route (the harness reads the
        # log on its own thread: wait for the last line)
        self.assertTrue(self.server.wait_log("audit plugin.deregister id=plugin-gw-one "
                                             "domain=domain-a "), self.server.describe())
        log = self.server.log()
        self.assertRegex(log, r"audit plugin\.register id=plugin-gw-one domain=domain-a ")
        self.assertRegex(log, r"audit plugin\.deregister id=plugin-gw-one domain=domain-a ")


if __name__ == "__main__":
    unittest.main()

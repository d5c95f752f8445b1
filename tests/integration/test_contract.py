"""The published repository v1 contract (SPEC 14), checked end to end.

A real upstream repod (U) publishes a catalog (public domain "market"); a
real mirror (M) registers U as a remote repository and holds local plugins
of its own.  Every plugin and repository route is called on M in BOTH route
styles, /repository/v1/<resource>/<verb> and /repository/<resource>/<verb>,
with answers from the local tier and from the mirrored tier, by system,
admin, viewer and anonymous callers.  Every 200 answer is validated with
jsonschema (Draft 2020-12) against the response schema that the published
OpenAPI document (tests/data/contract/, copied unchanged) gives its route,
`$ref`s resolved inside that document, after the document's known slip is
fixed (list `results` carry `type: array` + `items` and a sibling `$ref`;
the sibling `$ref` is dropped).  Every error answer is validated against
the error shape repod documents (SPEC 2, docs/api.md).

Every dashboard-template route is checked the same way (local tier only).

Routes the published document does not list (plugin stat, dashboard-template
stat, repository
register / update / deregister / get / stat / sync) are checked against the
schema docs/api.md gives them: RepositoryInfo for the repository answers
that are one repository, a {results: [...]} object for stat.

A version list needs a registry: a local `docker-registry` (as in
test_versions) when installed, else those checks are skipped.
"""

import copy
import json
import os
import shutil
import tempfile
import unittest

import jsonschema

import harness
import registry_util
from harness import RepodTestCase, Server, plugin_body

DOC_PATH = os.path.join(harness.SOURCE_DIR, "tests", "data", "contract",
                        "cloudforet-repository-v1-openapi.json")
STYLES = ("/repository/v1/", "/repository/")
IMAGE_TAGS = ["1.0.0", "1.1.0", "latest"]

# The error shape repod answers for every failure (SPEC 2).
ERROR_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["detail"],
    "additionalProperties": False,
    "properties": {"detail": {
        "type": "object",
        "required": ["code", "message"],
        "additionalProperties": False,
        "properties": {"code": {"type": "string", "pattern": "^ERROR_[A-Z_]+$"},
                       "message": {"type": "string"}},
    }},
}

# Answers of routes the published document leaves out (docs/api.md).
STAT_SCHEMA = {"type": "object", "required": ["results"],
               "properties": {"results": {"type": "array"},
                              "total_count": {"type": "integer"}}}
EMPTY_SCHEMA = {"type": "object", "maxProperties": 0}
SYNC_SCHEMA = {"type": "object", "required": ["repository_id"],
               "properties": {"repository_id": {"type": "string"},
                              "plugins": {"type": "integer"}}}


def fix_slip(node):
    """Drops the sibling $ref next to type: array + items, everywhere."""
    if isinstance(node, dict):
        if node.get("type") == "array" and "items" in node and "$ref" in node:
            del node["$ref"]
        for v in node.values():
            fix_slip(v)
    elif isinstance(node, list):
        for v in node:
            fix_slip(v)
    return node


def load_document(fixed=True):
    with open(DOC_PATH) as f:
        doc = json.load(f)
    return fix_slip(doc) if fixed else doc


def validator(doc, schema):
    """A Draft 2020-12 validator of schema whose '#/components/...' refs
    resolve inside doc (the schema is embedded in a copy of it)."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"]}
    root.update(schema)
    return jsonschema.Draft202012Validator(root)


def component(doc, name):
    return validator(doc, {"$ref": "#/components/schemas/" + name})


def route_schema(doc, resource, verb):
    """The published 200 schema of POST /repository/<resource>/<verb>, or
    None when the document lists the route without a body schema; KeyError
    when it does not list the route."""
    op = doc["paths"]["/repository/%s/%s" % (resource, verb)]["post"]
    content = op["responses"]["200"].get("content", {})
    return content.get("application/json", {}).get("schema")


def errors_of(v, body):
    return sorted("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                  for e in v.iter_errors(body))


_reg_skip = registry_util.available()
R = {}


def setUpModule():
    R["servers"] = []
    R["dir"] = tempfile.mkdtemp(prefix="repod-contract-")
    try:
        regs = {}
        if not _reg_skip:
            R["registry"] = reg = registry_util.Registry(R["dir"], name="contract").start()
            for image in ("market/mk-one", "market/mk-two", "d1/loc-one", "d1/loc-two"):
                reg.push_image(image, IMAGE_TAGS)
            regs[reg.host] = {"api_url": reg.api_url, "timeout_ms": 3000,
                              "ca_file": os.path.join(harness.cert_dir(), "ca.crt")}
        over = {"registries": regs} if regs else {}

        up = Server(start=False, name="contract-U",
                    overrides=dict(over, auth={"public_domains": ["market"]}))
        R["servers"].append(up)
        R["u_admin"] = up.make_token("market", "admin")
        up.start()
        R["up"] = up

        m = Server(start=False, name="contract-M", overrides=over or None)
        R["servers"].append(m)
        R["system"] = m.make_token("root", "system")
        R["admin"] = m.make_token("d1", "admin")
        R["viewer"] = m.make_token("d1", "viewer")
        m.start()
        R["mirror"] = m

        def harbor(image, **extra):
            if _reg_skip:
                return plugin_body(image, **extra)
            return plugin_body(image, registry_type="HARBOR",
                               registry_url=R["registry"].host, **extra)

        R["harbor"] = harbor
        for server, token, body in (
                (up, R["u_admin"], harbor("market/mk-one", docs={"en": {"title": "One"}})),
                (up, R["u_admin"], harbor("market/mk-two", plugin_id="market-chosen-two")),
                (m, R["admin"], harbor("d1/loc-one", docs={"ko": {"title": "Local"}})),
                (m, R["admin"], harbor("d1/loc-two", plugin_id="local-chosen-two"))):
            r = server.api("plugin/register", body, token=token)
            if r.status != 200:
                raise harness.ServerError("seeding failed: %r%s" % ((r.status, r.body),
                                                                    server.describe()))
        r = up.api("repository/list", {"repository_type": "local"})
        R["u_local_id"] = r.body["results"][0]["repository_id"]
        r = m.api("repository/list", {"repository_type": "local"})
        R["m_local_id"] = r.body["results"][0]["repository_id"]
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for s in reversed(R.get("servers", [])):
        try:
            if s.running():
                s.stop()
        finally:
            s.close()
    if "registry" in R:
        R["registry"].stop()
    shutil.rmtree(R.get("dir", ""), ignore_errors=True)


class ValidatorIsNotVacuousTest(unittest.TestCase):
    """The checks below could pass by accident if the validator accepted
    anything: show that it rejects broken answers."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_document()

    def good_plugin(self):
        return {"plugin_id": "p", "name": "n", "state": "ENABLED", "resource_type": "a.B",
                "image": "x/p", "provider": "", "registry_type": "DOCKER_HUB",
                "registry_url": "registry.hub.docker.com", "registry_config": {},
                "capability": {}, "labels": [], "tags": {}, "docs": {}, "domain_id": "d",
                "repository_info": {"repository_id": "repo-000000000001", "name": "Local",
                                    "repository_type": "local", "endpoint": ""},
                "created_at": "2022-01-01T08:02:38.094Z", "updated_at": "2022-01-01T08:02:38.094Z"}

    def test_plugin_info_without_docs_or_endpoint_is_rejected(self):
        v = component(self.doc, "PluginInfo")
        good = self.good_plugin()
        self.assertEqual(errors_of(v, good), [])
        no_docs = copy.deepcopy(good)
        del no_docs["docs"]
        self.assertTrue(any("'docs' is a required property" in e for e in errors_of(v, no_docs)))
        no_endpoint = copy.deepcopy(good)
        del no_endpoint["repository_info"]["endpoint"]
        self.assertTrue(errors_of(v, no_endpoint))
        wrong = copy.deepcopy(good)
        wrong["docs"] = []
        self.assertTrue(errors_of(v, wrong))
        lst = validator(self.doc, route_schema(self.doc, "plugin", "list"))
        self.assertEqual(errors_of(lst, {"results": [good], "total_count": 1}), [])
        self.assertTrue(errors_of(lst, {"results": [no_docs], "total_count": 1}))
        self.assertTrue(errors_of(lst, {"results": [good]}))

    def test_repository_info_without_endpoint_is_rejected(self):
        v = validator(self.doc, route_schema(self.doc, "repository", "list"))
        repo = {"repository_id": "repo-000000000001", "name": "Local", "repository_type": "local",
                "endpoint": ""}
        self.assertEqual(errors_of(v, {"results": [repo], "total_count": 1}), [])
        del repo["endpoint"]
        self.assertTrue(errors_of(v, {"results": [repo], "total_count": 1}))

    def test_the_slip_fix_is_needed_and_applied(self):
        raw = load_document(fixed=False)
        body = {"results": [self.good_plugin()], "total_count": 1}
        self.assertTrue(errors_of(validator(raw, route_schema(raw, "plugin", "list")), body),
                        "the unfixed document rejects every list answer")
        self.assertEqual(errors_of(validator(self.doc, route_schema(self.doc, "plugin", "list")),
                                   body), [])

    def test_error_shape_is_checked(self):
        v = jsonschema.Draft202012Validator(ERROR_SCHEMA)
        self.assertEqual(errors_of(v, {"detail": {"code": "ERROR_NOT_FOUND", "message": "m"}}), [])
        for bad in ({"detail": "x"}, {"detail": {"code": "NOT_FOUND", "message": "m"}},
                    {"code": "ERROR_X", "message": "m"}, {"detail": {"code": "ERROR_X"}}):
            self.assertTrue(errors_of(v, bad), bad)


class ContractTest(RepodTestCase):
    """Every route, both styles, both tiers: answers validate."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_document()
        cls.server = R["mirror"]
        cls.error_v = jsonschema.Draft202012Validator(ERROR_SCHEMA)
        cls.checked = set()  # (style, resource, verb) with a validated 200

    def call(self, style, resource, verb, body, token):
        return self.server.request(style + resource + "/" + verb, body, token=token)

    def ok(self, style, resource, verb, body, token, schema=None):
        """Calls the route, wants 200, validates the body; returns it."""
        r = self.call(style, resource, verb, body, token)
        b = self.assertOK(r, msg="%s%s/%s %r" % (style, resource, verb, body))
        if schema is None:
            try:
                schema = route_schema(self.doc, resource, verb)
            except KeyError:
                self.fail("%s/%s: no schema given and none published" % (resource, verb))
        if schema is not None:
            v = validator(self.doc, schema)
            self.assertEqual(errors_of(v, b), [],
                             "%s%s/%s answer does not validate: %r" % (style, resource, verb, b))
        self.checked.add((style, resource, verb))
        return b

    def err(self, style, resource, verb, body, token, status, code):
        r = self.call(style, resource, verb, body, token)
        self.assertError(r, status, code)
        self.assertEqual(errors_of(self.error_v, r.body), [], r.body)
        return r.body

    def need_registry(self):
        if _reg_skip:
            self.skipTest(_reg_skip)

    def test_1_plugin_routes_both_styles_both_tiers(self):
        adm, view, sysm = R["admin"], R["viewer"], R["system"]
        remote_body = {"name": "Market", "repository_type": "remote",
                       "endpoint": R["up"].endpoint, "upstream": {"ca_file": self.server.ca_file}}
        repo_info = {"$ref": "#/components/schemas/RepositoryInfo"}
        for n, style in enumerate(STYLES):
            with self.subTest(style=style):
                # the remote tier: register, sync (system)
                reg = self.ok(style, "repository", "register", remote_body, sysm, repo_info)
                self.assertEqual(reg["repository_id"], R["u_local_id"])
                self.ok(style, "repository", "sync", {"repository_id": R["u_local_id"]}, sysm,
                        SYNC_SCHEMA)
                # writes on the local tier
                pid = "contract-%d" % n
                p = self.ok(style, "plugin", "register",
                            R["harbor"]("d1/loc-one", plugin_id=pid, docs={"en": {"a": n}}), adm)
                self.assertEqual((p["plugin_id"], p["docs"]), (pid, {"en": {"a": n}}))
                self.ok(style, "plugin", "update", {"plugin_id": pid, "docs": {"en": {"b": 1}},
                                                    "name": "Contract"}, adm)
                self.assertEqual(self.ok(style, "plugin", "disable", {"plugin_id": pid},
                                         adm)["state"], "DISABLED")
                self.assertEqual(self.ok(style, "plugin", "enable", {"plugin_id": pid},
                                         adm)["state"], "ENABLED")
                # reads from both tiers, by every kind of caller
                for who, tok in (("admin", adm), ("viewer", view), ("system", sysm)):
                    for plugin_id in ("loc-one", "local-chosen-two", "mk-one",
                                      "market-chosen-two"):
                        if who == "system" and plugin_id.startswith("loc"):
                            continue  # another domain's local plugin
                        g = self.ok(style, "plugin", "get", {"plugin_id": plugin_id}, tok)
                        self.assertEqual(g["plugin_id"], plugin_id)
                    b = self.ok(style, "plugin", "list", {}, tok)
                    self.assertGreaterEqual(b["total_count"], 2)
                    self.ok(style, "plugin", "list", {"repository_id": R["u_local_id"],
                                                      "query": {"sort": [{"key": "name",
                                                                          "desc": True}]}}, tok)
                    self.ok(style, "plugin", "stat", {"query": {"group_by": ["repository_info.name"],
                                                                "fields": {"n": {"operator":
                                                                                 "count"}}}},
                            tok, STAT_SCHEMA)
                for plugin_id in ("mk-one", "market-chosen-two"):
                    g = self.ok(style, "plugin", "get", {"plugin_id": plugin_id}, None)
                    self.assertEqual(g["repository_info"]["repository_type"], "remote")
                    self.assertEqual(g["repository_info"]["endpoint"], "")
                mk = self.ok(style, "plugin", "get", {"plugin_id": "mk-one"}, adm)
                self.assertEqual(mk["docs"], {"en": {"title": "One"}}, "docs mirrored")
                self.ok(style, "plugin", "list", {}, None)
                self.ok(style, "plugin", "list", {"query": {"filter": [
                    {"k": "docs.en.title", "v": "One", "o": "eq"}]}}, None)
                self.ok(style, "plugin", "stat", {"query": {"distinct": "plugin_id"}}, None,
                        STAT_SCHEMA)
                if not _reg_skip:
                    for plugin_id, tok in ((pid, adm), ("mk-one", adm), ("mk-one", None),
                                           ("market-chosen-two", view)):
                        v = self.ok(style, "plugin", "get-versions", {"plugin_id": plugin_id}, tok)
                        self.assertEqual(v["results"], ["1.1.0", "1.0.0", "latest"])
                # the errors of these routes keep the documented shape
                self.err(style, "plugin", "get", {"plugin_id": "nope"}, adm, 404, "ERROR_NO_PLUGIN")
                self.err(style, "plugin", "get-versions", {"plugin_id": "nope"}, adm, 404,
                         "ERROR_NO_PLUGIN")
                self.err(style, "plugin", "list", {"query": {"filter": [{"k": "a", "o": "bad",
                                                                        "v": 1}]}}, adm, 400,
                         "ERROR_DB_QUERY")
                self.err(style, "plugin", "stat", {}, adm, 400, "ERROR_REQUIRED_PARAMETER")
                self.err(style, "plugin", "register", R["harbor"]("d1/loc-one", plugin_id=pid),
                         adm, 409, "ERROR_SAVE_UNIQUE_VALUES")
                self.err(style, "plugin", "register", {"docs": "x"}, adm, 400,
                         "ERROR_INVALID_PARAMETER_TYPE")
                self.err(style, "plugin", "update", {"plugin_id": "mk-one", "name": "x"}, adm, 409,
                         "ERROR_NOT_LOCAL_PLUGIN")
                self.err(style, "plugin", "enable", {"plugin_id": "nope"}, adm, 404,
                         "ERROR_NOT_FOUND")
                self.err(style, "plugin", "disable", {"plugin_id": "nope"}, view, 403,
                         "ERROR_PERMISSION_DENIED")
                self.err(style, "plugin", "deregister", {"plugin_id": pid}, None, 401,
                         "ERROR_AUTHENTICATE_FAILURE")
                self.assertEqual(self.ok(style, "plugin", "deregister", {"plugin_id": pid}, adm),
                                 {})
                # repository routes
                for tok in (sysm, adm, view, None):
                    b = self.ok(style, "repository", "list", {}, tok)
                    self.assertEqual(b["total_count"], 2)
                    for repo in b["results"]:
                        if repo["repository_type"] == "local" or tok is None:
                            self.assertEqual(repo["endpoint"], "", repo)
                        else:
                            self.assertEqual(repo["endpoint"], R["up"].endpoint)
                    for rid in (R["m_local_id"], R["u_local_id"]):
                        self.ok(style, "repository", "get", {"repository_id": rid}, tok, repo_info)
                    self.ok(style, "repository", "stat", {"query": {"distinct": "repository_type"}},
                            tok, STAT_SCHEMA)
                self.ok(style, "repository", "list", {"repository_type": "local"}, None)
                self.ok(style, "repository", "update", {"repository_id": R["u_local_id"],
                                                        "priority": 7}, sysm, repo_info)
                self.err(style, "repository", "get", {"repository_id": "repo-000000000000"}, sysm,
                         404, "ERROR_NOT_FOUND")
                self.err(style, "repository", "register", remote_body, adm, 403,
                         "ERROR_PERMISSION_DENIED")
                self.err(style, "repository", "sync", {"repository_id": R["m_local_id"]}, sysm,
                         400, "ERROR_INVALID_PARAMETER")
                self.assertEqual(self.ok(style, "repository", "deregister",
                                         {"repository_id": R["u_local_id"]}, sysm,
                                         EMPTY_SCHEMA), {})
                # routes that do not exist, in this style
                r = self.server.request(style + "plugin/get_versions", {}, token=adm)
                self.assertError(r, 404, "ERROR_UNKNOWN_ROUTE")
                self.assertEqual(errors_of(self.error_v, r.body), [])
                r = self.server.request(style + "plugin/get", None, token=adm, method="GET")
                self.assertError(r, 405, "ERROR_METHOD_NOT_ALLOWED")
                self.assertEqual(errors_of(self.error_v, r.body), [])

    def test_1b_dashboard_template_routes_both_styles(self):
        adm, vw = R["admin"], R["viewer"]
        res = "dashboard-template"
        for i, style in enumerate(STYLES):
            chosen = "contract-dash-%d" % i
            t = self.ok(style, res, "register",
                        {"template_id": chosen, "name": "Dash %d" % i, "template_type": "SINGLE",
                         "dashboards": [{"name": "d", "layouts": []}], "labels": ["a"],
                         "tags": {"k": "v"}}, adm)
            self.assertEqual(t["template_id"], chosen)
            g = self.ok(style, res, "register", {"name": "Generated %d" % i}, adm)
            self.ok(style, res, "get", {"template_id": chosen}, vw)
            self.ok(style, res, "get", {"template_id": chosen, "repository_id": R["m_local_id"]},
                    vw)
            self.ok(style, res, "update", {"template_id": chosen, "name": "Renamed"}, adm)
            self.ok(style, res, "disable", {"template_id": chosen}, adm)
            self.ok(style, res, "enable", {"template_id": chosen}, adm)
            b = self.ok(style, res, "list", {}, vw)
            self.assertGreaterEqual(b["total_count"], 2)
            self.ok(style, res, "list", {"template_type": "SINGLE", "state": "ENABLED",
                                         "name": "Renamed", "template_id": chosen,
                                         "repository_id": R["m_local_id"],
                                         "query": {"sort": [{"key": "name"}]}}, vw)
            self.ok(style, res, "list", {"query": {"count_only": True}}, vw)
            self.ok(style, res, "stat", {"query": {"distinct": "template_type"}}, vw,
                    schema=STAT_SCHEMA)
            self.ok(style, res, "deregister", {"template_id": g["template_id"]}, adm,
                    schema=EMPTY_SCHEMA)
            self.err(style, res, "register", {"template_id": chosen, "name": "x"}, adm, 409,
                     "ERROR_SAVE_UNIQUE_VALUES")
            self.err(style, res, "register", {"name": "x", "labels": "x"}, adm, 400,
                     "ERROR_INVALID_PARAMETER_TYPE")
            self.err(style, res, "get", {"template_id": "nope"}, vw, 404, "ERROR_NOT_FOUND")
            self.err(style, res, "update", {"template_id": chosen, "name": "x"}, vw, 403,
                     "ERROR_PERMISSION_DENIED")

    def test_2_every_published_route_was_served_in_both_styles(self):
        if not self.checked:
            self.skipTest("runs after test_1")
        published = set()
        for path in self.doc["paths"]:
            if not path.startswith("/repository/"):
                continue  # the document also lists a security scheme here
            _, _, resource, verb = path.split("/")
            if resource in ("plugin", "repository", "dashboard-template"):
                published.add((resource, verb))
        if _reg_skip:
            published.discard(("plugin", "get-versions"))
        for style in STYLES:
            for resource, verb in sorted(published):
                self.assertIn((style, resource, verb), self.checked,
                              "%s%s/%s was not checked" % (style, resource, verb))


if __name__ == "__main__":
    unittest.main()

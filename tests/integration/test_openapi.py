"""docs/openapi.json: the OpenAPI 3.1 document served at GET /openapi.json.

1. The document is OpenAPI-shaped: structural checks of the 3.1 document
   (Debian ships no OpenAPI meta-schema), every schema a valid Draft 2020-12
   schema, every `$ref` resolvable, operationIds unique.
2. Its routes are the server's routes: the (method, path) pairs of the
   document equal the rows of the route table in src/api/dispatch.c (read
   from the source, both spellings) plus the operational endpoints that
   src/edge/server.c answers.  Operations marked `x-repod-since:
   dashboard-template` may be missing from the table (a build without that
   resource); then the running server must answer them 404
   ERROR_UNKNOWN_ROUTE and they are skipped, else they are checked like the
   rest.  Roles and anonymous access in the document match the table; the
   per-status error codes match src/core/status.c.
3. Every verb is called on a real mirror (with a real upstream and a fake
   OCI registry) in both spellings, with successes and errors (400, 401,
   403, 404, 409, 413, 502, 503 ...), and every answer is validated against
   the document's schema for that operation and status ($refs resolved);
   a status the operation does not document fails.
4. GET /openapi.json serves exactly docs/openapi.json with an ETag,
   Cache-Control and 304 on If-None-Match, without a token.
"""

import http.server
import hashlib
import json
import os
import re
import unittest

import jsonschema

import harness
from harness import RepodTestCase, Server, plugin_body

DOC_PATH = os.path.join(harness.SOURCE_DIR, "docs", "openapi.json")
DISPATCH_C = os.path.join(harness.SOURCE_DIR, "src", "api", "dispatch.c")
SERVER_C = os.path.join(harness.SOURCE_DIR, "src", "edge", "server.c")
STATUS_C = os.path.join(harness.SOURCE_DIR, "src", "core", "status.c")
STYLES = ("/repository/v1/", "/repository/")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_BODY = 2048
PENDING = "x-repod-since"

ROW_RE = re.compile(r'\{\s*"([a-z-]+)",\s*"([a-z-]+)",\s*\w+,\s*AUTH_ROLE_([A-Z]+),\s*([01]),')
OPS_RE = re.compile(r'strcmp\(path, "(/[a-z.]+)"\) == 0')
STATUS_RE = re.compile(r'\{"(ERROR_[A-Z_]+)", (\d+)\}')


def load_doc():
    with open(DOC_PATH) as f:
        return json.load(f)


def dispatcher_routes():
    """{(resource, verb): (min_role, anonymous)} from the route table."""
    with open(DISPATCH_C) as f:
        text = f.read()
    table = text[text.index("routes[] = {"):]
    table = table[:table.index("};")]
    return {(m.group(1), m.group(2)): (m.group(3).lower(), m.group(4) == "1")
            for m in ROW_RE.finditer(table)}


def operational_paths():
    with open(SERVER_C) as f:
        return set(OPS_RE.findall(f.read()))


def resolve(doc, node):
    """Follows a local $ref (one level at a time) to its target."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def schema_validator(doc, schema):
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"]}
    root.update(schema)
    return jsonschema.Draft202012Validator(root)


def errors_of(v, body):
    return sorted("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                  for e in v.iter_errors(body))


def api_ops(doc):
    """{(resource, verb, style): operation} of the document's API paths."""
    out = {}
    for path, item in doc["paths"].items():
        for style in STYLES:
            rest = path[len(style):]
            if path.startswith(style) and rest.count("/") == 1:
                resource, verb = rest.split("/")
                out[(resource, verb, style)] = item.get("post")
                break
    return out


# --------------------------------------------------------------------------
# a fake OCI registry: tags of images, garbage for images under bad/

class FakeRegistry(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        m = re.match(r"^/v2/(.+)/tags/list", self.path)
        if m and m.group(1).startswith("bad/"):
            data = b"not json"
        elif m:
            data = json.dumps({"name": m.group(1), "tags": ["1.0.0", "1.1.0", "latest"]}).encode()
        else:
            data = b"{}"
        self.send_response(200 if m else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


R = {}


def setUpModule():
    R["servers"] = []
    try:
        reg = harness.serve_https(FakeRegistry)
        R["reg"] = reg
        host = "127.0.0.1:%d" % reg.server_address[1]
        R["reg_host"] = host
        regs = {host: {"api_url": "https://" + host, "timeout_ms": 3000,
                       "ca_file": os.path.join(harness.cert_dir(), "ca.crt")}}
        up = Server(start=False, name="openapi-U",
                    overrides={"registries": regs, "auth": {"public_domains": ["market"]}})
        R["servers"].append(up)
        u_admin = up.make_token("market", "admin")
        up.start()
        for image in ("market/mk-one", "market/mk-two"):
            r = up.api("plugin/register", plugin_body(image, registry_type="HARBOR",
                                                      registry_url=host), token=u_admin)
            if r.status != 200:
                raise harness.ServerError("seeding failed: %r%s" % ((r.status, r.body),
                                                                    up.describe()))
        R["up"] = up
        m = Server(start=False, name="openapi-M",
                   overrides={"registries": regs, "limits": {"max_body_bytes": MAX_BODY}})
        R["servers"].append(m)
        R["system"] = m.make_token("root", "system")
        R["admin"] = m.make_token("d1", "admin")
        R["viewer"] = m.make_token("d1", "viewer")
        m.start()
        R["mirror"] = m
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
    if "reg" in R:
        harness.stop_https(R["reg"])


class DocumentShapeTest(unittest.TestCase):
    """The document is OpenAPI 3.1 shaped and internally consistent."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()

    def walk_refs(self, node, where="#"):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    self.assertIsInstance(v, str, where)
                    try:
                        resolve(self.doc, {"$ref": v})
                    except (KeyError, AssertionError):
                        self.fail("unresolvable $ref %s at %s" % (v, where))
                else:
                    self.walk_refs(v, where + "/" + k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.walk_refs(v, "%s/%d" % (where, i))

    def test_top_level(self):
        d = self.doc
        self.assertRegex(d["openapi"], r"^3\.1\.\d+$")
        self.assertIsInstance(d["info"]["title"], str)
        self.assertIsInstance(d["info"]["version"], str)
        self.assertTrue(set(d).issubset({"openapi", "info", "jsonSchemaDialect", "servers", "paths",
                                         "webhooks", "components", "security", "tags",
                                         "externalDocs"}), sorted(d))
        schemes = d["components"]["securitySchemes"]
        self.assertEqual(schemes["bearerAuth"], {**schemes["bearerAuth"], "type": "http",
                                                 "scheme": "bearer"})

    def test_operations(self):
        ids = set()
        schemes = set(self.doc["components"]["securitySchemes"])
        for path, item in self.doc["paths"].items():
            self.assertTrue(path.startswith("/"), path)
            for method, op in item.items():
                self.assertIn(method, HTTP_METHODS + ("summary", "description", "parameters"), path)
                if method not in HTTP_METHODS:
                    continue
                where = "%s %s" % (method.upper(), path)
                self.assertNotIn(op["operationId"], ids, where)
                ids.add(op["operationId"])
                self.assertTrue(op["responses"], where)
                for status, resp in op["responses"].items():
                    self.assertRegex(status, r"^([1-5]\d\d|default)$", where)
                    resp = resolve(self.doc, resp)
                    self.assertIsInstance(resp.get("description"), str, where + " " + status)
                    for ctype, media in resp.get("content", {}).items():
                        self.assertIn("schema", media, "%s %s %s" % (where, status, ctype))
                for req in op.get("security", []):
                    self.assertTrue(set(req).issubset(schemes), where)
                if "requestBody" in op:
                    self.assertIn("content", resolve(self.doc, op["requestBody"]), where)

    def test_refs_resolve_and_schemas_are_valid(self):
        self.walk_refs(self.doc)
        meta = jsonschema.Draft202012Validator
        for name, schema in self.doc["components"]["schemas"].items():
            with self.subTest(schema=name):
                meta.check_schema(schema)

    def test_error_codes_match_the_status_table(self):
        with open(STATUS_C) as f:
            table = {}
            for code, status in STATUS_RE.findall(f.read()):
                table.setdefault(int(status), set()).add(code)
        schemas = self.doc["components"]["schemas"]
        documented = {}
        for name, s in schemas.items():
            m = re.match(r"^Error(\d{3})$", name)
            if m:
                documented[int(m.group(1))] = set(
                    s["allOf"][1]["properties"]["detail"]["properties"]["code"]["enum"])
        self.assertEqual(documented, table)
        for st in table:
            self.assertIn("E%d" % st, self.doc["components"]["responses"])


class RouteSetTest(unittest.TestCase):
    """The document's routes are the dispatcher's routes (+ operational)."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.table = dispatcher_routes()
        cls.server = R["mirror"]

    def test_table_was_read(self):
        self.assertGreaterEqual(len(self.table), 16, "route table not parsed: %r" % self.table)
        self.assertIn(("plugin", "get-versions"), self.table)

    def test_every_route_is_documented_and_every_operation_is_served(self):
        ops = api_ops(self.doc)
        for (resource, verb), (role, anon) in sorted(self.table.items()):
            for style in STYLES:
                op = ops.get((resource, verb, style))
                self.assertIsNotNone(op, "POST %s%s/%s is served but not documented" %
                                     (style, resource, verb))
                self.assertEqual(op["x-repod-min-role"], role, (resource, verb))
                self.assertEqual(op["x-repod-anonymous"], anon, (resource, verb))
                self.assertEqual({} in op["security"], anon, (resource, verb))
        for (resource, verb, style), op in sorted(ops.items()):
            path = "%s%s/%s" % (style, resource, verb)
            self.assertEqual([m for m in self.doc["paths"][path] if m in HTTP_METHODS], ["post"],
                             path)
            r = self.server.request(path, {})
            unknown = (r.status == 404 and isinstance(r.body, dict) and
                       r.body["detail"]["code"] == "ERROR_UNKNOWN_ROUTE")
            if (resource, verb) in self.table:
                self.assertFalse(unknown, path)
            else:
                self.assertIn(PENDING, op, "POST %s is documented but not in the route table" %
                              path)
                self.assertTrue(unknown, "POST %s answers, yet is not in the route table" % path)

    def test_operational_paths(self):
        served = operational_paths()
        self.assertIn("/openapi.json", served)
        documented = {p for p in self.doc["paths"] if not p.startswith("/repository/")}
        self.assertEqual(documented, served)
        for p in served:
            self.assertEqual(list(self.doc["paths"][p]), ["get"], p)
            self.assertEqual(self.doc["paths"][p]["get"]["security"], [{}], p)


class ServedDocumentTest(RepodTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = R["mirror"]

    def test_openapi_json_is_the_embedded_document(self):
        with open(DOC_PATH, "rb") as f:
            raw = f.read()
        r = self.server.request("/openapi.json", method="GET")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertEqual(json.dumps(r.body, sort_keys=True), json.dumps(json.loads(raw),
                                                                        sort_keys=True),
                         "the binary embeds another edition of docs/openapi.json: rebuild")
        etag = r.headers["ETag"]
        self.assertEqual(etag, '"%s"' % hashlib.sha256(raw).hexdigest())
        self.assertIn("max-age", r.headers["Cache-Control"])
        r2 = self.server.request("/openapi.json", method="GET", headers={"If-None-Match": etag})
        self.assertEqual((r2.status, r2.body, r2.headers["ETag"]), (304, b"", etag))
        r3 = self.server.request("/openapi.json", method="GET",
                                 headers={"If-None-Match": '"0"'})
        self.assertEqual(r3.status, 200)
        r4 = self.server.request("/openapi.json", {}, method="POST")
        self.assertError(r4, 405, "ERROR_METHOD_NOT_ALLOWED")
        self.assertEqual(r4.headers["Allow"], "GET")


class LiveAnswersTest(RepodTestCase):
    """Every operation called for real; every answer validates."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.server = R["mirror"]
        cls.table = dispatcher_routes()
        cls.seen = {}  # path -> set of statuses validated

    def check(self, path, method, resp):
        """Validates resp against the document's answer for (path, method,
        status): body schema, documented headers; returns the body."""
        item = self.doc["paths"].get(path)
        if item is None or method.lower() not in item:
            # not an operation: the documented 404 / 405 answers
            st = resp.status
            self.assertIn(st, (404, 405), "undocumented %s %s answered %d" % (method, path, st))
            spec = resolve(self.doc, {"$ref": "#/components/responses/E%d" % st})
        else:
            op = item[method.lower()]
            self.assertIn(str(resp.status), op["responses"],
                          "%s %s answered %d, which the document does not list: %r" %
                          (method, path, resp.status, resp.body))
            spec = resolve(self.doc, op["responses"][str(resp.status)])
        content = spec.get("content", {})
        if not content:
            self.assertEqual(resp.body, b"", path)
        else:
            ctype = resp.headers.get("Content-Type", "")
            self.assertIn(ctype, content, "%s %s: content type %s" % (method, path, ctype))
            if ctype == "application/json":
                v = schema_validator(self.doc, content[ctype]["schema"])
                self.assertEqual(errors_of(v, resp.body), [], "%s %s %d: %r" %
                                 (method, path, resp.status, resp.body))
        headers = spec.get("headers", {})
        for name, h in headers.items():
            value = resp.headers.get(name)
            if value is not None:
                v = schema_validator(self.doc, resolve(self.doc, h)["schema"])
                self.assertEqual(errors_of(v, value), [], "%s %s header %s" % (method, path, name))
        for name in ("X-Cache", "X-Partial"):
            if resp.headers.get(name) is not None:
                self.assertIn(name, headers, "%s %s sent %s undocumented" % (method, path, name))
        self.seen.setdefault(path, set()).add(resp.status)
        return resp.body

    def call(self, style, resource, verb, body, token, status):
        path = "%s%s/%s" % (style, resource, verb)
        r = self.server.request(path, body, token=token)
        self.assertEqual(r.status, status, "%s %r: %r%s" % (path, body, r.body,
                                                             self.server.describe()))
        return self.check(path, "POST", r)

    def test_1_every_verb(self):
        sysm, adm, view = R["system"], R["admin"], R["viewer"]
        host = R["reg_host"]
        up = R["up"]
        remote = {"name": "Market", "repository_type": "remote", "endpoint": up.endpoint,
                  "upstream": {"ca_file": self.server.ca_file}}
        dead = {"name": "Gone", "repository_type": "remote",
                "endpoint": "https://127.0.0.1:%d" % harness.free_port(),
                "upstream": {"ca_file": self.server.ca_file}}
        have_dt = ("dashboard-template", "register") in self.table
        for n, style in enumerate(STYLES):
            with self.subTest(style=style):
                c = lambda res, verb, body, tok, st: self.call(style, res, verb, body, tok, st)
                # repository
                rid = c("repository", "register", remote, sysm, 200)["repository_id"]
                c("repository", "register", remote, sysm, 409)
                c("repository", "register", remote, adm, 403)
                c("repository", "register", dead, sysm, 503)
                c("repository", "register", {"name": 5}, sysm, 400)
                c("repository", "sync", {"repository_id": rid}, sysm, 200)
                c("repository", "sync", {"repository_id": "repo-000000000000"}, sysm, 404)
                c("repository", "update", {"repository_id": rid, "priority": 5 + n}, sysm, 200)
                c("repository", "update", {"repository_id": "repo-000000000000", "priority": 1},
                  sysm, 404)
                for tok in (sysm, adm, view, None):
                    c("repository", "get", {"repository_id": rid}, tok, 200)
                    c("repository", "list", {}, tok, 200)
                    c("repository", "stat", {"query": {"distinct": "repository_type"}}, tok, 200)
                c("repository", "get", {"repository_id": "repo-000000000000"}, view, 404)
                c("repository", "list", {}, "not-a-token", 401)
                c("repository", "stat", {}, view, 400)
                # plugins on the local tier
                pid = "oa-%d" % n
                body = plugin_body("d1/loc-one", plugin_id=pid, registry_type="HARBOR",
                                   registry_url=host)
                c("plugin", "register", body, adm, 200)
                c("plugin", "register", body, adm, 409)
                c("plugin", "register", body, view, 403)
                c("plugin", "register", body, None, 401)
                c("plugin", "register", {"name": "x"}, adm, 400)
                c("plugin", "update", {"plugin_id": pid, "name": "OA"}, adm, 200)
                c("plugin", "update", {"plugin_id": "mk-one", "name": "x"}, adm, 409)
                c("plugin", "update", {"plugin_id": "nope", "name": "x"}, adm, 404)
                c("plugin", "disable", {"plugin_id": pid}, adm, 200)
                c("plugin", "disable", {"plugin_id": pid}, view, 403)
                c("plugin", "enable", {"plugin_id": pid}, adm, 200)
                c("plugin", "enable", {"plugin_id": "nope"}, adm, 404)
                # reads, both tiers
                for tok in (adm, view, None):
                    c("plugin", "get", {"plugin_id": "mk-one"}, tok, 200)
                    c("plugin", "get-versions", {"plugin_id": "mk-one"}, tok, 200)
                    c("plugin", "list", {}, tok, 200)
                    c("plugin", "stat", {"query": {"distinct": "plugin_id"}}, tok, 200)
                c("plugin", "get", {"plugin_id": pid}, adm, 200)
                c("plugin", "get-versions", {"plugin_id": pid}, adm, 200)
                c("plugin", "get", {"plugin_id": "nope"}, view, 404)
                c("plugin", "get-versions", {"plugin_id": "nope"}, view, 404)
                c("plugin", "list", {"query": {"filter": [{"k": "a", "o": "bad", "v": 1}]}},
                  view, 400)
                c("plugin", "stat", {}, view, 400)
                c("plugin", "list", {"query": {"page": {"limit": 1}}}, "bad", 401)
                bad = plugin_body("bad/img", plugin_id="bad-%d" % n, registry_type="HARBOR",
                                  registry_url=host)
                c("plugin", "register", bad, adm, 200)
                c("plugin", "get-versions", {"plugin_id": "bad-%d" % n}, adm, 502)
                c("plugin", "deregister", {"plugin_id": "bad-%d" % n}, adm, 200)
                c("plugin", "deregister", {"plugin_id": pid}, adm, 200)
                c("plugin", "deregister", {"plugin_id": pid}, adm, 404)
                # a body over limits.max_body_bytes
                c("plugin", "list", {"name": "x" * (MAX_BODY + 10)}, view, 413)
                # invalid JSON
                c("plugin", "list", "{", view, 400)
                if have_dt:
                    dt = c("dashboard-template", "register",
                           {"name": "DT %d" % n, "template_type": "MULTI", "dashboards": [],
                            "labels": ["a"], "tags": {}}, adm, 200)
                    tid = dt["template_id"]
                    c("dashboard-template", "register", {"name": "DT", "template_id": tid}, adm,
                      409)
                    c("dashboard-template", "register", {"name": "DT"}, view, 403)
                    c("dashboard-template", "update", {"template_id": tid, "name": "DT2"}, adm,
                      200)
                    c("dashboard-template", "update", {"template_id": "nope", "name": "x"}, adm,
                      404)
                    c("dashboard-template", "disable", {"template_id": tid}, adm, 200)
                    c("dashboard-template", "enable", {"template_id": tid}, adm, 200)
                    c("dashboard-template", "enable", {"template_id": "nope"}, adm, 404)
                    c("dashboard-template", "disable", {"template_id": tid}, view, 403)
                    c("dashboard-template", "get", {"template_id": tid}, view, 200)
                    c("dashboard-template", "get", {"template_id": "nope"}, view, 404)
                    c("dashboard-template", "list", {}, view, 200)
                    c("dashboard-template", "list",
                      {"query": {"filter": [{"k": "a", "o": "bad", "v": 1}]}}, view, 400)
                    c("dashboard-template", "stat", {"query": {"distinct": "template_id"}}, view,
                      200)
                    c("dashboard-template", "stat", {}, view, 400)
                    c("dashboard-template", "deregister", {"template_id": tid}, adm, 200)
                    c("dashboard-template", "deregister", {"template_id": tid}, adm, 404)
                c("repository", "deregister", {"repository_id": rid}, sysm, 200)
                c("repository", "deregister", {"repository_id": rid}, sysm, 404)
                # not operations: unknown route, wrong method
                self.check(style + "plugin/get_versions", "POST",
                           self.server.request(style + "plugin/get_versions", {}, token=adm))
                r = self.server.request(style + "plugin/get", None, token=adm, method="GET")
                self.assertEqual(r.status, 405)
                self.check(style + "plugin/get", "GET", r)

    def test_2_operational(self):
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            self.check(path, "GET", self.server.request(path, method="GET"))
            r = self.server.request(path, {}, method="POST")
            self.assertEqual(r.status, 405)
            self.check(path, "GET", r)

    def test_3_every_operation_was_validated(self):
        if not self.seen:
            self.skipTest("runs after test_1")
        for (resource, verb, style), op in api_ops(self.doc).items():
            if (resource, verb) not in self.table:
                continue  # x-repod-since, not in this build (RouteSetTest)
            path = "%s%s/%s" % (style, resource, verb)
            got = self.seen.get(path, set())
            self.assertIn(200, got, path)
            self.assertTrue(got - {200}, "%s: no error answer validated" % path)


if __name__ == "__main__":
    unittest.main()

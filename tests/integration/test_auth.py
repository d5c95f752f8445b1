"""Authentication, roles and tenancy (SPEC 7)."""

import json
import os
import unittest

import harness
from harness import RepodTestCase, Server, plugin_body

WRITE_VERBS = ("register", "update", "deregister", "enable", "disable")
BOGUS_TOKENS = ["bogus-token-8f3a9c1e2d7b4a60", "x" * 43, "Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4"]


def write_body(verb, pid):
    if verb == "register":
        return plugin_body("acme/" + pid)
    if verb == "update":
        return {"plugin_id": pid, "name": "Hijacked", "labels": ["hijacked"]}
    return {"plugin_id": pid}


def strip_ids(message, *ids):
    for i in ids:
        message = message.replace(i, "<ID>")
    return message


class AuthTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"log_level": "debug", "auth": {"anonymous_read": True}},
                            start=False, name="auth")
        try:
            s = cls.server
            cls.admin_a = s.make_token("domain-a", "admin", name="admin-a")
            cls.admin_b = s.make_token("domain-b", "admin", name="admin-b")
            cls.viewer_a = s.make_token("domain-a", "viewer", name="viewer-a")
            cls.system = s.make_token("domain-root", "system", name="sys")
            s.start()
            cls.secret_a = cls.reg(cls.admin_a, "acme/plugin-secret-a", name="Secret A", provider="prov-a")
            cls.shared_a = cls.reg(cls.admin_a, "acme/plugin-shared", name="Shared A", provider="prov-a")
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    @classmethod
    def reg(cls, token, image, **kw):
        r = cls.server.api("plugin/register", plugin_body(image, **kw), token=token)
        if r.status != 200:
            raise harness.ServerError("register %s failed: %r%s" % (image, (r.status, r.body),
                                                                    cls.server.describe()))
        return r.body

    def call(self, verb, body, token):
        return self.server.api("plugin/" + verb, body, token=token)

    def get_a(self, pid):
        return self.assertOK(self.call("get", {"plugin_id": pid}, self.admin_a))

    # -- 401 -------------------------------------------------------------------

    def test_no_token_401_on_writes(self):
        for verb in WRITE_VERBS:
            with self.subTest(verb=verb):
                r = self.call(verb, write_body(verb, "plugin-secret-a"), None)
                self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        r = self.server.api("repository/register", {"name": "X", "repository_type": "local"})
        self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        self.assertEqual(self.get_a("plugin-secret-a"), self.secret_a)

    def test_bad_tokens_401(self):
        headers_cases = [{"Authorization": "Bearer " + t} for t in BOGUS_TOKENS] + [
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer " + self.admin_a + "x"},
            {"Authorization": "Bearer " + self.admin_a[:-1]},
            {"Authorization": "Basic YWRtaW46YWRtaW4="},
            {"Authorization": self.admin_a},
        ]
        for h in headers_cases:
            for verb, body in (("list", {}), ("get", {"plugin_id": "plugin-secret-a"}),
                               ("register", plugin_body("acme/plugin-bogus-auth"))):
                with self.subTest(header=h["Authorization"][:12], verb=verb):
                    r = self.server.request("plugin/" + verb, body, headers=h)
                    self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        self.assertError(self.call("get", {"plugin_id": "plugin-bogus-auth"}, self.admin_a),
                         404, "ERROR_NO_PLUGIN")

    # -- 403 -------------------------------------------------------------------

    def test_viewer_reads_but_cannot_write(self):
        for verb in WRITE_VERBS:
            with self.subTest(verb=verb):
                pid = "plugin-viewer-new" if verb == "register" else "plugin-secret-a"
                r = self.call(verb, write_body(verb, pid), self.viewer_a)
                self.assertError(r, 403, "ERROR_PERMISSION_DENIED")
        self.assertError(self.call("get", {"plugin_id": "plugin-viewer-new"}, self.admin_a),
                         404, "ERROR_NO_PLUGIN")
        self.assertEqual(self.get_a("plugin-secret-a"), self.secret_a)
        got = self.assertOK(self.call("get", {"plugin_id": "plugin-secret-a"}, self.viewer_a))
        self.assertEqual(got, self.secret_a)
        b = self.assertOK(self.call("list", {}, self.viewer_a))
        ids = [p["plugin_id"] for p in b["results"]]
        self.assertIn("plugin-secret-a", ids)
        self.assertIn("plugin-shared", ids)
        self.assertTrue(all(p["domain_id"] == "domain-a" for p in b["results"]), b)
        r = self.server.api("repository/register", {"name": "V", "repository_type": "local"},
                            token=self.viewer_a)
        self.assertError(r, 403, "ERROR_PERMISSION_DENIED")

    # -- tenancy -----------------------------------------------------------------

    def test_other_domain_cannot_see_or_change(self):
        # get: same code and wording as a plugin that does not exist anywhere
        hidden = self.assertError(self.call("get", {"plugin_id": "plugin-secret-a"}, self.admin_b),
                                  404, "ERROR_NO_PLUGIN")
        missing = self.assertError(self.call("get", {"plugin_id": "plugin-nowhere-zz"}, self.admin_b),
                                   404, "ERROR_NO_PLUGIN")
        self.assertEqual(strip_ids(hidden["message"], "plugin-secret-a"),
                         strip_ids(missing["message"], "plugin-nowhere-zz"))
        # writes: 404 ERROR_NOT_FOUND worded like a missing id, nothing changed
        for verb in ("update", "enable", "disable", "deregister"):
            with self.subTest(verb=verb):
                h = self.assertError(self.call(verb, write_body(verb, "plugin-secret-a"), self.admin_b),
                                     404, "ERROR_NOT_FOUND")
                m = self.assertError(self.call(verb, write_body(verb, "plugin-nowhere-zz"), self.admin_b),
                                     404, "ERROR_NOT_FOUND")
                self.assertEqual(strip_ids(h["message"], "plugin-secret-a"),
                                 strip_ids(m["message"], "plugin-nowhere-zz"))
        self.assertEqual(self.get_a("plugin-secret-a"), self.secret_a)
        # list / counts
        b = self.assertOK(self.call("list", {}, self.admin_b))
        self.assertTrue(all(p["domain_id"] == "domain-b" for p in b["results"]), b)
        self.assertNotIn("plugin-secret-a", [p["plugin_id"] for p in b["results"]])
        self.assertEqual(b["total_count"], len(b["results"]))
        for req in ({"plugin_id": "plugin-secret-a"},
                    {"provider": "prov-a"},
                    {"query": {"filter": [{"k": "domain_id", "v": "domain-a", "o": "eq"}]}},
                    {"query": {"filter": [{"k": "plugin_id", "v": "secret", "o": "contain"}],
                               "count_only": True}},
                    {"query": {"keyword": "Secret"}}):
            with self.subTest(list=req):
                b = self.assertOK(self.call("list", req, self.admin_b))
                self.assertEqual(b["total_count"], 0, b)
                self.assertEqual(b["results"], [])
        # stat
        b = self.assertOK(self.call("stat", {"query": {"distinct": "plugin_id"}}, self.admin_b))
        self.assertNotIn("plugin-secret-a", b["results"])
        b = self.assertOK(self.call("stat", {"query": {"distinct": "domain_id"}}, self.admin_b))
        self.assertNotIn("domain-a", b["results"])
        b = self.assertOK(self.call("stat", {"query": {
            "filter": [{"k": "provider", "v": "prov-a", "o": "eq"}],
            "aggregate": [{"count": {"name": "n"}}]}}, self.admin_b))
        self.assertEqual(sum(row.get("n", 0) for row in b["results"]), 0, b)
        # the same stat from domain-a does count them (so the query itself works)
        b = self.assertOK(self.call("stat", {"query": {
            "filter": [{"k": "provider", "v": "prov-a", "o": "eq"}],
            "aggregate": [{"count": {"name": "n"}}]}}, self.admin_a))
        self.assertEqual(b["results"], [{"n": 2}])

    def test_other_domain_may_reuse_plugin_id(self):
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-shared", name="Shared B"),
                                    self.admin_b))
        self.assertEqual(p["domain_id"], "domain-b")
        self.assertEqual(p["plugin_id"], "plugin-shared")
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-shared"}, self.admin_b))["name"],
                         "Shared B")
        self.assertEqual(self.get_a("plugin-shared"), self.shared_a)
        # a's write on its own copy leaves b's alone
        self.assertOK(self.call("disable", {"plugin_id": "plugin-shared"}, self.admin_a))
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-shared"}, self.admin_b))["state"],
                         "ENABLED")
        self.assertOK(self.call("enable", {"plugin_id": "plugin-shared"}, self.admin_a))

    def test_request_domain_id_ignored_for_non_system(self):
        body = plugin_body("acme/plugin-b-claims-a", domain_id="domain-a")
        p = self.assertOK(self.call("register", body, self.admin_b))
        self.assertEqual(p["domain_id"], "domain-b")
        self.assertError(self.call("get", {"plugin_id": "plugin-b-claims-a"}, self.admin_a),
                         404, "ERROR_NO_PLUGIN")
        self.assertError(self.call("get", {"plugin_id": "plugin-secret-a", "domain_id": "domain-a"},
                                   self.admin_b), 404, "ERROR_NO_PLUGIN")
        b = self.assertOK(self.call("list", {"domain_id": "domain-a"}, self.admin_b))
        self.assertTrue(all(x["domain_id"] == "domain-b" for x in b["results"]), b)
        self.assertError(self.call("update", {"plugin_id": "plugin-secret-a", "domain_id": "domain-a",
                                              "name": "pwned"}, self.admin_b), 404, "ERROR_NOT_FOUND")
        self.assertEqual(self.get_a("plugin-secret-a"), self.secret_a)

    def test_system_acts_for_domain(self):
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-by-system", domain_id="domain-c"),
                                    self.system))
        self.assertEqual(p["domain_id"], "domain-c")
        got = self.assertOK(self.call("get", {"plugin_id": "plugin-secret-a", "domain_id": "domain-a"},
                                      self.system))
        self.assertEqual(got, self.secret_a)
        admin_c = self.server.make_token("domain-c", "admin", name="admin-c")
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-by-system"}, admin_c)), p)
        self.assertError(self.call("get", {"plugin_id": "plugin-by-system"}, self.admin_a),
                         404, "ERROR_NO_PLUGIN")

    def test_anonymous_sees_no_local_plugins(self):
        b = self.assertOK(self.call("list", {}, None))
        self.assertEqual(b["total_count"], 0, b)
        self.assertEqual(b["results"], [])
        r = self.call("get", {"plugin_id": "plugin-secret-a"}, None)
        self.assertIn(r.status, (401, 404), self._ctx(r))
        self.assertNotIn("domain-a", repr(r.body))
        b = self.assertOK(self.call("stat", {"query": {"distinct": "plugin_id"}}, None))
        self.assertEqual(b["results"], [])

    # -- token life cycle --------------------------------------------------------

    def test_revoke_then_sighup_401(self):
        tok = self.server.make_token("domain-a", "admin", name="to-revoke")
        self.assertOK(self.call("list", {}, tok))
        self.server.revoke_token("to-revoke", secret=tok)
        r = self.call("list", {}, tok)
        self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        self.assertError(self.call("register", plugin_body("acme/plugin-after-revoke"), tok),
                         401, "ERROR_AUTHENTICATE_FAILURE")
        # the others still work
        self.assertOK(self.call("list", {}, self.admin_a))
        self.assertOK(self.call("list", {}, self.viewer_a))

    def test_token_created_after_start_works_after_sighup(self):
        tok = self.server.make_token("domain-d", "admin", name="late-d", reload=False)
        self.server.sighup()
        self.server.wait_token(tok, accepted=True)
        p = self.assertOK(self.call("register", plugin_body("acme/plugin-late"), tok))
        self.assertEqual(p["domain_id"], "domain-d")

    def test_token_cli_and_storage(self):
        secrets = [self.admin_a, self.admin_b, self.viewer_a, self.system]
        self.assertEqual(len(set(secrets)), len(secrets))
        for s in secrets:
            self.assertGreaterEqual(len(s), 22, "token shorter than 128 bits of base64/hex")
            self.assertNotRegex(s, r"\s")
        with open(self.server.tokens_file) as f:
            stored = f.read()
        r = self.server.cli("token", "list", "--config", self.server.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("admin-a", "admin-b", "viewer-a", "sys"):
            self.assertIn(name, r.stdout)
        for s in self.server.secrets:
            self.assertNotIn(s, stored, "tokens file holds a secret in clear")
            self.assertNotIn(s, r.stdout + r.stderr, "token list prints a secret")
        r = self.server.cli("token", "revoke", "--config", self.server.config_path, "no-such-token-name")
        self.assertNotEqual(r.returncode, 0)
        r = self.server.cli("token", "create", "--config", self.server.config_path,
                            "--domain", "domain-a", "--role", "emperor")
        self.assertNotEqual(r.returncode, 0)

    def test_zz_log_never_contains_secrets(self):
        # make sure the log has seen authenticated and failed requests
        self.call("list", {}, self.admin_a)
        self.call("list", {}, BOGUS_TOKENS[0])
        self.server.sighup()
        self.assertOK(self.call("list", {}, self.admin_a))
        log = self.server.log()
        with open(self.server.log_path, errors="replace") as f:
            log_file = f.read()
        for s in self.server.secrets + BOGUS_TOKENS:
            self.assertNotIn(s, log, "a token secret is in the server log")
            self.assertNotIn(s, log_file, "a token secret is in the server log file")
        for fn in os.listdir(self.server.tmp):
            if fn.endswith(".stdout"):
                with open(os.path.join(self.server.tmp, fn), errors="replace") as f:
                    out = f.read()
                for s in self.server.secrets + BOGUS_TOKENS:
                    self.assertNotIn(s, out)


class PublicDomainTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"auth": {"anonymous_read": True, "public_domains": ["domain-pub"]}},
                            start=False, name="public")
        try:
            s = cls.server
            cls.admin_pub = s.make_token("domain-pub", "admin")
            cls.admin_a = s.make_token("domain-a", "admin")
            s.start()
            cls.pub = {}
            for image in ("acme/plugin-pub-1", "acme/plugin-pub-2"):
                r = s.api("plugin/register", plugin_body(image, provider="pub"), token=cls.admin_pub)
                if r.status != 200:
                    raise harness.ServerError("register failed: %r%s" % ((r.status, r.body), s.describe()))
                cls.pub[r.body["plugin_id"]] = r.body
            r = s.api("plugin/register", plugin_body("acme/plugin-priv-a"), token=cls.admin_a)
            if r.status != 200:
                raise harness.ServerError("register failed: %r%s" % ((r.status, r.body), s.describe()))
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def call(self, verb, body, token):
        return self.server.api("plugin/" + verb, body, token=token)

    def test_anonymous_reads_public_domain_only(self):
        b = self.assertOK(self.call("list", {}, None))
        self.assertEqual(b["total_count"], 2, b)
        self.assertEqual(sorted(p["plugin_id"] for p in b["results"]), ["plugin-pub-1", "plugin-pub-2"])
        got = self.assertOK(self.call("get", {"plugin_id": "plugin-pub-1"}, None))
        self.assertEqual(got, self.pub["plugin-pub-1"])
        r = self.call("get", {"plugin_id": "plugin-priv-a"}, None)
        self.assertIn(r.status, (401, 404), self._ctx(r))
        b = self.assertOK(self.call("stat", {"query": {"distinct": "domain_id"}}, None))
        self.assertEqual(b["results"], ["domain-pub"])

    def test_other_domain_reads_public_domain(self):
        b = self.assertOK(self.call("list", {}, self.admin_a))
        self.assertEqual(sorted(p["plugin_id"] for p in b["results"]),
                         ["plugin-priv-a", "plugin-pub-1", "plugin-pub-2"])
        self.assertEqual(b["total_count"], 3)
        self.assertEqual(self.assertOK(self.call("get", {"plugin_id": "plugin-pub-2"}, self.admin_a)),
                         self.pub["plugin-pub-2"])
        # and the public domain does not see domain-a's plugins
        b = self.assertOK(self.call("list", {}, self.admin_pub))
        self.assertEqual(b["total_count"], 2)

    def test_public_domain_is_not_writable_by_others(self):
        for verb in WRITE_VERBS:
            with self.subTest(who="anonymous", verb=verb):
                r = self.call(verb, write_body(verb, "plugin-pub-1" if verb != "register" else "plugin-anon"), None)
                self.assertError(r, 401, "ERROR_AUTHENTICATE_FAILURE")
        for verb in ("update", "enable", "disable", "deregister"):
            with self.subTest(who="domain-a admin", verb=verb):
                r = self.call(verb, write_body(verb, "plugin-pub-1"), self.admin_a)
                self.assertIn(r.status, (403, 404), self._ctx(r))
                self.assertError(r, r.status,
                                 "ERROR_PERMISSION_DENIED" if r.status == 403 else "ERROR_NOT_FOUND")
        for pid, before in self.pub.items():
            self.assertEqual(self.assertOK(self.call("get", {"plugin_id": pid}, self.admin_pub)), before)
        b = self.assertOK(self.call("list", {}, None))
        self.assertEqual(b["total_count"], 2)


class AnonymousDisabledTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"auth": {"anonymous_read": False, "public_domains": ["domain-pub"]}},
                            start=False, name="noanon")
        try:
            cls.admin_pub = cls.server.make_token("domain-pub", "admin")
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def test_anonymous_read_false_requires_token(self):
        self.assertOK(self.server.api("plugin/register", plugin_body("acme/plugin-pub-x"),
                                      token=self.admin_pub))
        for verb, body in (("list", {}), ("get", {"plugin_id": "plugin-pub-x"}),
                           ("stat", {"query": {"distinct": "plugin_id"}})):
            with self.subTest(verb=verb):
                self.assertError(self.server.api("plugin/" + verb, body), 401, "ERROR_AUTHENTICATE_FAILURE")
        self.assertEqual(self.server.request("/healthz", method="GET").status, 200)
        b = self.assertOK(self.server.api("plugin/list", {}, token=self.admin_pub))
        self.assertEqual(b["total_count"], 1)


if __name__ == "__main__":
    unittest.main()

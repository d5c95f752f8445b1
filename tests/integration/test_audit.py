"""The audit trail: one line per write (plugin and repository verbs, token
changes) with the token's name, domain, verb and id -- never the secret --
written whatever log_level says."""

import re
import time
import unittest

from harness import RepodTestCase, Server, plugin_body

AUDIT_RE = re.compile(r"^\S+Z audit (\S+)(.*)$")


def audit_lines(log):
    """[(event, {field: value})] of every audit line in log."""
    out = []
    for line in log.splitlines():
        m = AUDIT_RE.match(line)
        if m:
            fields = dict(kv.split("=", 1) for kv in m.group(2).split())
            out.append((m.group(1), fields))
    return out


class AuditTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        # log_level error: audit lines must still be written.
        cls.server = Server({"log_level": "error"}, start=False, name="audit")
        try:
            s = cls.server
            cls.admin = s.make_token("domain-a", "admin", name="admin-a")
            cls.viewer = s.make_token("domain-a", "viewer", name="viewer-a")
            s.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def events(self, event):
        return [f for e, f in audit_lines(self.server.log()) if e == event]

    def wait_events(self, event, pred, n=1, timeout=5.0):
        """The audit lines of event matching pred, once there are n of them
        (the harness reads the server's stderr on its own thread)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.events(event) if pred(f)]
            if len(found) >= n or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def test_plugin_writes_are_audited_with_token_name_and_id(self):
        s = self.server
        r = s.api("plugin/register", plugin_body("acme/plugin-audit-one"), token=self.admin)
        self.assertOK(r)
        self.assertOK(s.api("plugin/update", {"plugin_id": "plugin-audit-one", "labels": ["x"]},
                            token=self.admin))
        self.assertOK(s.api("plugin/disable", {"plugin_id": "plugin-audit-one"}, token=self.admin))
        self.assertOK(s.api("plugin/deregister", {"plugin_id": "plugin-audit-one"},
                            token=self.admin))
        for verb in ("register", "update", "disable", "deregister"):
            lines = self.wait_events("plugin." + verb, lambda f: f.get("id") == "plugin-audit-one")
            self.assertEqual(len(lines), 1, (verb, self.server.log_tail()))
            f = lines[0]
            self.assertEqual(f["token"], "admin-a")
            self.assertEqual(f["domain"], "domain-a")
            self.assertEqual(f["role"], "admin")
            self.assertEqual(f["status"], "200")
            self.assertEqual(f["code"], "OK")

    def test_refused_writes_are_audited_and_reads_are_not(self):
        s = self.server
        self.assertError(s.api("plugin/disable", {"plugin_id": "plugin-denied"}, token=self.viewer),
                         403)
        self.assertError(s.api("plugin/enable", {"plugin_id": "plugin-anon"}), 401)
        s.api("plugin/list", {}, token=self.viewer)
        s.api("plugin/get", {"plugin_id": "plugin-denied"}, token=self.viewer)
        # refused before the body is read: the id is not known
        denied = self.wait_events("plugin.disable", lambda f: f.get("token") == "viewer-a")
        self.assertEqual(len(denied), 1, self.server.log_tail())
        self.assertEqual(denied[0]["domain"], "domain-a")
        self.assertEqual(denied[0]["status"], "403")
        self.assertEqual(denied[0]["code"], "ERROR_PERMISSION_DENIED")
        anon = self.wait_events("plugin.enable", lambda f: f.get("token") == "-")
        self.assertEqual(len(anon), 1, self.server.log_tail())
        self.assertEqual(anon[0]["token"], "-")
        self.assertEqual(anon[0]["status"], "401")
        self.assertEqual(self.events("plugin.list"), [])
        self.assertEqual(self.events("plugin.get"), [])

    def test_request_text_cannot_forge_log_lines(self):
        s = self.server
        forged = "x\n2026-01-01T00:00:00.000Z audit plugin.deregister id=forged token=root"
        s.api("plugin/update", {"plugin_id": forged, "name": "n"}, token=self.admin)
        self.wait_events("plugin.update", lambda f: f.get("id", "").startswith("x?2026"))
        self.assertEqual([f for f in self.events("plugin.deregister") if f.get("id") == "forged"],
                         [])
        self.assertNotIn("\n2026-01-01T00:00:00.000Z audit", s.log())

    def test_token_changes_are_audited_by_the_cli_and_on_reload(self):
        s = self.server
        r = s.cli("token", "create", "--config", s.config_path, "--domain", "domain-t",
                  "--role", "viewer", "--name", "audited-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        secret = r.stdout.strip().splitlines()[-1]
        created = [f for e, f in audit_lines(r.stderr) if e == "token.create"]
        self.assertEqual(len(created), 1, r.stderr)
        self.assertEqual(created[0]["name"], "audited-token")
        self.assertEqual(created[0]["domain"], "domain-t")
        self.assertEqual(created[0]["role"], "viewer")
        self.assertNotIn(secret, r.stderr)
        s.sighup()
        s.wait_token(secret, accepted=True)
        added = self.wait_events("token.added", lambda f: f.get("name") == "audited-token")
        self.assertEqual(len(added), 1, s.log_tail())
        self.assertEqual(added[0]["role"], "viewer")

        r = s.revoke_token("audited-token", secret=secret)
        revoked = [f for e, f in audit_lines(r.stderr) if e == "token.revoke"]
        self.assertEqual([f["name"] for f in revoked], ["audited-token"], r.stderr)
        removed = self.wait_events("token.removed", lambda f: f.get("name") == "audited-token")
        self.assertEqual(len(removed), 1, s.log_tail())
        # tokens that did not change are not reported again
        self.assertEqual([f for f in self.events("token.added") if f.get("name") == "admin-a"], [])
        self.assertNotIn(secret, s.log())
        for sec in (self.admin, self.viewer):
            self.assertNotIn(sec, s.log())


if __name__ == "__main__":
    unittest.main()

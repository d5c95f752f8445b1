"""Online backup and restore: `repod backup` while the server serves and
writes, `repod restore` on a stopped server, and their refusals."""

import json
import os
import shutil
import tempfile
import threading
import time
import unittest

from harness import RepodTestCase, Server, list_snapshot, plugin_body

MAX_WRITES = 3000          # bound of the writer loop
BEFORE_BACKUP = 40         # acknowledged writes before the backup starts
AFTER_BACKUP = 20          # and after it ends


class Writer(threading.Thread):
    """Registers plugins one after another over one keep-alive HTTPS
    connection; records each acknowledged answer with the time it came."""

    def __init__(self, server, token):
        super().__init__(daemon=True)
        self.server, self.token = server, token
        self.lock = threading.Lock()
        self.acked = []            # (monotonic time of the answer, plugin)
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        conn = self.server.connect()
        try:
            for i in range(MAX_WRITES):
                if self.halt.is_set():
                    break
                body = plugin_body("acme/plugin-bk-%05d" % i, name="Backup %05d" % i,
                                   provider="p%d" % (i % 7), labels=["n%d" % i, "bk"],
                                   tags={"i": str(i), "pad": "x" * 200},
                                   template={"options": {"schema": {"type": "object", "properties": {}}}})
                try:
                    r = self.server.api("plugin/register", body, token=self.token, conn=conn)
                except OSError as e:
                    self.errors.append(repr(e))
                    conn.close()
                    conn = self.server.connect()
                    continue
                if r.status != 200:
                    self.errors.append((r.status, r.body))
                    continue
                with self.lock:
                    self.acked.append((time.monotonic(), r.body))
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_count(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline or not self.is_alive():
                raise AssertionError("writer made %d writes, wanted %d; errors %r" %
                                     (self.count(), n, self.errors[:3]))
            time.sleep(0.01)

    def acked_before(self, t):
        with self.lock:
            return [p for at, p in self.acked if at < t]


class BackupTest(RepodTestCase):

    def setUp(self):
        self.server = Server(start=False, name="backup")
        self.addCleanup(self.server.close)
        self.admin = self.server.make_token("domain-a", "admin", name="bk-admin")
        self.server.start()
        self.tmp = tempfile.mkdtemp(prefix="repod-it-backup-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def backup(self, to, server=None, expect=0):
        r = (server or self.server).cli("backup", "--config", (server or self.server).config_path,
                                        "--to", to, timeout=120)
        self.assertEqual(r.returncode, expect, "repod backup:\n%s%s" % (r.stdout, r.stderr))
        return r

    def fresh_server(self, name):
        """A stopped server with its own empty data dir and tokens file."""
        other = Server(start=False, name=name)
        self.addCleanup(other.close)
        return other

    def restore(self, into, frm, *extra, expect=0):
        r = into.cli("restore", "--from", frm, "--config", into.config_path, *extra, timeout=120)
        self.assertEqual(r.returncode, expect, "repod restore:\n%s%s" % (r.stdout, r.stderr))
        return r

    def local_repository(self, server, token):
        b = self.assertOK(server.api("repository/list", {}, token=token))
        return [r for r in b["results"] if r.get("repository_type") == "local"]

    def test_backup_while_writing_keeps_every_acknowledged_write(self):
        writer = Writer(self.server, self.admin)
        writer.start()
        self.addCleanup(writer.halt.set)
        writer.wait_count(BEFORE_BACKUP)
        began = time.monotonic()
        before = writer.acked_before(began)
        dest = os.path.join(self.tmp, "b1")
        out = self.backup(dest).stdout
        self.assertIn("online checkpoint", out)
        done_at = writer.count()
        writer.wait_count(done_at + AFTER_BACKUP)      # the server kept writing
        writer.halt.set()
        writer.join(30)
        self.assertEqual(writer.errors, [])
        with open(os.path.join(dest, "manifest.json")) as f:
            manifest = json.load(f)
        paths = {e["path"] for e in manifest["files"]}
        self.assertIn("db/CURRENT", paths)
        self.assertIn("tokens.json", paths)
        self.assertIn("repod.json", paths)
        self.assertEqual(os.listdir(os.path.join(self.server.data_dir, "backup.staging")), [],
                         "the checkpoint was not removed")

        restored = self.fresh_server("backup-restored")
        r = self.restore(restored, dest)
        self.assertIn("repod restore:", r.stdout)
        restored.start()
        snap = list_snapshot(restored, self.admin)      # the token came back too
        self.assertEqual(snap["total_count"], len(snap["results"]))
        by_id = {p["plugin_id"]: p for p in snap["results"]}
        missing = [p["plugin_id"] for p in before if p["plugin_id"] not in by_id]
        self.assertEqual(missing, [], "writes acknowledged before the backup began are missing")
        for p in before:
            self.assertEqual(by_id[p["plugin_id"]], p, "restored record differs from its acknowledgement")
        acked_all = {p["plugin_id"]: p for _, p in writer.acked}
        for pid, p in by_id.items():
            self.assertPluginInfo(p, pid)                # whole, never torn
            self.assertIn(pid, acked_all)
            self.assertEqual(p, acked_all[pid])
        self.assertEqual(self.local_repository(restored, self.admin),
                         self.local_repository(self.server, self.admin))
        # the restored server takes writes
        self.assertOK(restored.api("plugin/register", plugin_body("acme/plugin-after-restore"),
                                   token=self.admin))

    def test_restore_refuses_a_running_servers_data_dir_and_a_non_empty_one(self):
        self.assertOK(self.server.api("plugin/register", plugin_body("acme/plugin-one"), token=self.admin))
        dest = os.path.join(self.tmp, "b")
        self.backup(dest)
        r = self.restore(self.server, dest, "--force", expect=1)
        self.assertIn("in use", r.stderr)
        self.assertIn("stop the server", r.stderr)
        self.assertOK(self.server.api("plugin/get", {"plugin_id": "plugin-one"}, token=self.admin))

        self.assertOK(self.server.api("plugin/register", plugin_body("acme/plugin-two"), token=self.admin))
        self.server.stop()
        r = self.restore(self.server, dest, expect=1)
        self.assertIn("is not empty", r.stderr)
        self.assertIn("--force", r.stderr)
        self.restore(self.server, dest, "--force")
        self.server.start()
        self.assertOK(self.server.api("plugin/get", {"plugin_id": "plugin-one"}, token=self.admin))
        self.assertError(self.server.api("plugin/get", {"plugin_id": "plugin-two"}, token=self.admin),
                         404)

    def test_backup_of_a_server_without_writes(self):
        dest = os.path.join(self.tmp, "empty")
        self.backup(dest)
        restored = self.fresh_server("backup-empty")
        self.restore(restored, dest)
        restored.start()
        self.assertEqual(list_snapshot(restored, self.admin)["total_count"], 0)
        self.assertEqual(self.local_repository(restored, self.admin),
                         self.local_repository(self.server, self.admin))

    def test_backup_of_a_stopped_server(self):
        self.assertOK(self.server.api("plugin/register", plugin_body("acme/plugin-cold"), token=self.admin))
        self.server.stop()
        dest = os.path.join(self.tmp, "cold")
        self.assertIn("server stopped", self.backup(dest).stdout)
        restored = self.fresh_server("backup-cold")
        self.restore(restored, dest)
        restored.start()
        self.assertOK(restored.api("plugin/get", {"plugin_id": "plugin-cold"}, token=self.admin))

    def test_restore_verifies_the_backup(self):
        dest = os.path.join(self.tmp, "v")
        self.backup(dest)
        target = self.fresh_server("backup-verify")
        # no manifest: an unfinished or foreign folder
        os.rename(os.path.join(dest, "manifest.json"), os.path.join(self.tmp, "m.json"))
        r = self.restore(target, dest, expect=1)
        self.assertIn("not a repod backup", r.stderr)
        os.rename(os.path.join(self.tmp, "m.json"), os.path.join(dest, "manifest.json"))
        # a changed file
        with open(os.path.join(dest, "db", "CURRENT"), "a") as f:
            f.write("x")
        r = self.restore(target, dest, expect=1)
        self.assertIn("db/CURRENT does not match the manifest", r.stderr)
        self.assertFalse(os.path.exists(target.data_dir), "a failed verification wrote data")

    def test_bad_arguments_exit_2_with_a_message(self):
        cfg = self.server.config_path
        cases = [
            (["backup"], "--config FILE and --to DIR are required"),
            (["backup", "--config", cfg], "--to DIR are required"),
            (["backup", "--to", self.tmp], "--config FILE"),
            (["backup", "--config", cfg, "--to"], "--to needs a value"),
            (["backup", "--config", cfg, "--to", self.tmp, "--force"], "unknown argument '--force'"),
            (["restore", "--config", cfg], "--from DIR are required"),
            (["restore", "--from", self.tmp, "--config", cfg, "extra"], "unknown argument 'extra'"),
            (["restore", "--from=", "--config", cfg], "--from=  needs a value".replace("  ", " ")),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.server.cli(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertIn("Usage:", r.stderr)
        r = self.server.cli("backup", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("repod restore --from DIR --config FILE [--force]", r.stdout)
        # a target that is not empty, a missing config: failures, exit 1
        r = self.server.cli("backup", "--config", cfg, "--to", self.server.tmp)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("is not empty", r.stderr)
        r = self.server.cli("backup", "--config", os.path.join(self.tmp, "nope.json"), "--to",
                            os.path.join(self.tmp, "x"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("nope.json", r.stderr)


if __name__ == "__main__":
    unittest.main()

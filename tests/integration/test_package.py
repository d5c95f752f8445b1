"""The Debian package: its files, conffiles and unit, installed with dpkg,
the installed repod serving over TLS as the system user repod, and a purge
that leaves nothing behind.  Runs only as root (it installs a package and
creates a user); leaves the machine as it found it even when it fails."""

import http.client
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

import harness
from harness import RepodTestCase, plugin_body

PACKAGE_SH = os.path.join(harness.SOURCE_DIR, "tools", "package.sh")
UNIT = "/lib/systemd/system/repod.service"

EXPECTED_FILES = {
    "./usr/bin/repod", "./usr/bin/repoctl", "./usr/bin/repod-warmup",
    "./etc/repod/repod.json", UNIT.replace("/lib", "./lib", 1),
    "./usr/share/man/man8/repod.8.gz", "./usr/share/man/man1/repoctl.1.gz",
    "./usr/share/man/man1/repod-warmup.1.gz", "./usr/share/doc/repod/README.Debian",
}

# key -> value every line of the unit must have (one value per key).
UNIT_KEYS = {
    "Type": "notify", "User": "repod", "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/repod", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
    "CapabilityBoundingSet": "", "AmbientCapabilities": "", "ProtectHome": "yes",
    "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
    "ExecStart": "/usr/bin/repod --config /etc/repod/repod.json",
}


def run(*args, timeout=120, check=True):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def skip_reason():
    if os.geteuid() != 0:
        return "needs root: installs the package with dpkg and creates the system user repod"
    for tool in ("dpkg", "dpkg-deb", "cpack", "fakeroot", "dpkg-shlibdeps", "setpriv"):
        if shutil.which(tool) is None:
            return "%s not found (tools/install-deps.sh)" % tool
    if run("dpkg-query", "-W", "-f=${Status}", "repod", check=False).stdout.startswith("install"):
        return "a repod package is installed on this machine; the test would replace it"
    for path in ("/etc/repod", "/var/lib/repod"):
        if os.path.exists(path):
            return "%s exists; the test would remove it" % path
    try:
        pwd.getpwnam("repod")
        return "a user repod exists; the purge of the test would remove it"
    except KeyError:
        pass
    if not os.path.exists(os.path.join(harness.BUILD_DIR, "CPackConfig.cmake")):
        return "%s is not a configured build folder" % harness.BUILD_DIR
    return None


def api(port, path, body, token):
    """One API call over TLS to the installed server (test CA)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=harness.REQUEST_TIMEOUT_S,
                                       context=harness.client_context())
    try:
        conn.request("POST", harness.API_PREFIX + path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
        return harness.read_response(conn.getresponse())
    finally:
        conn.close()


def unit_entries(path):
    """[(key, value)] of the [Service] section, in order."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "Service":
                k, _, v = line.partition("=")
                out.append((k.strip(), v.strip()))
    return out


@unittest.skipIf(skip_reason() is not None, skip_reason() or "")
class PackageTest(RepodTestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="repod-it-package-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.proc = None
        self.installed = False
        self.addCleanup(self.cleanup_machine)

    def cleanup_machine(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.installed:
            run("dpkg", "--purge", "repod", check=False)
        run("userdel", "repod", check=False)    # after a failed purge only
        run("groupdel", "repod", check=False)

    def as_repod(self, *args):
        return ["setpriv", "--reuid=repod", "--regid=repod", "--init-groups"] + list(args)

    def test_build_install_serve_purge(self):
        deb = run("bash", PACKAGE_SH, "--build-dir", harness.BUILD_DIR, "--out", self.tmp,
                  timeout=300).stdout.strip().splitlines()[-1]
        self.assertRegex(os.path.basename(deb), r"^repod_\d+\.\d+\.\d+_amd64\.deb$")

        listing = run("dpkg-deb", "-c", deb).stdout
        files = {line.split()[-1] for line in listing.splitlines()}
        self.assertLessEqual(EXPECTED_FILES, files, listing)
        self.assertFalse([f for f in files if f.startswith("./etc/repod/tls/") and f.endswith(".pem")],
                         "the package must ship no certificate")
        self.assertEqual(run("dpkg-deb", "-I", deb, "conffiles").stdout.split(), ["/etc/repod/repod.json"])
        control = run("dpkg-deb", "-I", deb, "control").stdout
        self.assertRegex(control, r"(?m)^Depends: .*\badduser\b")
        self.assertRegex(control, r"(?m)^Depends: .*\blibrocksdb")

        run("dpkg", "-i", deb)
        self.installed = True

        # the unit: systemd's own check, then the hardening lines
        for path in ("/usr/bin/repod", "/usr/bin/repoctl", "/usr/bin/repod-warmup", UNIT):
            self.assertTrue(os.path.exists(path), path)
        r = run("systemd-analyze", "verify", UNIT, check=False)
        self.assertEqual(r.returncode, 0, "systemd-analyze verify:\n%s%s" % (r.stdout, r.stderr))
        entries = unit_entries(UNIT)
        got = dict(entries)
        for key, want in UNIT_KEYS.items():
            self.assertEqual(got.get(key), want, "%s= in %s" % (key, UNIT))
        self.assertGreaterEqual(int(got["LimitNOFILE"]), 4096)

        # postinst: the user and its data folder
        user = pwd.getpwnam("repod")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        st = os.stat("/var/lib/repod")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)
        self.assertEqual(st.st_uid, user.pw_uid)
        with open("/etc/repod/repod.json") as f:
            conf = json.load(f)
        self.assertEqual(conf["data_dir"], "/var/lib/repod")
        self.assertEqual(conf["tls"], {"cert": "/etc/repod/tls/cert.pem", "key": "/etc/repod/tls/key.pem"})

        # the installed repod, as user repod, on a copy of the installed
        # config pointing at test certificates and a port picked here
        work = os.path.join(self.tmp, "run")
        os.mkdir(work, 0o750)
        for name in ("server.crt", "server.key"):
            shutil.copy(os.path.join(harness.cert_dir(), name), work)
        port = harness.free_port()
        conf["listen"] = "127.0.0.1:%d" % port
        conf["tls"] = {"cert": os.path.join(work, "server.crt"), "key": os.path.join(work, "server.key")}
        config = os.path.join(work, "repod.json")
        with open(config, "w") as f:
            json.dump(conf, f)
        os.chmod(self.tmp, 0o755)
        for path in [work] + [os.path.join(work, n) for n in os.listdir(work)]:
            os.chown(path, user.pw_uid, user.pw_gid)

        r = run(*self.as_repod("/usr/bin/repod", "token", "create", "--config", config,
                               "--domain", "domain-pkg", "--role", "admin"))
        secret = r.stdout.strip().splitlines()[-1]
        log_path = os.path.join(self.tmp, "server.log")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(self.as_repod("/usr/bin/repod", "--config", config),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            with open(log_path) as f:
                text = f.read()
            if re.search(r"listening on https://127\.0\.0\.1:%d" % port, text):
                break
            self.assertIsNone(self.proc.poll(), "installed repod exited:\n" + text)
            self.assertLess(time.monotonic(), deadline, "installed repod did not start:\n" + text)
            time.sleep(0.05)

        p = self.assertOK(api(port, "plugin/register", plugin_body("acme/plugin-pkg"), secret))
        self.assertEqual(p["plugin_id"], "plugin-pkg")
        self.assertOK(api(port, "plugin/get", {"plugin_id": "plugin-pkg"}, secret))
        self.assertEqual(os.stat("/var/lib/repod/CURRENT").st_uid, user.pw_uid)

        self.proc.terminate()
        self.assertEqual(self.proc.wait(20), 0)
        self.proc = None

        run("dpkg", "--purge", "repod")
        self.installed = False
        for path in ("/usr/bin/repod", "/usr/bin/repoctl", "/usr/bin/repod-warmup", UNIT,
                     "/etc/repod", "/var/lib/repod", "/usr/share/man/man8/repod.8.gz"):
            self.assertFalse(os.path.exists(path), "%s left after purge" % path)
        with self.assertRaises(KeyError):
            pwd.getpwnam("repod")


if __name__ == "__main__":
    unittest.main()

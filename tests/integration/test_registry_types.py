"""Registry types GITHUB and GCP_PRIVATE_GCR (SPEC 14, docs/registries.md).

  GitHubTest  GITHUB plugins default to registry_url ghcr.io, whose
              `registries` entry points at Debian's docker-registry with
              token auth (realm: registry_util.TokenService).  A public
              image is read with an anonymous token, a private one only
              with the entry's username + password_file (a GitHub token sent
              to the realm with Basic auth); another host is refused.
  GcpTest     GCP_PRIVATE_GCR plugins on gcr.io / *.gcr.io /
              *-docker.pkg.dev: repod signs a JWT with the entry's
              service_account_key_file, the test's token endpoint verifies it
              (RS256 with the public key, audience, expiry) and issues an
              access token, which the registry's token service accepts as the
              password of user oauth2accesstoken.  Access tokens are cached
              and fetched again once expired (or refused by the registry's
              token service); a wrong key, an invalid key
              file or a token_uri that is not allowed give 502
              ERROR_REGISTRY_BAD_RESPONSE naming the registry host, and with
              verify_on_register nothing is stored; the key never shows up in
              answers or the log.

Everything listens on 127.0.0.1 with ports picked at runtime.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import registry_util
from harness import RepodTestCase, Server, plugin_body
from registry_util import Registry, TokenService

try:
    import cryptography  # noqa: F401  (python3-cryptography)
    _skip = registry_util.available()
except ImportError:
    _skip = "needs python3-cryptography (tools/install-deps.sh installs it)"

R = {}


def setUpModule():
    if _skip:
        raise unittest.SkipTest(_skip)
    R["dir"] = tempfile.mkdtemp(prefix="repod-registry-types-")
    try:
        R["tok"] = TokenService(users={"gh-user": "ghp_test-github-token"},
                                public_prefixes=("cloudforet-io/",))
        R["open"] = Registry(R["dir"], name="open").start()
        R["token"] = Registry(R["dir"], name="token", token=R["tok"]).start()
        opn = R["open"]
        opn.push_image("cloudforet-io/plugin-gh-public", ["1.0", "1.10", "1.2", "latest"])
        opn.push_image("secret-org/plugin-gh-private", ["2.0", "2.1"])
        for name in ("plugin-gcp-a", "plugin-gcp-b", "plugin-gcp-c", "plugin-gcp-d",
                     "plugin-gcp-e", "plugin-gcp-f", "plugin-gcp-g"):
            opn.push_image("proj/" + name, ["0.9", "1.0", "v1.1"])
        st, _ = R["token"].tags_list("cloudforet-io/plugin-gh-public")
        assert st == 401, st  # the token registry asks for a token
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for key in ("open", "token"):
        if key in R:
            R[key].stop()
    if "tok" in R:
        R["tok"].close()
    if "dir" in R and not harness.KEEP_TMP:
        shutil.rmtree(R["dir"], ignore_errors=True)
    R.clear()


def entry(reg, **extra):
    """A `registries` entry that maps a host to reg, its realm allowed."""
    e = {"api_url": reg.api_url, "ca_file": os.path.join(harness.cert_dir(), "ca.crt"),
         "timeout_ms": 3000, "token_realm_hosts": [R["tok"].host]}
    e.update(extra)
    return e


class GitHubTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.anon = cls.auth = None
        try:
            cls.anon = Server(start=False, name="types-gh-anon", overrides={
                "registries": {"ghcr.io": entry(R["token"])}})
            cls.anon_admin = cls.anon.make_token("gh", "admin")
            cls.anon.start()
            cls.auth = Server(start=False, name="types-gh-auth")
            pw = os.path.join(cls.auth.tmp, "github.token")
            with open(pw, "w") as f:
                f.write("ghp_test-github-token\n")
            cls.auth.config["registries"] = {
                "ghcr.io": entry(R["token"], username="gh-user", password_file=pw)}
            cls.auth.write_config()
            cls.auth_admin = cls.auth.make_token("gh", "admin")
            cls.auth.start()
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        for s in (cls.anon, cls.auth):
            if s is not None:
                s.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def test_public_image_anonymous_token(self):
        s = self.anon
        r = s.api("plugin/register", plugin_body("cloudforet-io/plugin-gh-public",
                                                 registry_type="GITHUB"), token=self.anon_admin)
        body = self.assertOK(r)
        self.assertEqual(body["registry_type"], "GITHUB")
        self.assertEqual(body["registry_url"], "ghcr.io")
        r = s.api("plugin/get-versions", {"plugin_id": "plugin-gh-public"}, token=self.anon_admin)
        self.assertEqual(self.assertOK(r)["results"], ["1.10", "1.2", "1.0", "latest"])
        self.assertIn((None, "repository:cloudforet-io/plugin-gh-public:pull"),
                      R["tok"].token_requests)

    def test_private_image_needs_credentials(self):
        body = plugin_body("secret-org/plugin-gh-private", registry_type="GITHUB",
                           registry_url="ghcr.io")
        self.assertOK(self.anon.api("plugin/register", body, token=self.anon_admin))
        r = self.anon.api("plugin/get-versions", {"plugin_id": "plugin-gh-private"},
                          token=self.anon_admin)
        self.assertError(r, 404, "ERROR_NO_IMAGE_IN_REGISTRY", contains="ghcr.io")

        self.assertOK(self.auth.api("plugin/register", body, token=self.auth_admin))
        r = self.auth.api("plugin/get-versions", {"plugin_id": "plugin-gh-private"},
                          token=self.auth_admin)
        self.assertEqual(self.assertOK(r)["results"], ["2.1", "2.0"])
        self.assertIn(("gh-user", "repository:secret-org/plugin-gh-private:pull"),
                      R["tok"].token_requests)
        self.assertNotIn("ghp_test-github-token", self.auth.log())

    def test_other_host_refused(self):
        r = self.anon.api("plugin/register",
                          plugin_body("org/plugin-gh-elsewhere", registry_type="GITHUB",
                                      registry_url="harbor.example.com/org"),
                          token=self.anon_admin)
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="ghcr.io")
        r = self.anon.api("plugin/get", {"plugin_id": "plugin-gh-elsewhere"},
                          token=self.anon_admin)
        self.assertError(r, 404, "ERROR_NO_PLUGIN")


class GcpTest(RepodTestCase):
    """Keys: gcr.io good (expires_in 3600), eu.gcr.io good (expires_in 2),
    us-docker.pkg.dev a key the endpoint does not know the public half of,
    asia.gcr.io a key file without private_key, europe-docker.pkg.dev a key
    whose token_uri is not in the entry's token_realm_hosts."""

    @classmethod
    def setUpClass(cls):
        cls.server = None
        tok = R["tok"]
        d = R["dir"]
        good, good_pub = registry_util.new_service_account_key(
            d, "good", "repod@proj.iam.gserviceaccount.com", tok.token_uri)
        short, short_pub = registry_util.new_service_account_key(
            d, "short", "short@proj.iam.gserviceaccount.com", tok.token_uri)
        wrong, _ = registry_util.new_service_account_key(
            d, "wrong", "wrong@proj.iam.gserviceaccount.com", tok.token_uri)
        _, other_pub = registry_util.new_service_account_key(
            d, "other", "other@proj.iam.gserviceaccount.com", tok.token_uri)
        elsewhere, elsewhere_pub = registry_util.new_service_account_key(
            d, "elsewhere", "elsewhere@proj.iam.gserviceaccount.com",
            "https://localhost:%d/oauth2/token" % tok.port)
        tok.add_client("repod@proj.iam.gserviceaccount.com", good_pub, 3600)
        tok.add_client("short@proj.iam.gserviceaccount.com", short_pub, 2)
        tok.add_client("wrong@proj.iam.gserviceaccount.com", other_pub)  # not its key
        tok.add_client("elsewhere@proj.iam.gserviceaccount.com", elsewhere_pub)
        broken = os.path.join(d, "broken.json")
        with open(broken, "w") as f:
            f.write('{"type": "service_account", "client_email": "b@p", '
                    '"token_uri": "%s"}' % tok.token_uri)
        with open(good) as f:
            cls.good_pem_line = f.read().split("\\n")[1]  # a line of the private key
        reg = R["token"]
        try:
            cls.server = Server(start=False, name="types-gcp", overrides={
                "registry": {"verify_on_register": True},
                "registries": {
                    "gcr.io": entry(reg, service_account_key_file=good),
                    "eu.gcr.io": entry(reg, service_account_key_file=short),
                    "us-docker.pkg.dev": entry(reg, service_account_key_file=wrong),
                    "asia.gcr.io": entry(reg, service_account_key_file=broken),
                    "europe-docker.pkg.dev": entry(reg, service_account_key_file=elsewhere),
                }})
            cls.admin = cls.server.make_token("gcp", "admin")
            cls.server.start()
        except BaseException:
            if cls.server is not None:
                cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def register(self, image, url):
        return self.server.api("plugin/register",
                               plugin_body(image, registry_type="GCP_PRIVATE_GCR",
                                           registry_url=url), token=self.admin)

    def versions(self, pid):
        return self.server.api("plugin/get-versions", {"plugin_id": pid}, token=self.admin)

    def assertNothingStored(self, pid):
        r = self.server.api("plugin/get", {"plugin_id": pid}, token=self.admin)
        self.assertError(r, 404, "ERROR_NO_PLUGIN")

    def assertNoSecrets(self, resp):
        text = str(resp.body)
        self.assertNotIn("PRIVATE KEY", text)
        self.assertNotIn(self.good_pem_line, text)
        self.assertNotIn("ya29.", text)

    def test_service_account_key_reads_versions_and_caches_token(self):
        tok = R["tok"]
        email = "repod@proj.iam.gserviceaccount.com"
        grants = tok.grants_of(email)
        body = self.assertOK(self.register("plugin-gcp-a", "gcr.io/proj"))
        self.assertEqual(body["registry_url"], "gcr.io/proj")
        self.assertNoSecrets(self.server.api("plugin/get", {"plugin_id": "plugin-gcp-a"},
                                             token=self.admin))
        r = self.versions("plugin-gcp-a")
        self.assertEqual(self.assertOK(r)["results"], ["v1.1", "1.0", "0.9"])
        grants = tok.grants_of(email)
        self.assertGreaterEqual(grants, 1)
        users = {u for u, scope in tok.token_requests if scope.endswith("plugin-gcp-a:pull")}
        self.assertEqual(users, {"oauth2accesstoken"})
        # another image: a new registry token, the same access token
        self.assertOK(self.register("plugin-gcp-b", "gcr.io/proj"))
        self.assertEqual(self.assertOK(self.versions("plugin-gcp-b"))["results"],
                         ["v1.1", "1.0", "0.9"])
        self.assertEqual(tok.grants_of(email), grants, "the access token is cached")
        log = self.server.log()
        self.assertNotIn("PRIVATE KEY", log)
        self.assertNotIn(self.good_pem_line, log)
        self.assertNotIn("ya29.", log)

    def test_expired_access_token_fetched_again(self):
        tok = R["tok"]
        email = "short@proj.iam.gserviceaccount.com"
        self.assertOK(self.register("plugin-gcp-c", "eu.gcr.io/proj"))
        self.assertEqual(tok.grants_of(email), 1)
        time.sleep(2.5)  # expires_in is 2: the token service no longer accepts it
        self.assertOK(self.register("plugin-gcp-d", "eu.gcr.io/proj"))
        self.assertEqual(self.assertOK(self.versions("plugin-gcp-d"))["results"],
                         ["v1.1", "1.0", "0.9"])
        self.assertEqual(tok.grants_of(email), 2, "a new access token after expiry")

    def test_revoked_access_token_dropped(self):
        tok = R["tok"]
        email = "repod@proj.iam.gserviceaccount.com"
        self.assertOK(self.register("plugin-gcp-f", "gcr.io/proj"))
        grants = tok.grants_of(email)
        with tok.lock:
            tok.issued.clear()  # the registry's token service forgets them
        r = self.register("plugin-gcp-g", "gcr.io/proj")
        self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE", contains="refused")
        self.assertNothingStored("plugin-gcp-g")
        self.assertEqual(tok.grants_of(email), grants, "the cached access token was tried")
        self.assertOK(self.register("plugin-gcp-g", "gcr.io/proj"))
        self.assertEqual(tok.grants_of(email), grants + 1, "a refused token is not used again")

    def test_wrong_key_refused_nothing_stored(self):
        before = len(R["tok"].refusals)
        r = self.register("plugin-gcp-e", "us-docker.pkg.dev/proj")
        d = self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE", contains="us-docker.pkg.dev")
        self.assertIn("service-account key", d["message"])
        self.assertNoSecrets(r)
        self.assertIn("bad signature", R["tok"].refusals[before:])
        self.assertNothingStored("plugin-gcp-e")
        self.assertIn("refused the service-account key of registry us-docker.pkg.dev",
                      self.server.log())

    def test_invalid_key_file_named_error(self):
        r = self.register("plugin-gcp-e", "asia.gcr.io/proj")
        d = self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE", contains="asia.gcr.io")
        self.assertIn("private_key is missing", d["message"])
        self.assertNothingStored("plugin-gcp-e")

    def test_token_uri_not_allowed(self):
        before = list(R["tok"].grants), len(R["tok"].refusals)
        r = self.register("plugin-gcp-e", "europe-docker.pkg.dev/proj")
        d = self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE",
                             contains="europe-docker.pkg.dev")
        self.assertIn("token_uri", d["message"])
        self.assertEqual((list(R["tok"].grants), len(R["tok"].refusals)), before,
                         "nothing was sent to the token_uri")
        self.assertNothingStored("plugin-gcp-e")

    def test_host_must_be_google(self):
        r = self.register("plugin-gcp-e", "harbor.example.com/proj")
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="GCP_PRIVATE_GCR")
        r = self.server.api("plugin/register", plugin_body("plugin-gcp-e",
                                                           registry_type="GCP_PRIVATE_GCR"),
                            token=self.admin)
        self.assertError(r, 400, "ERROR_REQUIRED_PARAMETER", contains="registry_url")


class KeyFileConfigTest(unittest.TestCase):
    """service_account_key_file is resolved against the config's folder and
    must be readable at start; the new types are registry.default_urls keys."""

    def test_key_file_checked_at_load(self):
        tmp = tempfile.mkdtemp(prefix="repod-it-types-config-")
        self.addCleanup(shutil.rmtree, tmp, True)
        certs = harness.cert_dir()
        cfg = {"listen": "127.0.0.1:0",
               "tls": {"cert": os.path.join(certs, "server.crt"),
                       "key": os.path.join(certs, "server.key")},
               "data_dir": os.path.join(tmp, "data"),
               "registry": {"default_urls": {"GITHUB": "ghcr.io/org",
                                             "GCP_PRIVATE_GCR": "gcr.io/proj"}},
               "registries": {"gcr.io": {"service_account_key_file": "gcp.json"}}}
        path = os.path.join(tmp, "repod.json")
        with open(path, "w") as f:
            json.dump(cfg, f)

        def check():
            return subprocess.run([harness.REPOD_BIN, "--check-config", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True, cwd="/", timeout=30)
        r = check()
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stderr.strip(),
                         "%s: registries.gcr.io.service_account_key_file: cannot read gcp.json: "
                         "No such file or directory" % path)
        with open(os.path.join(tmp, "gcp.json"), "w") as f:
            f.write("{}")
        r = check()
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()

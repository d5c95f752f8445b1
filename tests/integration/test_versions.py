"""plugin get-versions and registry.verify_on_register against a real
container registry (SPEC 3 "get-versions" / "register", 6, 9).

Debian's docker-registry (distribution 2.8) runs on 127.0.0.1 with TLS from
the harness's dev CA, started and filled by registry_util.py:

  open   no authentication; every image is pushed through it
  basic  htpasswd (bcrypt); same storage, so it serves the same images
  cache  open, same storage, a process of its own that the cache test stops

repod reads them as HARBOR registries through the config's `registries`
entries (keyed by the plugin's registry_url).  Naming each 127.0.0.1:PORT
there is also what puts it in the outbound allow-list and lets repod connect
to a loopback address (docs/registries.md).  A BlackHole listener that
never answers plays a registry that times out.

Note: distribution 2.8 ignores `n=` on tags/list and sends no Link header,
so Link pagination is covered by tests/unit/test_registry.c (fake
registry); here ~125 tags must all come back, in order.
"""

import os
import shutil
import tempfile
import time
import unittest

import harness
import registry_util
from harness import RepodTestCase, Server, list_snapshot, plugin_body
from registry_util import BlackHole, Registry, spec_order

# team/plugin-alpha: pushed in this (shuffled) order; SPEC 9 order below.
ALPHA_IMAGE = "team/plugin-alpha"
ALPHA_PUSH_ORDER = ["1.2.1.20220422.161421", "latest", "1.2.1", "dev", "1.2.2", "v1.0.0-pre",
                    "1.2.1.20220411.113807", "1.2.1.20220429.104002"]
ALPHA_EXPECTED = ["1.2.2", "1.2.1.20220429.104002", "1.2.1.20220422.161421",
                  "1.2.1.20220411.113807", "1.2.1", "v1.0.0-pre", "dev", "latest"]

# team/plugin-many: 125 tags.  Numeric comparison matters ("0.10.0" >
# "0.9.3" although it sorts first as text) and a longer version wins on an
# equal prefix ("1.10.0" > "1.10").
MANY_IMAGE = "team/plugin-many"
MANY_TAGS = (["%d.%d.%d" % (a, b, c) for a in (0, 1, 2, 3) for b in (0, 1, 2, 9, 10, 11)
              for c in (0, 1, 2, 3, 10)]
             + ["1.10", "v3.11.10.1", "stable", "edge", "latest"])

# team/plugin-untagged: exists in the registry, but its only manifest was
# deleted, so tags/list answers {"name": ..., "tags": null}.
UNTAGGED_IMAGE = "team/plugin-untagged"
UNKNOWN_IMAGE = "team/plugin-nowhere"

BASIC_USER = "alice"
GOOD_PASSWORD = "good-Pw-4e1f0c9d"
BAD_PASSWORD = "WRONG-pw-9b27d3aa51"

VERSIONS_KEYS = {"version", "total_count", "results"}
SLACK_S = 2.0  # allowed on top of a configured timeout

_skip = registry_util.available()

# module state: registries and their storage
R = {}


def setUpModule():
    if _skip:
        raise unittest.SkipTest(_skip)
    R["dir"] = tempfile.mkdtemp(prefix="repod-versions-registry-")
    try:
        d = R["dir"]
        R["htpasswd"] = registry_util.make_htpasswd(d, BASIC_USER, GOOD_PASSWORD)
        R["good_pw"] = os.path.join(d, "good.pw")
        R["bad_pw"] = os.path.join(d, "bad.pw")
        with open(R["good_pw"], "w") as f:
            f.write(GOOD_PASSWORD + "\n")
        with open(R["bad_pw"], "w") as f:
            f.write(BAD_PASSWORD + "\n")
        R["open"] = Registry(d, name="open", delete=True).start()
        R["basic"] = Registry(d, name="basic", htpasswd=R["htpasswd"]).start()
        opn = R["open"]
        opn.push_image(ALPHA_IMAGE, ALPHA_PUSH_ORDER)
        opn.push_image(MANY_IMAGE, MANY_TAGS)
        opn.push_image(UNTAGGED_IMAGE, ["0.1"])
        opn.untag(UNTAGGED_IMAGE, "0.1")
        # what the registry itself says (so a failure below is repod's)
        st, body = opn.tags_list(ALPHA_IMAGE)
        assert st == 200 and sorted(body["tags"]) == sorted(ALPHA_PUSH_ORDER), (st, body)
        st, body = opn.tags_list(MANY_IMAGE)
        assert st == 200 and len(body["tags"]) == len(MANY_TAGS), (st, body)
        st, body = opn.tags_list(UNTAGGED_IMAGE)
        assert st == 200 and not body.get("tags"), (st, body)
        st, body = opn.tags_list(UNKNOWN_IMAGE)
        assert st == 404, (st, body)
        st, body = R["basic"].tags_list(ALPHA_IMAGE)
        assert st == 401, (st, body)
        st, body = R["basic"].tags_list(ALPHA_IMAGE, auth=(BASIC_USER, GOOD_PASSWORD))
        assert st == 200 and len(body["tags"]) == len(ALPHA_PUSH_ORDER), (st, body)
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for key in ("open", "basic", "cache"):
        if key in R:
            R[key].stop()
    if "dir" in R and not harness.KEEP_TMP:
        shutil.rmtree(R["dir"], ignore_errors=True)
    R.clear()


def registry_entry(reg, timeout_ms=2000, **extra):
    """A `registries` config entry for reg (a Registry or a BlackHole)."""
    e = {"api_url": reg.api_url, "ca_file": os.path.join(harness.cert_dir(), "ca.crt"),
         "timeout_ms": timeout_ms}
    e.update(extra)
    return e


def harbor_plugin(image, host, **extra):
    """A register body for image in the HARBOR registry at host."""
    return plugin_body(image, registry_type="HARBOR", registry_url=host, **extra)


def must(resp, what, server):
    if resp.status != 200 or not isinstance(resp.body, dict):
        raise harness.ServerError("%s failed: HTTP %s %r%s" %
                                  (what, resp.status, resp.body, server.describe()))
    return resp.body


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


class VersionsMixin:

    def assertVersions(self, resp, expected, cache=None, msg=None):
        """resp is a 200 VersionsInfo with results == expected (in order),
        version == results, total_count == len; cache: allowed X-Cache
        values (a str or a tuple), None = any of HIT/MISS/STALE."""
        body = self.assertOK(resp, msg=msg)
        self.assertEqual(set(body), VERSIONS_KEYS, "VersionsInfo keys" + self._ctx(resp, msg))
        self.assertEqual(body["results"], expected, "results order" + self._ctx(resp, msg))
        self.assertEqual(body["version"], body["results"],
                         "version must carry the same list" + self._ctx(resp, msg))
        self.assertEqual(body["total_count"], len(expected), "total_count" + self._ctx(resp, msg))
        xc = resp.headers.get("X-Cache")
        allowed = ("HIT", "MISS", "STALE") if cache is None else (
            (cache,) if isinstance(cache, str) else tuple(cache))
        self.assertIn(xc, allowed, "X-Cache" + self._ctx(resp, msg))
        return body


# --------------------------------------------------------------------------
# 1, 2, 3, 4, 7: one server reading the registries

class GetVersionsTest(VersionsMixin, RepodTestCase):
    """Server S; each test has its own domain(s), so tests do not share
    version caches:

      open   alpha, many, nowhere (unknown image), untagged  @ open registry
      basic  alpha @ basic registry, right password
      wrong  alpha @ basic registry (as localhost:PORT), wrong password
      cache  alpha, many @ the "cache" registry (stopped by the test)
      hole   alpha @ a listener that never answers (timeout_ms 800)
    """

    TTL_S = 2
    HOLE_TIMEOUT_MS = 800

    @classmethod
    def setUpClass(cls):
        cls.hole = None
        cls.server = None
        try:
            R["cache"] = Registry(R["dir"], name="cache").start()
            cls.hole = BlackHole()
            opn, basic, cache = R["open"], R["basic"], R["cache"]
            cls.wrong_host = "localhost:%d" % basic.port
            regs = {
                opn.host: registry_entry(opn),
                basic.host: registry_entry(basic, username=BASIC_USER,
                                           password_file=R["good_pw"]),
                cls.wrong_host: registry_entry(basic, username=BASIC_USER,
                                               password_file=R["bad_pw"],
                                               api_url="https://localhost:%d" % basic.port),
                cache.host: registry_entry(cache),
                cls.hole.host: registry_entry(cls.hole, timeout_ms=cls.HOLE_TIMEOUT_MS),
            }
            cls.server = Server(start=False, name="versions", overrides={
                "registries": regs,
                "remote_defaults": {"ttl_s": cls.TTL_S, "stale_while_revalidate": True,
                                    "stale_if_error_s": 3600, "timeout_ms": 2000},
            })
            cls.tok = {}
            for dom in ("open", "basic", "wrong", "cache", "hole"):
                cls.tok[dom] = cls.server.make_token(dom, "admin")
            cls.tok["open-viewer"] = cls.server.make_token("open", "viewer")
            cls.server.start()
            s = cls.server
            for dom, image, host in (("open", ALPHA_IMAGE, opn.host),
                                     ("open", MANY_IMAGE, opn.host),
                                     ("open", UNKNOWN_IMAGE, opn.host),
                                     ("open", UNTAGGED_IMAGE, opn.host),
                                     ("basic", ALPHA_IMAGE, basic.host),
                                     ("wrong", ALPHA_IMAGE, cls.wrong_host),
                                     ("cache", ALPHA_IMAGE, cache.host),
                                     ("cache", MANY_IMAGE, cache.host),
                                     ("hole", ALPHA_IMAGE, cls.hole.host)):
                must(s.api("plugin/register", harbor_plugin(image, host), token=cls.tok[dom]),
                     "register %s in %s" % (image, dom), s)
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        if cls.server is not None:
            cls.server.close()
        if cls.hole is not None:
            cls.hole.close()
        if "cache" in R:
            R.pop("cache").stop()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server.running():
                cls.server.stop()
        finally:
            cls._close()

    def versions(self, plugin_id, dom, **kw):
        return self.server.api("plugin/get-versions", {"plugin_id": plugin_id},
                               token=self.tok[dom], **kw)

    # 1 ------------------------------------------------------------------------

    def test_open_registry_spec_order(self):
        r = self.versions("plugin-alpha", "open")
        self.assertVersions(r, ALPHA_EXPECTED, cache="MISS")
        # a viewer of the domain may read it too (anyone allowed to get it)
        r = self.versions("plugin-alpha", "open-viewer")
        self.assertVersions(r, ALPHA_EXPECTED)
        # another domain does not see the plugin at all
        r = self.versions("plugin-many", "basic")
        self.assertError(r, 404, "ERROR_NO_PLUGIN")

    # 2 ------------------------------------------------------------------------

    def test_basic_auth_right_and_wrong_password(self):
        r = self.versions("plugin-alpha", "basic")
        self.assertVersions(r, ALPHA_EXPECTED)

        r = self.versions("plugin-alpha", "wrong")
        detail = self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE")
        self.assertIn("authentication", detail["message"].lower(), self._ctx(r))
        raw = repr(r.body) + str(r.headers)
        for pw in (BAD_PASSWORD, GOOD_PASSWORD):
            self.assertNotIn(pw, raw, "password in the answer")
            self.assertNotIn(pw, self.server.log(), "password in the server log")
        # nothing bad is cached: asking again gives the same error
        r = self.versions("plugin-alpha", "wrong")
        self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE")
        self.assertNotIn(BAD_PASSWORD, self.server.log(), "password in the server log")

    def test_deregister_forgets_cached_versions(self):
        # a plugin_id registered again for another image must not be answered
        # with the old image's cached tags
        s, host = self.server, R["open"].host
        tok = s.make_token("reuse", "admin")
        must(s.api("plugin/register", harbor_plugin(ALPHA_IMAGE, host), token=tok), "register", s)
        self.assertVersions(s.api("plugin/get-versions", {"plugin_id": "plugin-alpha"}, token=tok),
                            ALPHA_EXPECTED)
        must(s.api("plugin/deregister", {"plugin_id": "plugin-alpha"}, token=tok), "deregister", s)
        must(s.api("plugin/register", harbor_plugin("other/plugin-alpha", host), token=tok),
             "register again", s)
        r = s.api("plugin/get-versions", {"plugin_id": "plugin-alpha"}, token=tok)
        self.assertError(r, 404, "ERROR_NO_IMAGE_IN_REGISTRY")

    # 3 ------------------------------------------------------------------------

    def test_unknown_image_404(self):
        r = self.versions("plugin-nowhere", "open")
        self.assertError(r, 404, "ERROR_NO_IMAGE_IN_REGISTRY")

    # 4 ------------------------------------------------------------------------

    def test_cache_hit_then_stale_when_registry_down(self):
        cache = R["cache"]
        t0 = time.monotonic()
        r = self.versions("plugin-alpha", "cache")
        self.assertVersions(r, ALPHA_EXPECTED, cache="MISS", msg="first read")
        r = self.versions("plugin-alpha", "cache")
        self.assertVersions(r, ALPHA_EXPECTED, cache="HIT", msg="second read within ttl")

        cache.stop()
        r = self.versions("plugin-alpha", "cache")
        if time.monotonic() - t0 < self.TTL_S - 0.3:
            self.assertVersions(r, ALPHA_EXPECTED, cache="HIT",
                                msg="within ttl, registry down: still fresh")
        else:
            self.assertVersions(r, ALPHA_EXPECTED, cache=("HIT", "STALE"))

        time.sleep(max(0.0, t0 + self.TTL_S + 0.5 - time.monotonic()))
        for i in range(2):
            r = self.versions("plugin-alpha", "cache")
            self.assertVersions(r, ALPHA_EXPECTED, cache="STALE",
                                msg="after ttl, registry down (read %d)" % (i + 1))

        # a plugin whose versions were never read: nothing to serve
        r, took = timed(self.versions, "plugin-many", "cache")
        self.assertError(r, 503, "ERROR_REGISTRY_UNAVAILABLE")
        self.assertLess(took, 2.0 + SLACK_S, "503 took %.2f s" % took)

    def test_registry_timeout_504(self):
        r, took = timed(self.versions, "plugin-alpha", "hole")
        self.assertError(r, 504, "ERROR_REGISTRY_TIMEOUT")
        self.assertLess(took, self.HOLE_TIMEOUT_MS / 1000.0 + SLACK_S, "504 took %.2f s" % took)

    # 7 ------------------------------------------------------------------------

    def test_many_tags_all_in_order(self):
        expected = spec_order(MANY_TAGS)
        # spot checks of the reference order itself
        self.assertEqual(expected[0], "v3.11.10.1")
        self.assertLess(expected.index("1.10.0"), expected.index("1.10"))
        self.assertLess(expected.index("0.10.0"), expected.index("0.9.10"))
        self.assertEqual(expected[-3:], ["edge", "latest", "stable"])
        self.assertGreater(len(expected), 120)
        r = self.versions("plugin-many", "open")
        self.assertVersions(r, expected)


# --------------------------------------------------------------------------
# 5: registry.verify_on_register

class VerifyOnRegisterTest(VersionsMixin, RepodTestCase):

    @classmethod
    def setUpClass(cls):
        opn = R["open"]
        cls.host = opn.host
        cls.server = Server(start=False, name="verify", overrides={
            "registries": {opn.host: registry_entry(opn)},
            "registry": {"verify_on_register": True},
            "remote_defaults": {"ttl_s": 2},
        })
        try:
            cls.admin = cls.server.make_token("v", "admin")
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server.running():
                cls.server.stop()
        finally:
            cls.server.close()

    def test_no_tags_refused_tagged_stored(self):
        s = self.server
        before = list_snapshot(s, self.admin)
        for image, why in ((UNTAGGED_IMAGE, "repository without tags"),
                           (UNKNOWN_IMAGE, "unknown repository")):
            with self.subTest(image=image, why=why):
                r = s.api("plugin/register", harbor_plugin(image, self.host), token=self.admin)
                self.assertError(r, 404, "ERROR_NO_IMAGE_IN_REGISTRY", msg=why)
                self.assertEqual(list_snapshot(s, self.admin), before, "nothing stored")
                pid = image.rsplit("/", 1)[-1]
                r = s.api("plugin/get", {"plugin_id": pid}, token=self.admin)
                self.assertError(r, 404, "ERROR_NO_PLUGIN")

        r = s.api("plugin/register", harbor_plugin(ALPHA_IMAGE, self.host), token=self.admin)
        p = self.assertOK(r)
        self.assertPluginInfo(p)
        self.assertEqual((p["plugin_id"], p["registry_type"], p["registry_url"]),
                         ("plugin-alpha", "HARBOR", self.host))
        after = list_snapshot(s, self.admin)
        self.assertEqual(after["total_count"], before["total_count"] + 1, after)
        self.assertIn("plugin-alpha", [x["plugin_id"] for x in after["results"]])

        # a second register of the same image is a duplicate, as usual
        r = s.api("plugin/register", harbor_plugin(ALPHA_IMAGE, self.host), token=self.admin)
        self.assertError(r, 409, "ERROR_SAVE_UNIQUE_VALUES")
        self.assertEqual(list_snapshot(s, self.admin), after)

        r = s.api("plugin/get-versions", {"plugin_id": "plugin-alpha"}, token=self.admin)
        self.assertVersions(r, ALPHA_EXPECTED)


# --------------------------------------------------------------------------
# 6: a mirror relays the upstream's version list and keeps serving it

class MirrorVersionsTest(VersionsMixin, RepodTestCase):

    TTL_S = 3

    @classmethod
    def setUpClass(cls):
        opn = R["open"]
        cls.up = Server(start=False, name="versions-U", overrides={
            "auth": {"public_domains": ["market"]},
            "registries": {opn.host: registry_entry(opn)},
            "remote_defaults": {"ttl_s": 300},
        })
        cls.server = cls.mirror = Server(start=False, name="versions-M")
        try:
            market = cls.up.make_token("market", "admin")
            cls.up.start()
            must(cls.up.api("plugin/register", harbor_plugin(ALPHA_IMAGE, opn.host,
                                                             name="Alpha"), token=market),
                 "register on U", cls.up)
            b = must(cls.up.api("repository/list", {"repository_type": "local"}),
                     "repository list on U", cls.up)
            cls.u_local_id = b["results"][0]["repository_id"]
            cls.system = cls.mirror.make_token("root", "system")
            cls.mirror.start()
            must(cls.mirror.api("repository/register", {
                "name": "Market", "repository_type": "remote", "endpoint": cls.up.endpoint,
                "upstream": {"ca_file": cls.mirror.ca_file},
                "cache": {"ttl_s": cls.TTL_S, "stale_while_revalidate": True,
                          "stale_if_error_s": 3600, "timeout_ms": 1000}},
                token=cls.system), "repository register on M", cls.mirror)
            must(cls.mirror.api("repository/sync", {"repository_id": cls.u_local_id},
                                token=cls.system), "repository sync on M", cls.mirror)
        except BaseException:
            cls.mirror.close()
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        cls.up.close()

    def mversions(self):
        return self.mirror.api("plugin/get-versions", {"plugin_id": "plugin-alpha"})

    def test_mirror_relays_and_serves_when_upstream_gone(self):
        self.server = self.up
        u = self.assertVersions(self.up.api("plugin/get-versions", {"plugin_id": "plugin-alpha"}),
                                ALPHA_EXPECTED, msg="U's own answer")
        self.server = self.mirror

        t0 = time.monotonic()
        r = self.mversions()
        m = self.assertVersions(r, ALPHA_EXPECTED, cache=("MISS", "HIT"), msg="M first read")
        first = r.headers.get("X-Cache")
        self.assertEqual(m, u, "M must answer what U answers")
        r = self.mversions()
        self.assertEqual(self.assertVersions(r, ALPHA_EXPECTED, cache="HIT", msg="M second read"),
                         u)
        # same answer when the repository is named
        r = self.mirror.api("plugin/get-versions", {"plugin_id": "plugin-alpha",
                                                    "repository_id": self.u_local_id})
        self.assertEqual(self.assertVersions(r, ALPHA_EXPECTED, msg="M with repository_id"), u)

        self.up.stop()
        r = self.mversions()
        if first == "MISS" and time.monotonic() - t0 < self.TTL_S - 0.3:
            want = "HIT"
        else:
            want = ("HIT", "STALE")
        self.assertEqual(self.assertVersions(r, ALPHA_EXPECTED, cache=want,
                                             msg="U stopped, within ttl"), u)

        time.sleep(max(0.0, t0 + self.TTL_S + 0.5 - time.monotonic()))
        for i in range(2):
            r = self.mversions()
            self.assertEqual(self.assertVersions(r, ALPHA_EXPECTED, cache="STALE",
                                                 msg="U stopped, after ttl (%d)" % (i + 1)), u)


if __name__ == "__main__":
    unittest.main()

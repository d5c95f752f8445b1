"""The web console at /ui/ (SPEC 13, docs/console.md).

TestConsoleAssets: the embedded files as served (content types, ETag and
304, Cache-Control, the security headers on every console answer, 308 from
/ui, 404 and 405, ui.enabled: false), over HTTPS without a browser.

TestConsoleBrowser: headless Chromium driven by Selenium against a real
mirror repod whose remote repository is a real upstream repod (as in
test_federation.py), with a real container registry (docker-registry) for
one plugin's versions.  Chromium trusts the test server's key through
--ignore-certificate-errors-spki-list (only that public key is accepted; no
blanket --ignore-certificate-errors).  Screenshots of each page go to a temp
folder whose path is printed; with REPOD_CONSOLE_SHOTS=DIR they go to DIR
(docs/console/*.png are made that way).  Skipped, with the reason, when
Chromium, ChromeDriver or Selenium is not installed (tools/install-deps.sh
installs them).
"""

import base64
import hashlib
import json
import os
import shutil
import tempfile
import time
import unittest

import harness
import registry_util
from harness import RepodTestCase, Server, free_port, plugin_body

CONSOLE_DIR = os.path.join(harness.SOURCE_DIR, "console")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
XSS_IMG = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = "<script>window.__xss=1</script>"


def console_files():
    return sorted(n for n in os.listdir(CONSOLE_DIR) if not n.startswith("."))


class TestConsoleAssets(RepodTestCase):
    """The files under /ui/ and the headers of every console answer."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(name="console-assets")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def get(self, path, headers=None, method="GET"):
        return self.server.request(path, method=method, headers=headers)

    def assertSecurityHeaders(self, r):
        self.assertEqual(r.headers.get("Content-Security-Policy"), CSP, self._ctx(r))
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff", self._ctx(r))
        self.assertEqual(r.headers.get("Referrer-Policy"), "no-referrer", self._ctx(r))

    def test_every_file_served_as_is_with_its_type_and_etag(self):
        names = console_files()
        self.assertIn("index.html", names)
        for name in names:
            with open(os.path.join(CONSOLE_DIR, name), "rb") as f:
                data = f.read()
            r = self.get("/ui/" + name)
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.body, data, name)
            self.assertEqual(r.headers["Content-Type"], TYPES[os.path.splitext(name)[1]], name)
            self.assertEqual(r.headers["ETag"], '"%s"' % hashlib.sha256(data).hexdigest(), name)
            self.assertEqual(r.headers["Cache-Control"], "no-cache", name)
            self.assertSecurityHeaders(r)

    def test_root_is_index_and_ui_redirects(self):
        with open(os.path.join(CONSOLE_DIR, "index.html"), "rb") as f:
            index = f.read()
        r = self.get("/ui/")
        self.assertEqual((r.status, r.body), (200, index))
        r = self.get("/ui")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "/ui/")
        self.assertSecurityHeaders(r)

    def test_if_none_match_gives_304_without_body(self):
        first = self.get("/ui/app.js")
        etag = first.headers["ETag"]
        for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
            r = self.get("/ui/app.js", headers={"If-None-Match": inm})
            self.assertEqual(r.status, 304, inm)
            self.assertEqual(r.body, b"", inm)
            self.assertEqual(r.headers["ETag"], etag)
            self.assertSecurityHeaders(r)
        r = self.get("/ui/app.js", headers={"If-None-Match": '"other"'})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, first.body)

    def test_head_answers_headers_only(self):
        r = self.get("/ui/style.css", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["Content-Type"], "text/css; charset=utf-8")
        self.assertSecurityHeaders(r)

    def test_unknown_file_and_other_methods_are_json_errors_with_the_headers(self):
        r = self.get("/ui/nothing.js")
        self.assertError(r, 404, "ERROR_UNKNOWN_ROUTE")
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertSecurityHeaders(r)
        r = self.server.request("/ui/", body={}, method="POST")
        self.assertError(r, 405, "ERROR_METHOD_NOT_ALLOWED")
        self.assertEqual(r.headers["Allow"], "GET, HEAD")
        self.assertSecurityHeaders(r)

    def test_api_answers_do_not_change(self):
        r = self.server.api("plugin/list", {})
        self.assertOK(r)
        self.assertEqual(r.headers["Cache-Control"], "no-store")
        self.assertIsNone(r.headers.get("Content-Security-Policy"))

    def test_no_inline_code_and_no_markup_sinks(self):
        """What the CSP forbids is not needed: the page has no inline script,
        style or handler, and no script parses strings as markup or code."""
        import re
        with open(os.path.join(CONSOLE_DIR, "index.html")) as f:
            html = f.read()
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html), [])
        self.assertNotIn("<style", html)
        self.assertIsNone(re.search(r"\sstyle=|\son[a-z]+=", html))
        sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|"
                           r"\beval\(|new Function|setTimeout\(['\"]|javascript:")
        for name in console_files():
            if not name.endswith(".js"):
                continue
            with open(os.path.join(CONSOLE_DIR, name)) as f:
                code = "\n".join(ln for ln in f.read().splitlines()
                                 if not ln.strip().startswith("//"))
            self.assertIsNone(sinks.search(code), name)

    def test_ui_disabled_is_the_api_404(self):
        with Server(name="console-off", overrides={"ui": {"enabled": False}}) as off:
            for path in ("/ui/", "/ui", "/ui/app.js"):
                r = off.request(path, method="GET")
                self.assertError(r, 404, "ERROR_UNKNOWN_ROUTE", msg=path)
                self.assertIsNone(r.headers.get("Content-Security-Policy"), path)
            self.assertOK(off.request("/healthz", method="GET"))


# --------------------------------------------------------------------------
# the browser

def _browser_missing():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs Selenium (Debian package python3-selenium)"
    for b in ("chromium", "chromedriver"):
        if shutil.which(b) is None and not os.access("/usr/bin/" + b, os.X_OK):
            return "needs %s (Debian packages chromium and chromium-driver)" % b
    return None


BROWSER_MISSING = _browser_missing()


def spki_hash(cert_path):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as
    Chromium's --ignore-certificate-errors-spki-list wants it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def must(resp, what, server):
    if resp.status != 200 or not isinstance(resp.body, dict):
        raise harness.ServerError("%s failed: HTTP %s %r%s" %
                                  (what, resp.status, resp.body, server.describe()))
    return resp.body


@unittest.skipIf(BROWSER_MISSING, BROWSER_MISSING)
class TestConsoleBrowser(RepodTestCase):
    """The console in headless Chromium against a mirror of a real upstream."""

    PAGE_SIZE = 10  # catalog.js PAGE_SIZE
    WAIT_S = 15

    @classmethod
    def setUpClass(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        cls.servers = []
        cls.registry = None
        cls.driver = None
        cls.shots = os.environ.get("REPOD_CONSOLE_SHOTS") or tempfile.mkdtemp(
            prefix="repod-console-shots-")
        os.makedirs(cls.shots, exist_ok=True)
        print("\nconsole screenshots: %s" % cls.shots, flush=True)
        try:
            cls._start_servers()
            cls.profile = tempfile.mkdtemp(prefix="repod-console-chromium-")
            opts = webdriver.ChromeOptions()
            opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
            for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                      "--user-data-dir=" + cls.profile,
                      # trust exactly the test server's key (see the file header)
                      "--ignore-certificate-errors-spki-list=" +
                      spki_hash(os.path.join(harness.cert_dir(), "server.crt"))):
                opts.add_argument(a)
            opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
            cls.driver = webdriver.Chrome(service=service, options=opts)
            cls.driver.set_page_load_timeout(30)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start_servers(cls):
        # the upstream: a public "market" domain
        cls.up = Server(start=False, name="ui-U", overrides={
            "auth": {"public_domains": ["market"]},
            "registries": {"127.0.0.1:%d" % cls._dead_port(): {}}})
        cls.servers.append(cls.up)
        market_admin = cls.up.make_token("market", "admin")
        cls.up.start()
        dead = "127.0.0.1:%d" % cls._dead_port()
        for i, (image, name, provider) in enumerate([
                ("market/mk-alpha", "Alpha Market", "acme"),
                ("market/mk-bravo", "Bravo Market", "acme"),
                ("market/mk-charlie", "Charlie Market", "globex"),
                ("market/mk-delta", "Delta Market", "globex"),
                ("market/mk-echo", "Echo Market", "initech"),
                ("market/mk-foxtrot", "Foxtrot Market", "initech")]):
            must(cls.up.api("plugin/register", plugin_body(
                image, name=name, provider=provider, registry_type="HARBOR", registry_url=dead,
                resource_type="inventory.Collector" if i % 2 else "monitoring.DataSource",
                labels=["market"], tags={"description": name}), token=market_admin),
                 "register " + image, cls.up)

        # a real registry for one local plugin's versions
        cls.reg_dir = tempfile.mkdtemp(prefix="repod-console-reg-")
        reg_entry = {}
        if registry_util.available() is None:
            cls.registry = registry_util.Registry(cls.reg_dir, name="console").start()
            cls.registry.push_image("team/loc-versions", ["1.0.0", "1.2.0", "latest"])
            reg_entry = {cls.registry.host: {"api_url": cls.registry.api_url,
                                             "ca_file": os.path.join(harness.cert_dir(), "ca.crt"),
                                             "timeout_ms": 3000}}
        cls.dead_host = dead
        reg_entry[dead] = {"api_url": "https://" + dead, "timeout_ms": 2000}

        # the mirror
        cls.server = cls.mirror = Server(start=False, name="ui-M",
                                         overrides={"registries": reg_entry})
        cls.servers.append(cls.mirror)
        cls.system = cls.mirror.make_token("root", "system")
        cls.admin = cls.mirror.make_token("d1", "admin")
        cls.viewer = cls.mirror.make_token("d1", "viewer")
        cls.mirror.start()
        icon = "https://127.0.0.1:%d/ui/favicon.svg" % cls.mirror.port
        local = [("team/loc-%02d" % i, "Local plugin %02d" % i,
                  "acme" if i % 3 == 0 else "umbrella") for i in range(1, 10)]
        for image, name, provider in local:
            must(cls.mirror.api("plugin/register", plugin_body(
                image, name=name, provider=provider, registry_type="HARBOR",
                registry_url=dead, labels=["local"], tags={"icon": icon}),
                token=cls.admin), "register " + image, cls.mirror)
        if cls.registry is not None:
            must(cls.mirror.api("plugin/register", plugin_body(
                "team/loc-versions", name="Versions plugin", provider="umbrella",
                registry_type="HARBOR", registry_url=cls.registry.host, tags={"icon": icon}),
                token=cls.admin), "register loc-versions", cls.mirror)
        must(cls.mirror.api("plugin/register", plugin_body(
            "team/xss-probe", name=XSS_IMG + XSS_SCRIPT, provider=XSS_SCRIPT,
            registry_type="HARBOR", registry_url=dead, labels=[XSS_IMG],
            tags={"description": XSS_SCRIPT, "note": XSS_IMG, "icon": "javascript:window.__xss=1"}),
            token=cls.admin), "register xss-probe", cls.mirror)
        cls.up_local_id = must(cls.up.api("repository/list", {"repository_type": "local"}),
                               "repository list", cls.up)["results"][0]["repository_id"]
        must(cls.mirror.api("repository/register", {
            "name": "Market", "repository_type": "remote", "endpoint": cls.up.endpoint,
            "upstream": {"ca_file": cls.mirror.ca_file}}, token=cls.system),
            "repository register", cls.mirror)
        must(cls.mirror.api("repository/sync", {"repository_id": cls.up_local_id},
                            token=cls.system), "repository sync", cls.mirror)

    @classmethod
    def _dead_port(cls):
        if not hasattr(cls, "_dead"):
            cls._dead = free_port()  # nothing listens there: connection refused at once
        return cls._dead

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            cls.driver.quit()
            cls.driver = None
        for s in reversed(getattr(cls, "servers", [])):
            s.close()
        if cls.registry is not None:
            cls.registry.stop()
        for d in (getattr(cls, "profile", None), getattr(cls, "reg_dir", None)):
            if d:
                shutil.rmtree(d, True)

    # -- helpers --------------------------------------------------------------

    def url(self, fragment=""):
        return "https://127.0.0.1:%d/ui/%s" % (self.mirror.port, fragment)

    def open(self, fragment, token=None, role=None):
        """Opens the console at fragment signed in with token (None: anonymous);
        role: what the console believes the token's role is (default: its own)."""
        d = self.driver
        # leave the previous page first (its calls still pending end with
        # it): what it logged is not this test's
        d.get("about:blank")
        d.get_log("browser")
        d.get(self.url("#/signin"))
        if token is None:
            d.execute_script("sessionStorage.clear()")
        else:
            role = role or {self.system: "system", self.admin: "admin",
                            self.viewer: "viewer"}[token]
            d.execute_script("sessionStorage.setItem('repod.token', arguments[0]);"
                             "sessionStorage.setItem('repod.role', arguments[1])", token, role)
        d.get(self.url(fragment))
        d.refresh()

    def wait(self, fn, what):
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.driver, self.WAIT_S, 0.05).until(lambda d: fn(d))
        except Exception as e:
            raise AssertionError("timed out waiting for %s (%s); page: %s; log: %s" %
                                 (what, type(e).__name__, self.driver.current_url,
                                  self.driver.get_log("browser")))

    def css(self, sel):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, sel)

    def one(self, sel):
        found = self.wait(lambda d: self.css(sel), sel)
        return found[0]

    def catalog_loaded(self, fragment):
        self.wait(lambda d: d.execute_script(
            "var e = document.querySelector('section.catalog');"
            "return e && e.dataset.loaded === arguments[0]", fragment),
            "catalog %s loaded" % fragment)

    def shot(self, name):
        """A screenshot of the whole page (the window grown to fit it)."""
        path = os.path.join(self.shots, name + ".png")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(600, min(int(height) + 120, 2400)))
        try:
            self.driver.save_screenshot(path)
        finally:
            self.driver.set_window_size(1280, 900)
        return path

    def assertCleanLog(self, allow_failed_loads=False):
        """No CSP violation, no JavaScript error in the browser log; failed
        network loads only where the test caused an error answer on purpose."""
        bad = []
        for entry in self.driver.get_log("browser"):
            msg = entry.get("message", "")
            if "Content Security Policy" in msg or "Refused to" in msg:
                bad.append(msg)
            elif entry.get("level") == "SEVERE":
                if allow_failed_loads and "Failed to load resource" in msg:
                    continue
                bad.append(msg)
        self.assertEqual(bad, [], "browser log")

    def api_list(self, token, query, **extra):
        body = {"query": query}
        body.update(extra)
        return must(self.mirror.api("plugin/list", body, token=token), "plugin list", self.mirror)

    def shown_ids(self):
        return [r.get_attribute("data-plugin-id") for r in self.css("tr.plugin-row")]

    def facet_counts(self, facet):
        out = {}
        for a in self.css('a.facet[data-facet="%s"]' % facet):
            out[a.get_attribute("data-value")] = int(a.find_element(
                "css selector", ".count").text)
        return out

    # -- tests ----------------------------------------------------------------

    def test_catalog_search_facets_and_paging(self):
        self.open("#/catalog", self.viewer)
        self.catalog_loaded("#/catalog")
        every = self.api_list(self.viewer, {"sort": {"key": "name"}})
        total = every["total_count"]
        self.assertGreater(total, self.PAGE_SIZE)
        self.assertEqual(self.one("#summary").get_attribute("data-total"), str(total))
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in every["results"]][:self.PAGE_SIZE])
        # facet counts are the API's (no other facet chosen: list with that filter)
        providers = self.facet_counts("provider")
        self.assertEqual(set(providers), {p["provider"] for p in every["results"]})
        for value, count in providers.items():
            n = self.api_list(self.viewer, {"filter": [{"k": "provider", "v": value, "o": "eq"}],
                                            "count_only": True})["total_count"]
            self.assertEqual(count, n, value)
        repos = self.facet_counts("repository")
        self.assertEqual(repos.get(self.up_local_id), 6)
        self.assertEqual(sum(repos.values()), total)
        self.assertEqual(sum(self.facet_counts("state").values()), total)
        self.assertEqual(sum(self.facet_counts("resource_type").values()), total)
        self.shot("catalog")

        # paging: the API's second page
        self.one("#next").click()
        self.catalog_loaded("#/catalog?page=2")
        self.assertEqual(self.shown_ids(),
                         [p["plugin_id"] for p in every["results"]][self.PAGE_SIZE:2 * self.PAGE_SIZE])
        self.assertIn("Page 2 of %d" % -(-total // self.PAGE_SIZE), self.one("#page-info").text)

        # search narrows (debounced), and the URL carries the query
        box = self.one("#search")
        box.clear()
        box.send_keys("market")
        self.catalog_loaded("#/catalog?q=market")
        self.assertTrue(self.driver.current_url.endswith("#/catalog?q=market"))
        found = self.api_list(self.viewer, {"keyword": "market", "sort": {"key": "name"}})
        self.assertEqual(found["total_count"], 6)
        self.assertEqual(self.one("#summary").get_attribute("data-total"), "6")
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in found["results"]])

        # a facet narrows further; counts of the others follow
        self.assertEqual(self.facet_counts("provider"), {"acme": 2, "globex": 2, "initech": 2})
        self.css('a.facet[data-facet="provider"][data-value="globex"]')[0].click()
        self.catalog_loaded("#/catalog?q=market&provider=globex")
        both = self.api_list(self.viewer, {"keyword": "market", "sort": {"key": "name"},
                                           "filter": [{"k": "provider", "v": "globex", "o": "eq"}]})
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in both["results"]])
        self.assertEqual(sum(self.facet_counts("resource_type").values()), both["total_count"])

        # the repository facet: the remote tier alone
        self.driver.get(self.url("#/catalog"))
        self.driver.refresh()
        self.catalog_loaded("#/catalog")
        self.css('a.facet[data-facet="repository"][data-value="%s"]' % self.up_local_id)[0].click()
        self.catalog_loaded("#/catalog?repository=" + self.up_local_id)
        remote = self.api_list(self.viewer, {"sort": {"key": "name"}, "filter": [
            {"k": "repository_info.repository_id", "v": self.up_local_id, "o": "eq"}]})
        self.assertEqual(remote["total_count"], 6)
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in remote["results"]])
        self.assertTrue(all(r.text.find("Market (remote)") >= 0 for r in self.css("tr.plugin-row")))

        # the URL is a bookmark: a fresh load shows the same
        self.driver.get(self.url("#/catalog?sort=-name&q=local"))
        self.driver.refresh()
        self.catalog_loaded("#/catalog?sort=-name&q=local")
        rev = self.api_list(self.viewer, {"keyword": "local", "sort": {"key": "name", "desc": True},
                                          "page": {"start": 1, "limit": self.PAGE_SIZE}})
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in rev["results"]])
        self.assertEqual(self.one("#sort").get_attribute("value"), "-name")
        self.assertCleanLog()

    def test_sign_in_keeps_the_token_in_session_storage_only(self):
        self.open("#/signin")
        box = self.one("#token-input")
        box.send_keys("not-a-token")
        self.one("#signin").click()
        err = self.one("#signin-status .error")
        answer = self.mirror.api("plugin/list", {"query": {"count_only": True}}, token="not-a-token")
        self.assertEqual(answer.status, 401)
        self.assertIn("ERROR_AUTHENTICATE_FAILURE", err.text)
        self.assertIn(answer.body["detail"]["message"], err.text)
        self.assertIsNone(self.driver.execute_script("return sessionStorage.getItem('repod.token')"))
        self.shot("signin-refused")

        box.clear()
        box.send_keys(self.admin)
        self.one("#signin").click()
        self.wait(lambda d: d.current_url.endswith("#/catalog"), "catalog after sign-in")
        self.assertEqual(self.one("#whoami").get_attribute("data-role"), "admin")
        self.assertEqual(self.driver.execute_script("return sessionStorage.getItem('repod.token')"),
                         self.admin)
        self.assertEqual(self.driver.execute_script("return document.cookie"), "")
        self.assertNotIn(self.admin, self.driver.current_url)
        self.assertEqual(self.driver.get_cookies(), [])
        self.driver.get(self.url("#/signin"))
        self.wait(lambda d: "admin" in self.one("#signin-current").text, "signed-in text")
        self.shot("signin")

        # sign out forgets the token; a system token is recognised as such
        self.one("#signout").click()
        self.wait(lambda d: d.execute_script("return sessionStorage.length") == 0, "sign out")
        self.assertEqual(self.one("#whoami").get_attribute("data-role"), "anonymous")
        self.one("#token-input").send_keys(self.system)
        self.one("#signin").click()
        self.wait(lambda d: d.current_url.endswith("#/catalog"), "catalog after sign-in")
        self.assertEqual(self.one("#whoami").get_attribute("data-role"), "system")
        self.assertCleanLog(allow_failed_loads=True)  # the refused token's 401 (and role probes)

    def test_plugin_page_shows_fields_versions_and_curl(self):
        if self.registry is None:
            self.skipTest(registry_util.available())
        self.open("#/plugin/loc-versions", self.viewer)
        self.wait(lambda d: self.css("#versions[data-loaded]"), "versions")
        versions = must(self.mirror.api("plugin/get-versions", {"plugin_id": "loc-versions"},
                                        token=self.viewer), "get-versions", self.mirror)
        shown = [li.text for li in self.css("#versions li")]
        self.assertEqual(shown, versions["results"])
        doc = must(self.mirror.api("plugin/get", {"plugin_id": "loc-versions"}, token=self.viewer),
                   "get", self.mirror)
        self.assertEqual(self.one('#fields td[data-field="image"]').text, doc["image"])
        self.assertEqual(json.loads(self.one("#json-repository_info").get_attribute("textContent")),
                         doc["repository_info"])
        raw = self.driver.execute_script("return document.querySelector('#raw pre').textContent")
        self.assertEqual(json.loads(raw), doc)
        curl = self.one("#curl").get_attribute("value")
        self.assertIn("/repository/v1/plugin/get", curl)
        self.assertIn('"plugin_id":"loc-versions"', curl)
        self.assertIn("$REPOD_TOKEN", curl)
        self.assertNotIn(self.viewer, curl)
        self.assertEqual(self.css("#actions"), [])  # a viewer: no write buttons
        self.assertEqual(self.css("#disable") + self.css("#enable") + self.css("#deregister"), [])
        self.shot("plugin")
        self.assertCleanLog()

    def test_plugin_page_shows_the_api_message_when_the_registry_is_down(self):
        self.open("#/plugin/loc-01", self.viewer)
        self.wait(lambda d: self.css('#versions[data-loaded="error"]'), "versions error")
        r = self.mirror.api("plugin/get-versions", {"plugin_id": "loc-01"}, token=self.viewer)
        self.assertEqual(r.status, 503, self._ctx(r))
        text = self.one("#versions .error").text
        self.assertIn(r.body["detail"]["code"], text)
        # the message as the API words it (less its "failed N ms ago" part, which moves)
        self.assertIn(r.body["detail"]["message"].split(", failed ")[0], text)
        self.assertCleanLog(allow_failed_loads=True)  # the 503 itself

    def test_admin_disables_edits_and_deregisters_a_local_plugin(self):
        self.open("#/plugin/loc-02", self.admin)
        self.one("#disable").click()
        self.wait(lambda d: self.css("#enable"), "the Enable button after disabling")
        got = must(self.mirror.api("plugin/get", {"plugin_id": "loc-02"}, token=self.admin),
                   "get", self.mirror)
        self.assertEqual(got["state"], "DISABLED")
        self.assertEqual(self.one('#fields td[data-field="state"]').text, "DISABLED")

        labels = self.one("#edit-labels")
        labels.clear()
        labels.send_keys("edited, by console")
        tags = self.one("#edit-tags")
        tags.clear()
        tags.send_keys('{"owner": "ops"}')
        self.one("#save").click()
        self.wait(lambda d: self.mirror.api("plugin/get", {"plugin_id": "loc-02"},
                                            token=self.admin).body.get("labels") ==
                  ["edited", "by console"], "labels updated")
        got = self.mirror.api("plugin/get", {"plugin_id": "loc-02"}, token=self.admin).body
        self.assertEqual(got["tags"], {"owner": "ops"})
        self.wait(lambda d: [li.text for li in self.css("#labels li")] == ["edited", "by console"],
                  "labels on the page")
        self.shot("plugin-admin")

        self.one("#enable").click()
        self.wait(lambda d: self.css("#disable"), "the Disable button after enabling")
        self.assertEqual(self.mirror.api("plugin/get", {"plugin_id": "loc-02"},
                                         token=self.admin).body["state"], "ENABLED")

        # deregister asks first; Cancel keeps the plugin
        self.open("#/plugin/loc-09", self.admin)
        self.one("#deregister").click()
        self.assertTrue(self.one("#confirm-deregister").is_displayed())
        self.one("#deregister-no").click()
        self.assertEqual(self.mirror.api("plugin/get", {"plugin_id": "loc-09"},
                                         token=self.admin).status, 200)
        self.one("#deregister").click()
        self.one("#deregister-yes").click()
        self.wait(lambda d: d.current_url.endswith("#/catalog"), "back to the catalog")
        self.assertEqual(self.mirror.api("plugin/get", {"plugin_id": "loc-09"},
                                         token=self.admin).status, 404)
        self.assertCleanLog(allow_failed_loads=True)  # the versions 503 of the plugin pages

    def test_a_refused_write_shows_the_api_message(self):
        # a viewer's token with a stale belief that it is an admin: the
        # buttons show, the server refuses, the page says why
        self.open("#/plugin/loc-03", self.viewer, role="admin")
        self.one("#disable").click()
        err = self.one("#action-status .error")
        r = self.mirror.api("plugin/disable", {"plugin_id": "loc-03"}, token=self.viewer)
        self.assertEqual(r.status, 403, self._ctx(r))
        self.assertIn("HTTP 403 ERROR_PERMISSION_DENIED", err.text)
        self.assertIn(r.body["detail"]["message"], err.text)
        self.assertEqual(self.mirror.api("plugin/get", {"plugin_id": "loc-03"},
                                         token=self.admin).body["state"], "ENABLED")
        self.assertCleanLog(allow_failed_loads=True)  # the 403 itself

    def test_remote_plugins_show_no_write_buttons(self):
        self.open("#/plugin/mk-alpha", self.admin)
        self.wait(lambda d: d.execute_script(
            "var e = document.querySelector('section.plugin');"
            "return e && e.dataset.loaded === 'mk-alpha'"), "remote plugin page")
        self.assertIn("remote repository", self.one("section.plugin").text)
        self.assertEqual(self.css("#actions"), [])
        self.assertEqual(self.css("#disable") + self.css("#enable") + self.css("#deregister"), [])
        self.assertCleanLog(allow_failed_loads=True)

    def test_plugin_text_is_never_markup(self):
        self.open("#/catalog?q=xss-probe", self.admin)
        self.catalog_loaded("#/catalog?q=xss-probe")
        self.assertEqual(self.shown_ids(), ["xss-probe"])
        row = self.one("tr.plugin-row")
        self.assertIn(XSS_IMG + XSS_SCRIPT, row.text)
        self.assertEqual(row.find_elements("css selector", "img"), [])  # javascript: icon dropped
        self.assertEqual(self.css("script:not([src])"), [])
        self.assertIsNone(self.driver.execute_script("return window.__xss"))
        self.one("a.plugin-name").click()
        self.wait(lambda d: self.css('section.plugin[data-loaded="xss-probe"]'), "plugin page")
        self.assertEqual(self.one("#plugin-name").text, XSS_IMG + XSS_SCRIPT)
        body = self.one("section.plugin").text
        self.assertIn(XSS_SCRIPT, body)
        self.assertIn(XSS_IMG, [li.text for li in self.css("#labels li")])
        self.assertEqual(self.css("section.plugin img"), [])
        self.assertEqual(self.css("script:not([src])"), [])
        self.assertIsNone(self.driver.execute_script("return window.__xss"))
        self.shot("plugin-xss")
        self.assertCleanLog(allow_failed_loads=True)

    def test_anonymous_sees_what_anonymous_reads_allow(self):
        self.open("#/catalog")
        self.catalog_loaded("#/catalog")
        anon = must(self.mirror.api("plugin/list", {"query": {"sort": {"key": "name"}}}),
                    "anonymous list", self.mirror)
        self.assertEqual(anon["total_count"], 6)  # the remote tier only
        self.assertEqual(self.one("#summary").get_attribute("data-total"), "6")
        self.assertEqual(self.shown_ids(), [p["plugin_id"] for p in anon["results"]])
        self.assertEqual(self.one("#whoami").get_attribute("data-role"), "anonymous")
        self.assertCleanLog()

    def test_csp_is_enforced_by_the_browser(self):
        self.open("#/catalog", self.viewer)
        self.catalog_loaded("#/catalog")
        self.assertCleanLog()
        # positive control: an inline script is refused under the policy
        self.driver.execute_script(
            "var s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
            "document.body.appendChild(s);")
        self.assertIsNone(self.driver.execute_script("return window.__inline"))
        log = self.driver.get_log("browser")
        self.assertTrue(any("Content Security Policy" in e.get("message", "") for e in log), log)

    def test_repositories_page_and_sync(self):
        self.open("#/repositories", self.viewer)
        self.wait(lambda d: self.css("section.repositories[data-loaded]"), "repositories")
        self.assertEqual(self.css("button.sync"), [])
        self.open("#/repositories", self.system)
        self.wait(lambda d: self.css("section.repositories[data-loaded]"), "repositories")
        repos = must(self.mirror.api("repository/list", {}, token=self.system), "list",
                     self.mirror)["results"]
        rows = {r.get_attribute("data-repository-id"): r for r in self.css("tr.repo-row")}
        self.assertEqual(set(rows), {r["repository_id"] for r in repos})
        remote = [r for r in repos if r["repository_type"] == "remote"][0]
        text = rows[remote["repository_id"]].text
        self.assertIn(remote["upstream"]["state"], text)
        self.assertIn(str(remote["upstream"]["cached_plugins"]), text)
        self.assertIn(remote["upstream"]["last_sync_at"], text)
        before = remote["upstream"]["last_sync_at"]
        time.sleep(0.01)
        self.one('button.sync[data-repository-id="%s"]' % remote["repository_id"]).click()
        result = self.one("#sync-result")
        self.assertIn("6 plugins", result.text)
        after = must(self.mirror.api("repository/get", {"repository_id": remote["repository_id"]},
                                     token=self.system), "get", self.mirror)
        self.assertGreaterEqual(after["upstream"]["last_sync_at"], before)
        self.shot("repositories")
        self.assertCleanLog()


if __name__ == "__main__":
    unittest.main()

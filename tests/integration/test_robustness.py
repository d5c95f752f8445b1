"""Robustness: a seeded storm of malformed requests on every route (SPEC 2, 3, 4, 8).

The contract under test: bad input gets a clear JSON error
({"detail": {"code": "ERROR_*", "message": ...}} with a 4xx status), never a
crash, a hang, a 5xx, a dropped connection, a leak of another domain's data or
a change to stored data.

Setup: one server, a fake upstream registered as a remote repository, a few
plugins in domain A and in domain B (B's identifiers are distinctive strings
that domain A's requests never carry, so any of them in an answer to A's
token is a leak).  Then ~1500 generated requests over a few keep-alive
connections, with A's admin token and a system token; every answer is
checked.  Afterwards the stored documents are compared with the ones read
before the storm, and the server must still answer and exit 0 on SIGTERM
(under ASan a leak makes that exit non-zero).

Environment:
  REPOD_FUZZ_SEED=N       replay one run (the seed is printed on failure)
  REPOD_FUZZ_REQUESTS=N   storm size (default 1500)
  REPOD_FUZZ_BUDGET_S=S   stop sending after S seconds (default 40)
"""

import copy
import http.client
import json
import os
import random
import ssl
import threading
import time
import unittest

import harness
from fake_upstream import FakeUpstream, fake_plugin
from harness import RepodTestCase, Server, plugin_body

SEED = int(os.environ.get("REPOD_FUZZ_SEED") or random.SystemRandom().randrange(1, 1 << 31))
N_REQUESTS = int(os.environ.get("REPOD_FUZZ_REQUESTS") or 1500)
BUDGET_S = float(os.environ.get("REPOD_FUZZ_BUDGET_S") or 40)
N_CONNECTIONS = 3
SLOW_REQUEST_S = 8.0        # one answer slower than this counts as a stall
SOCKET_TIMEOUT_S = 12.0

DOMAIN_A = "domain-a"
# Everything about domain B is spelled with "xq7" so that it can be searched
# for in answers; the generator never produces that substring on its own.
DOMAIN_B = "dom-xq7-bravo"
MARK = "xq7"

A_PLUGINS = [
    plugin_body("acme-a/alpha-one", name="Alpha One", provider="acme",
                labels=["jira", "ops"], tags={"description": "first", "icon": "https://i/a.png"},
                capability={"supported_schema": ["s1"], "n": 3},
                template={"options": {"schema": {"type": "object", "required": ["a"],
                                                 "properties": {"a": {"type": "string"}}}}}),
    plugin_body("acme-a/alpha-two", name="Alpha Two", provider="acme",
                resource_type="inventory.Collector", labels=["cloud"]),
    plugin_body("acme-a/shared-twin", name="A Twin", provider="acme"),
]
B_PLUGINS = [
    plugin_body("xq7corp/xq7-bravo-hidden", name="Xq7 Hidden Bravo", provider="xq7-provider",
                labels=["xq7-label"], tags={"xq7tag": "xq7-tag-value"},
                capability={"xq7cap": True}),
    plugin_body("xq7corp/xq7-charlie-hidden", name="Xq7 Hidden Charlie", provider="xq7-provider"),
    # the same plugin_id as one of A's: A must only ever see its own
    plugin_body("xq7corp/shared-twin", name="Xq7 Twin B", provider="xq7-provider",
                labels=["xq7-twin"]),
]
A_IDS = [p["image"].rsplit("/", 1)[-1] for p in A_PLUGINS]
B_IDS = [p["image"].rsplit("/", 1)[-1] for p in B_PLUGINS]
B_ONLY_IDS = [i for i in B_IDS if i not in A_IDS]
REMOTE_ID = "repo-0123456789ab"
REMOTE_CATALOG = ["fake-one", "fake-two"]

LEGACY_KEYS = ("service_type", "domain_id", "project_id")

PLUGIN_ROUTES = ["register", "update", "deregister", "enable", "disable", "get",
                 "get-versions", "list", "stat"]
REPOSITORY_ROUTES = ["register", "update", "deregister", "get", "list", "stat", "sync"]
ROUTES = (["plugin/" + v for v in PLUGIN_ROUTES] +
          ["repository/" + v for v in REPOSITORY_ROUTES])
MUTATING = {"plugin/register", "plugin/update", "plugin/deregister", "plugin/enable",
            "plugin/disable", "repository/register", "repository/update",
            "repository/deregister", "repository/sync"}

# key -> expected JSON type class ("str", "obj", "list", "int", "bool", "any")
SCHEMAS = {
    "plugin/register": {"name": "str", "resource_type": "str", "service_type": "str",
                        "image": "str", "provider": "str", "registry_type": "str",
                        "registry_url": "str", "registry_config": "obj", "capability": "obj",
                        "template": "obj", "labels": "list", "tags": "obj",
                        "domain_id": "any", "project_id": "any"},
    "plugin/update": {"plugin_id": "str", "name": "str", "capability": "obj",
                      "template": "obj", "labels": "list", "tags": "obj",
                      "domain_id": "any", "project_id": "any"},
    "plugin/deregister": {"plugin_id": "str", "domain_id": "any"},
    "plugin/enable": {"plugin_id": "str", "domain_id": "any"},
    "plugin/disable": {"plugin_id": "str", "domain_id": "any"},
    "plugin/get": {"plugin_id": "str", "repository_id": "str", "only": "list",
                   "domain_id": "any"},
    "plugin/get-versions": {"plugin_id": "str", "repository_id": "str", "domain_id": "any"},
    "plugin/list": {"query": "obj", "plugin_id": "str", "name": "str", "state": "str",
                    "resource_type": "str", "service_type": "str", "provider": "str",
                    "registry_type": "str", "repository_id": "str", "domain_id": "any"},
    "plugin/stat": {"query": "obj", "repository_id": "str", "domain_id": "any"},
    "repository/register": {"name": "str", "repository_type": "str", "endpoint": "str",
                            "priority": "int", "upstream": "obj", "cache": "obj"},
    "repository/update": {"repository_id": "str", "name": "str", "priority": "int",
                          "cache": "obj", "upstream": "obj"},
    "repository/deregister": {"repository_id": "str"},
    "repository/get": {"repository_id": "str", "only": "list"},
    "repository/list": {"query": "obj", "repository_id": "str", "name": "str",
                        "repository_type": "str"},
    "repository/stat": {"query": "obj"},
    "repository/sync": {"repository_id": "str"},
}

PLUGIN_FIELDS = ["plugin_id", "name", "state", "resource_type", "service_type", "image",
                 "provider", "registry_type", "registry_url", "registry_config", "capability",
                 "template", "labels", "tags", "domain_id", "repository_info", "created_at",
                 "updated_at", "tags.description", "capability.supported_schema",
                 "repository_info.repository_id", "repository_info.name",
                 "template.options.schema.type", "labels.0", "a.b.c.d.e.f", "", ".", "..",
                 "tags.", ".tags", "tags..x"]
OPERATORS = ["eq", "not", "lt", "lte", "gt", "gte", "exists", "contain", "not_contain", "in",
             "not_in", "contain_in", "not_contain_in", "regex", "regex_in", "datetime_gt",
             "datetime_lt", "datetime_gte", "datetime_lte", "timediff_gt", "timediff_lt",
             "timediff_gte", "timediff_lte", "EQ", "eq ", "like", "$where", "", "regex\u0000"]
GROUP_OPERATORS = ["count", "sum", "average", "max", "min", "first", "last", "push",
                   "add_to_set", "median", "", "COUNT"]
REGEXES = [
    "(a+)+$", "(a|aa)*b", "((a*)*)*c", "(x+x+)+y", "(.*a){12}", "^(a|a?)+$",
    "([a-z]+)*\\1\\1\\1z", "(a*)*\\1\\1\\1\\1b", "(.*)(.*)(.*)(.*)(.*)\\5\\4\\3\\2\\1!",
    "(a{100}){100}", "((a{50}){50}){20}", "(.{0,255}){255}", "a{32767}", "a{99999}",
    "(", ")", "[", "[[:alpha:", "a**", "*", "+a", "\\", "a{2,1}", "(?i)alpha", "[z-a]",
    "x{,}", "()", "|", "^$", ".*", "[[:nonsense:]]", "\\9", "(a)(b)\\3", "\u00e9+", "\u0000",
    "alpha" * 2000,
]
TIMEDIFFS = ["now", "now-1d", "now/d", "now-99999999999999999d", "now+1x", "now//d",
             "now-1d-1h/w", "then", "", "now-", "now-1", "now-1dd", "now/", "-1d",
             "now-9223372036854775807s", "now-18446744073709551616s"]
DATETIMES = ["2022-01-01T08:02:38.094Z", "2022-13-45T99:99:99Z", "9999-12-31T23:59:59.999Z",
             "0000-00-00", "", "2022-01-01", "2022-01-01T00:00:00+25:00", "yesterday",
             "1970-01-01T00:00:00Z", "-2022-01-01T00:00:00Z"]
UNICODE = ["\u00e9\u00e8\u00ea", "\u65e5\u672c\u8a9e", "\U0001F600\U0001F4A9", "\u202e\u202dx",
           "\ufeff", "\u0301\u0301\u0301", "\uffff", "\u0000", "\ud800", "\udfff",
           "a\u0000b", "\u2028\u2029", "\x7f\x01\x1b[31m"]


class Req:
    """One generated request."""
    __slots__ = ("route", "token_kind", "data", "bad", "note")

    def __init__(self, route, token_kind, data, bad, note):
        self.route = route            # "plugin/get" ...
        self.token_kind = token_kind  # "admin_a" | "system"
        self.data = data              # bytes (the request body as sent)
        self.bad = bad                # True: a 200 would be wrong (guaranteed-invalid input)
        self.note = note              # how it was made

    def describe(self, limit=600):
        d = self.data
        shown = d[:limit] + (b"...(%d bytes)" % len(d) if len(d) > limit else b"")
        return "POST %s [%s] %s: %r" % (self.route, self.token_kind, self.note, shown)


class Gen:
    """The malformed-request generator.  Deterministic for a given rng."""

    def __init__(self, rng, local_repo_id):
        self.r = rng
        self.deeps = {}
        self.local_repo_id = local_repo_id

    # -- random values ----------------------------------------------------------

    def rstr(self, maxlen=12):
        r = self.r
        kind = r.random()
        if kind < 0.55:
            alphabet = "abcdefghijklmnopstuvwz0123456789-_."   # no q/x/y: never "xq7"
            return "".join(r.choice(alphabet) for _ in range(r.randint(0, maxlen)))
        if kind < 0.75:
            return r.choice(UNICODE) + r.choice(["", "x", "\u00e9"])
        if kind < 0.85:
            return r.choice(["%s", "%n%n%n%n", "%999999999s", "'; DROP TABLE x; --",
                             "../../../etc/passwd", "${HOME}", "\\u0000", "<script>",
                             "\r\n\r\nHTTP/1.1 200 OK", "null", "true", "{}", "[]",
                             "ENABLED", "DISABLED", "DOCKER_HUB", "HARBOR", "local", "remote"])
        if kind < 0.93:
            return r.choice(A_IDS + ["plugin-nope", "repo-000000000000", self.local_repo_id,
                                     REMOTE_ID, "domain-a", "domain-root"])
        return r.choice("abcé\u65e5") * r.choice([256, 4096, 65536, 200000])

    def rnum(self):
        return self.r.choice([0, -1, 1, 7, 2 ** 31, -2 ** 31 - 1, 2 ** 53 + 1, 2 ** 63 - 1,
                              -2 ** 63, 0.5, -0.0, 1e308, -1e-308, 3.14159,
                              self.r.randint(-10 ** 6, 10 ** 6)])

    def deep(self, depth, leaf=None):
        """depth nested objects/arrays.  Deeper than Python's json module can
        encode, a placeholder string is returned that encode() replaces."""
        v = leaf if leaf is not None else self.rscalar()
        if depth <= 100:
            for _ in range(depth):
                v = {"k": v} if self.r.random() < 0.5 else [v]
            return v
        kind = self.r.choice(["obj", "list", "mixed"])
        opens, closes = [], []
        for i in range(depth):
            if kind == "obj" or (kind == "mixed" and i % 2 == 0):
                opens.append('{"k":')
                closes.append("}")
            else:
                opens.append("[")
                closes.append("]")
        text = "".join(opens) + json.dumps(v) + "".join(reversed(closes))
        ph = "@@DEEP%d@@" % len(self.deeps)
        self.deeps[ph] = ("obj" if opens[0] == '{"k":' else "list", text)
        return ph

    def encode(self, body):
        """body -> bytes, deep placeholders expanded."""
        data = json.dumps(body, ensure_ascii=self.r.random() < 0.5, allow_nan=True)
        for ph, (_, text) in self.deeps.items():
            data = data.replace('"%s"' % ph, text)
        self.deeps.clear()
        return data.encode("utf-8", "surrogatepass")

    def type_class(self, v):
        if isinstance(v, str) and v in self.deeps:
            return self.deeps[v][0]
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if isinstance(v, str):
            return "str"
        if isinstance(v, list):
            return "list"
        return "obj"

    def certainly_bad(self, route, body):
        """True when body has an unknown key or a non-null value of the wrong
        JSON type for a known key (SPEC 3: both are errors)."""
        schema = SCHEMAS[route]
        for k, v in body.items():
            if k in LEGACY_KEYS:
                continue
            if k not in schema:
                return True
            cls = schema[k]
            got = self.type_class(v)
            if cls != "any" and got != "null" and got != cls:
                return True
        return False

    def rscalar(self):
        c = self.r.randrange(5)
        return [None, True, False][self.r.randrange(3)] if c == 0 else \
            self.rnum() if c == 1 else self.rstr()

    def rvalue(self, depth=0):
        r = self.r
        c = r.random()
        if depth > 3 or c < 0.55:
            return self.rscalar()
        if c < 0.75:
            return [self.rvalue(depth + 1) for _ in range(r.randint(0, 4))]
        if c < 0.95:
            return {self.rstr(8): self.rvalue(depth + 1) for _ in range(r.randint(0, 4))}
        return self.deep(r.choice([50, 500, 1500]))

    def wrong_type(self, cls):
        """A non-null value whose JSON type is not cls."""
        pool = {
            "str": [lambda: self.rnum(), lambda: True, lambda: [self.rstr()],
                    lambda: {"a": self.rstr()}, lambda: self.deep(30)],
            "obj": [lambda: self.rstr(), lambda: self.rnum(), lambda: False,
                    lambda: [self.rvalue()], lambda: [{"k": 1}]],
            "list": [lambda: self.rstr(), lambda: self.rnum(), lambda: True,
                     lambda: {"0": self.rstr()}],
            "int": [lambda: self.rstr(), lambda: [1], lambda: {"n": 1}, lambda: True],
            "bool": [lambda: self.rstr(), lambda: 1, lambda: [True], lambda: {}],
        }[cls]
        return self.r.choice(pool)()

    # -- queries ----------------------------------------------------------------

    def rcond(self):
        r = self.r
        op = r.choice(OPERATORS)
        key = r.choice(PLUGIN_FIELDS) if r.random() < 0.8 else self.rstr()
        if op.startswith("regex"):
            v = r.choice(REGEXES)
            if op == "regex_in" and r.random() < 0.7:
                v = [r.choice(REGEXES) for _ in range(r.randint(0, 4))]
        elif op.startswith("timediff"):
            v = r.choice(TIMEDIFFS) if r.random() < 0.8 else self.rvalue()
        elif op.startswith("datetime"):
            v = r.choice(DATETIMES) if r.random() < 0.8 else self.rvalue()
        elif op.endswith("in"):
            v = [self.rvalue(2) for _ in range(r.randint(0, 5))] if r.random() < 0.6 \
                else self.rvalue()
        else:
            v = self.rvalue()
        shape = r.random()
        if shape < 0.6:
            c = {"k": key, "v": v, "o": op}
        elif shape < 0.8:
            c = {"key": key, "value": v, "operator": op}
        else:
            c = {}
            for name, val in (("k", key), ("v", v), ("o", op), ("key", self.rvalue()),
                              ("operator", self.rvalue()), ("zz", self.rvalue())):
                if r.random() < 0.5:
                    c[name] = val
        if r.random() < 0.1:
            return self.rvalue()          # not even an object
        return c

    def rsort(self):
        r = self.r
        return r.choice([
            lambda: {"key": r.choice(PLUGIN_FIELDS), "desc": self.rscalar()},
            lambda: {"keys": [{"key": r.choice(PLUGIN_FIELDS), "desc": r.random() < 0.5}
                              for _ in range(r.randint(0, 4))]},
            lambda: {"keys": self.rvalue()},
            lambda: {"key": self.rvalue()},
            lambda: [{"key": "name"}],
            lambda: self.rvalue(),
        ])()

    def rpage(self):
        r = self.r
        return r.choice([
            lambda: {"start": self.rnum(), "limit": self.rnum()},
            lambda: {"start": r.randint(-3, 5), "limit": r.randint(-3, 5)},
            lambda: {"start": self.rstr(), "limit": [1]},
            lambda: {"limit": 2 ** 63 - 1},
            lambda: {"start": 2 ** 63 - 1, "limit": 2 ** 63 - 1},
            lambda: self.rvalue(),
        ])()

    def rstage(self):
        r = self.r
        stages = [
            lambda: {"group": {"keys": [{"key": r.choice(PLUGIN_FIELDS), "name": self.rstr(),
                                         "date_format": self.rscalar()}
                                        for _ in range(r.randint(0, 3))],
                               "fields": [{"key": r.choice(PLUGIN_FIELDS), "name": self.rstr(),
                                           "operator": r.choice(GROUP_OPERATORS)}
                                          for _ in range(r.randint(0, 3))]}},
            lambda: {"group": self.rvalue()},
            lambda: {"group": {"keys": self.rvalue(), "fields": self.rvalue()}},
            lambda: {"count": {"name": self.rscalar()}},
            lambda: {"count": self.rvalue()},
            lambda: {"sort": self.rsort()},
            lambda: {"limit": self.rvalue()},
            lambda: {"limit": r.choice([0, -1, 2 ** 63 - 1, 1])},
            lambda: {"skip": r.choice([0, -1, 2 ** 63 - 1, 1, "x"])},
            lambda: {"unwind": {"path": r.choice(PLUGIN_FIELDS + ["labels", "$labels"])}},
            lambda: {"unwind": self.rvalue()},
            lambda: {"project": {"fields": [{"key": r.choice(PLUGIN_FIELDS),
                                             "name": self.rstr()}
                                            for _ in range(r.randint(0, 3))],
                                 "exclude_keys": self.rscalar()}},
            lambda: {"project": self.rvalue()},
            lambda: {self.rstr(): self.rvalue()},
            lambda: {"group": {}, "count": {"name": "n"}},   # two stages in one
            lambda: {},
            lambda: self.rvalue(),
        ]
        return r.choice(stages)()

    def rquery(self, stat=False):
        r = self.r
        if r.random() < 0.08:
            return self.wrong_type("obj")
        q = {}
        parts = ["filter", "filter_or", "keyword", "page", "sort", "only", "minimal",
                 "count_only", "distinct", "aggregate", "zz_unknown"]
        for p in r.sample(parts, r.randint(0, 5)):
            if p in ("filter", "filter_or"):
                q[p] = [self.rcond() for _ in range(r.randint(0, 4))] \
                    if r.random() < 0.85 else self.rvalue()
            elif p == "keyword":
                q[p] = self.rstr() if r.random() < 0.7 else self.rvalue()
            elif p == "page":
                q[p] = self.rpage()
            elif p == "sort":
                q[p] = self.rsort()
            elif p == "only":
                q[p] = [r.choice(PLUGIN_FIELDS) for _ in range(r.randint(0, 4))] \
                    if r.random() < 0.7 else self.rvalue()
            elif p == "distinct":
                q[p] = r.choice(PLUGIN_FIELDS) if r.random() < 0.6 else self.rvalue()
            elif p == "aggregate":
                q[p] = [self.rstage() for _ in range(r.randint(0, 5))] \
                    if r.random() < 0.85 else self.rvalue()
            elif p in ("minimal", "count_only"):
                q[p] = self.rscalar()
            else:
                q[p] = self.rvalue()
        if stat and r.random() < 0.5 and "distinct" not in q and "aggregate" not in q:
            q["aggregate"] = [self.rstage() for _ in range(r.randint(1, 4))]
        return q

    def rvalid_cond(self):
        """A well-formed condition (so that the query really runs)."""
        r = self.r
        key = r.choice(["plugin_id", "name", "state", "resource_type", "provider", "labels",
                        "tags.description", "capability.supported_schema", "created_at",
                        "updated_at", "repository_info.repository_id", "image", "domain_id",
                        "template.options.schema.type", "tags.nothing.here"])
        op = r.choice(["eq", "not", "lt", "lte", "gt", "gte", "exists", "contain",
                       "not_contain", "in", "not_in", "contain_in", "not_contain_in", "regex",
                       "regex", "regex_in", "datetime_gt", "datetime_lte", "timediff_gt",
                       "timediff_lt"])
        words = ["alpha", "acme", "ENABLED", "jira", "fake", "", "\u00e9", "a" * 300]
        if op in ("eq", "not", "lt", "lte", "gt", "gte"):
            v = r.choice(words + [1, 0.5, True])
        elif op == "exists":
            v = r.random() < 0.5
        elif op in ("contain", "not_contain"):
            v = r.choice(words)
        elif op in ("in", "not_in", "contain_in", "not_contain_in"):
            v = [r.choice(words) for _ in range(r.randint(0, 5))]
        elif op == "regex":
            v = r.choice(REGEXES)
        elif op == "regex_in":
            v = [r.choice(REGEXES) for _ in range(r.randint(1, 3))]
        elif op.startswith("datetime"):
            v = r.choice(DATETIMES)
        else:
            v = r.choice(TIMEDIFFS)
        return {"k": key, "v": v, "o": op}

    def rvalid_query(self, stat=False):
        r = self.r
        q = {}
        if r.random() < 0.8:
            q["filter"] = [self.rvalid_cond() for _ in range(r.randint(1, 3))]
        if r.random() < 0.3:
            q["filter_or"] = [self.rvalid_cond() for _ in range(r.randint(1, 3))]
        if r.random() < 0.2:
            q["keyword"] = r.choice(["alpha", "acme jira", "\u00e9 \u65e5", "a " * 200])
        fields = ["name", "provider", "state", "labels", "created_at", "tags.description"]
        if not stat:
            if r.random() < 0.5:
                q["sort"] = {"keys": [{"key": r.choice(fields), "desc": r.random() < 0.5}
                                      for _ in range(r.randint(1, 3))]}
            if r.random() < 0.4:
                q["page"] = {"start": r.randint(1, 4), "limit": r.randint(0, 3)}
            if r.random() < 0.2:
                q["only"] = r.sample(fields, 2)
            if r.random() < 0.1:
                q["minimal"] = True
            if r.random() < 0.1:
                q["count_only"] = True
            return q
        if r.random() < 0.3:
            q["distinct"] = r.choice(fields + ["domain_id", "repository_info.name"])
            return q
        stages = [{"group": {"keys": [{"key": r.choice(fields), "name": "g"}],
                             "fields": [{"name": "n", "operator": "count"},
                                        {"key": r.choice(fields), "name": "f",
                                         "operator": r.choice(GROUP_OPERATORS[:9])}]}}]
        if r.random() < 0.3:
            stages.insert(0, {"unwind": {"path": "labels"}})
        for _ in range(r.randint(0, 3)):
            stages.append(r.choice([{"sort": {"key": "n", "desc": True}},
                                    {"limit": r.randint(0, 3)}, {"skip": r.randint(0, 2)},
                                    {"count": {"name": "c"}},
                                    {"project": {"fields": [{"key": "g", "name": "h"}]}}]))
        q["aggregate"] = stages
        return q

    # -- request bodies -----------------------------------------------------------

    def target_plugin_id(self):
        r = self.r
        return r.choice(A_IDS + ["plugin-nope", "fake-one", self.rstr()])

    def baseline(self, route, kind):
        """A (mostly) valid body for route."""
        r = self.r
        ident = self.rstr(8).lower().strip("-_.") or "zz"
        if route == "plugin/register":
            return plugin_body("acme-a/fz-" + ident, registry_config={}, capability={},
                               labels=[], tags={})
        if route in ("plugin/update", "plugin/deregister", "plugin/enable", "plugin/disable"):
            b = {"plugin_id": self.target_plugin_id()}
            if route == "plugin/update":
                b["name"] = "renamed"
        elif route == "plugin/get":
            b = {"plugin_id": self.target_plugin_id()}
        elif route == "plugin/get-versions":
            # never a plugin that exists: a valid one would reach a registry
            b = {"plugin_id": "nope-" + ident}
        elif route in ("plugin/list", "repository/list"):
            b = {"query": self.rquery()}
        elif route in ("plugin/stat", "repository/stat"):
            b = {"query": self.rquery(stat=True)}
        elif route == "repository/register":
            # never a reachable endpoint: a valid register would contact it
            b = {"name": "fz-" + ident, "repository_type": r.choice(["remote", "local"]),
                 "endpoint": "https://127.0.0.1:1"}
        else:
            b = {"repository_id": r.choice([self.local_repo_id, REMOTE_ID,
                                            "repo-000000000000", self.rstr()])}
        if kind == "system" and route.startswith("plugin/") and r.random() < 0.6:
            b["domain_id"] = DOMAIN_A if r.random() < 0.7 else DOMAIN_B
        return b

    def mutate(self, route, body):
        """Applies 1-4 mutations; returns (body, guaranteed_bad, notes)."""
        r = self.r
        schema = SCHEMAS[route]
        bad = False
        notes = []
        for _ in range(r.randint(1, 4)):
            m = r.random()
            key = r.choice(sorted(schema))
            cls = schema[key]
            if m < 0.35 and cls != "any":
                body[key] = self.wrong_type(cls)
                bad = True
                notes.append("wrongtype:" + key)
            elif m < 0.5:
                k = r.choice(["zz_unknown", "pluginId", "Plugin_id", "name ", "", "\u00e9",
                              "plugin_id\u0000", "__proto__", "query.filter"]) + \
                    ("" if r.random() < 0.5 else self.rstr(4))
                if k in schema or k in LEGACY_KEYS:
                    k = "zz_" + k
                body[k] = self.rvalue()
                bad = True
                notes.append("unknown:%r" % (k[:20] + ("...(%d chars)" % len(k) if len(k) > 20 else "")))
            elif m < 0.6:
                body[key] = None
                notes.append("null:" + key)
            elif m < 0.8:
                body[key] = self.rvalue()
                notes.append("random:" + key)
            elif m < 0.9:
                body[key] = r.choice(UNICODE) * r.choice([1, 3, 1000])
                notes.append("unicode:" + key)
            else:
                body[key] = "x" * r.choice([41, 1000, 100000, 400000])
                notes.append("huge:" + key)
        if "domain_id" in body and body.get("domain_id") == DOMAIN_B:
            pass
        return body, bad, notes

    def raw(self, route):
        """A body that is not a JSON object at all (or not JSON); (bytes, note)."""
        r = self.r
        pid = r.choice(A_IDS)
        valid = json.dumps({"plugin_id": pid, "query": {"filter": []}}).encode()
        cases = [
            (lambda: json.dumps(self.wrong_type("obj")).encode(), "non-object"),
            (lambda: b"null", "null"),
            (lambda: b"\"{}\"", "string"),
            (lambda: b"[]", "array"),
            (lambda: b"   ", "whitespace"),
            (lambda: valid[:r.randint(1, len(valid) - 1)], "truncated"),
            (lambda: b"{\"plugin_id\": \"" + bytes([r.choice([0x80, 0xc3, 0xff, 0xfe, 0xed])]) +
             b"\xa0\xa1\"}", "invalid-utf8"),
            (lambda: b"{\"name\": \"\xed\xa0\x80\"}", "utf8-surrogate"),
            (lambda: b"{\"plugin_id\": \"a\\u0000b\"}", "escaped-nul"),
            (lambda: b"{\"plugin_id\": \"\\ud800\"}", "lone-surrogate"),
            (lambda: b"{\"plugin_id\": \"nope-1\", \"plugin_id\": \"nope-2\"}", "duplicate"),
            (lambda: b"{\"query\": {\"filter\": [], \"filter\": [{\"k\":\"x\"}]}}",
             "duplicate-nested"),
            (lambda: ("{\"query\": " + "[" * 2000 + "]" * 2000 + "}").encode(), "depth-2000"),
            (lambda: ("{\"plugin_id\": " + "{\"a\":" * 2040 + "1" + "}" * 2041).encode(),
             "depth-2040"),
            (lambda: ("[" * 5000 + "]" * 5000).encode(), "depth-5000"),
            (lambda: ("{\"a\":" * 100000 + "1" + "}" * 100000).encode(), "depth-100000"),
            (lambda: ("[" * 200000).encode(), "depth-unclosed"),
            (lambda: b"{\"a\": NaN}", "nan"),
            (lambda: b"{\"a\": 1e99999}", "huge-float"),
            (lambda: b"{\"a\": 123456789012345678901234567890}", "huge-int"),
            (lambda: b"{'plugin_id': 'x'}", "single-quotes"),
            (lambda: b"{\"plugin_id\": \"x\",}", "trailing-comma"),
            (lambda: b"{} {}", "two-values"),
            (lambda: b"{}garbage", "trailing-garbage"),
            (lambda: b"\xef\xbb\xbf{}", "bom"),
            (lambda: bytes(r.randrange(256) for _ in range(r.randint(1, 300))), "random-bytes"),
            (lambda: b"{\"" + b"k" * 300000 + b"\": 1}", "huge-key"),
            (lambda: b"{\"plugin_id\": \"" + b"a" * (1100 * 1024) + b"\"}", "over-1MiB"),
        ]
        make, note = r.choice(cases)
        return make(), note

    def request(self):
        r = self.r
        route = r.choice(ROUTES)
        kind = "admin_a" if r.random() < 0.65 else "system"
        if r.random() < 0.2:
            data, note = self.raw(route)
            # a body that is not a JSON object is never valid; "{}"-like ones
            # (whitespace) mean {} which may be valid for list/stat
            bad = note not in ("whitespace", "bom")
            if note == "duplicate-nested" and route not in ("plugin/list", "plugin/stat",
                                                              "repository/list",
                                                              "repository/stat"):
                bad = True
            return Req(route, kind, data, bad, "raw:" + note)
        if route in ("plugin/list", "plugin/stat") and r.random() < 0.4:
            # well-formed queries: they run, so the regex / timediff / group
            # code sees the odd values, and domain A's answers are leak-checked
            body = {"query": self.rvalid_query(stat=route.endswith("stat"))}
            if kind == "system" and r.random() < 0.5:
                body["domain_id"] = DOMAIN_A
            return Req(route, kind, self.encode(body), False, "valid-query")
        body = self.baseline(route, kind)
        body, _, notes = self.mutate(route, body)
        bad = self.certainly_bad(route, body)
        if route in MUTATING and not bad:
            # never send an input that may be valid to a writing route: the
            # data must stay as it is, so make it certainly invalid
            body["zz_unknown_key"] = self.rvalue()
            bad = True
            notes.append("unknown:zz_unknown_key")
        return Req(route, kind, self.encode(body), bad, "mutated:" + ",".join(notes))


class _RobustnessBase(RepodTestCase):
    """One server + fake upstream with the seeded data (per test class, so
    that a crash in one class does not take the other one down)."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeUpstream(harness.cert_dir(),
                                plugins=[fake_plugin("fake/" + i) for i in REMOTE_CATALOG])
        cls.fake.start()
        cls.server = Server(start=False, name="robustness")
        try:
            cls.admin_a = cls.server.make_token(DOMAIN_A, "admin")
            cls.admin_b = cls.server.make_token(DOMAIN_B, "admin")
            cls.system = cls.server.make_token("domain-root", "system")
            cls.server.start()
            for body in A_PLUGINS:
                cls._must(cls.server.api("plugin/register", body, token=cls.admin_a), body)
            for body in B_PLUGINS:
                cls._must(cls.server.api("plugin/register", body, token=cls.admin_b), body)
            cls._must(cls.server.api("plugin/disable", {"plugin_id": A_IDS[1]},
                                     token=cls.admin_a), "disable")
            cls._must(cls.server.api(
                "repository/register",
                {"name": "Fake", "repository_type": "remote", "endpoint": cls.fake.endpoint,
                 "upstream": {"ca_file": cls.server.ca_file}},
                token=cls.system), "register remote")
            r = cls._must(cls.server.api("repository/list",
                                         {"repository_type": "local"}, token=cls.system),
                          "local repository")
            cls.local_repo_id = r.body["results"][0]["repository_id"]
        except BaseException:
            cls.server.close()
            cls.fake.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()      # exit code 0 (an ASan leak report makes it non-zero)
        finally:
            cls.server.close()
            cls.fake.stop()

    @classmethod
    def _must(cls, r, what):
        if r.status != 200:
            raise harness.ServerError("setup step failed (%s): %r%s" %
                                      (what, (r.status, r.body), cls.server.describe()))
        return r

    # -- snapshots ----------------------------------------------------------------

    def snapshot(self):
        """Every stored document the storm must leave alone."""
        snap = {}
        for pid in A_IDS:
            r = self.server.api("plugin/get", {"plugin_id": pid}, token=self.admin_a)
            snap["A:" + pid] = (r.status, r.body)
        for pid in B_IDS:
            r = self.server.api("plugin/get", {"plugin_id": pid}, token=self.admin_b)
            snap["B:" + pid] = (r.status, r.body)
        for tok, name in ((self.admin_a, "A"), (self.admin_b, "B")):
            snap["list:" + name] = harness.list_snapshot(self.server, tok)
        for rid in (self.local_repo_id, REMOTE_ID):
            r = self.server.api("repository/get", {"repository_id": rid}, token=self.system)
            body = copy.deepcopy(r.body)
            if isinstance(body, dict):
                body.pop("upstream", None)     # sync status moves on its own
            snap["repo:" + rid] = (r.status, body)
        r = self.server.api("repository/list", {}, token=self.system)
        snap["repos"] = sorted(x.get("repository_id") for x in r.body.get("results", []))
        return snap

    # -- one answer ---------------------------------------------------------------

    def check_answer(self, req, status, headers, raw, elapsed):
        """Returns a list of problems with one answer (empty = fine)."""
        problems = []
        if elapsed > SLOW_REQUEST_S:
            problems.append("answer took %.1f s" % elapsed)
        if not (status == 200 or 400 <= status < 500):
            problems.append("HTTP %d" % status)
        ctype = headers.get("Content-Type", "")
        if not ctype.startswith("application/json"):
            problems.append("Content-Type %r" % ctype)
        try:
            text = raw.decode("utf-8")
            body = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return problems + ["body is not JSON: %r" % raw[:300]]
        except RecursionError:
            body = {}   # too deep for Python's json: checked as text only
        if not isinstance(body, dict):
            return problems + ["body is not an object"]
        if status != 200:
            detail = body.get("detail")
            if not isinstance(detail, dict):
                problems.append("error without detail object")
            else:
                code, msg = detail.get("code"), detail.get("message")
                if not (isinstance(code, str) and code.startswith("ERROR_")):
                    problems.append("detail.code %r" % (code,))
                if not (isinstance(msg, str) and msg.strip()):
                    problems.append("empty detail.message")
                elif "/tmp/" in msg or "/work/" in msg or self.server.tmp in msg:
                    problems.append("message names a file path")
        elif req.bad:
            problems.append("invalid input accepted with 200")
        for secret in self.server.secrets:
            if secret in text:
                problems.append("a token appears in the answer")
        if req.token_kind == "admin_a":
            sent = req.data.decode("utf-8", "replace")
            for ident in [DOMAIN_B] + B_ONLY_IDS + [p["name"] for p in B_PLUGINS] + \
                    ["xq7-provider", "xq7-label", "xq7-tag-value", "xq7tag", "xq7cap"]:
                if ident in text and ident not in sent:
                    problems.append("domain B data (%r) in an answer to domain A" % ident)
            if MARK in text.lower() and MARK not in sent.lower():
                problems.append("domain B marker in an answer to domain A")
            if _has_domain(body, DOMAIN_B):
                problems.append("a document of domain B in an answer to domain A")
        return problems




class RobustnessStormTest(_RobustnessBase):
    """The seeded storm of malformed requests."""

    # -- the storm ------------------------------------------------------------------

    def storm(self):
        tokens = {"admin_a": self.admin_a, "system": self.system}
        failures = []
        stats = {"sent": 0, "status": {}, "codes": {}, "max_s": 0.0, "reconnects": 0}
        lock = threading.Lock()
        per_conn = N_REQUESTS // N_CONNECTIONS
        deadline = time.monotonic() + BUDGET_S

        def worker(i):
            gen = Gen(random.Random(SEED * 31 + i), self.local_repo_id)
            conn = self.server.connect(timeout=SOCKET_TIMEOUT_S)
            try:
                for n in range(per_conn):
                    if time.monotonic() > deadline:
                        break
                    req = gen.request()
                    hdrs = {"Content-Type": "application/json",
                            "Authorization": "Bearer " + tokens[req.token_kind]}
                    t0 = time.monotonic()
                    try:
                        conn.request("POST", harness.API_PREFIX + req.route, body=req.data,
                                     headers=hdrs)
                        resp = conn.getresponse()
                        raw = resp.read()
                        status, headers = resp.status, resp.headers
                    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                        elapsed = time.monotonic() - t0
                        conn.close()
                        conn = self.server.connect(timeout=SOCKET_TIMEOUT_S)
                        with lock:
                            stats["sent"] += 1
                            stats["reconnects"] += 1
                            failures.append((req, "no answer after %.1f s (%s: %s)" %
                                             (elapsed, type(e).__name__, e)))
                        if not self.server.running():
                            return
                        continue
                    elapsed = time.monotonic() - t0
                    problems = self.check_answer(req, status, headers, raw, elapsed)
                    code = None
                    try:
                        code = json.loads(raw).get("detail", {}).get("code")
                    except (ValueError, AttributeError, RecursionError):
                        pass
                    with lock:
                        stats["sent"] += 1
                        stats["max_s"] = max(stats["max_s"], elapsed)
                        stats["status"][status] = stats["status"].get(status, 0) + 1
                        if code:
                            stats["codes"][code] = stats["codes"].get(code, 0) + 1
                        for p in problems:
                            failures.append((req, "HTTP %d: %s; answer %r" %
                                             (status, p, raw[:400])))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(N_CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BUDGET_S + 3 * SOCKET_TIMEOUT_S)
        hung = [t for t in threads if t.is_alive()]
        return failures, stats, hung

    def test_malformed_request_storm(self):
        t0 = time.monotonic()
        before = self.snapshot()
        # sanity of the setup: A sees its three plugins and the remote ones
        self.assertEqual(before["list:A"]["total_count"], len(A_IDS) + len(REMOTE_CATALOG),
                         self._ctx(before["list:A"]))
        for pid in A_IDS:
            self.assertEqual(before["A:" + pid][0], 200)
            self.assertEqual(before["A:" + pid][1]["domain_id"], DOMAIN_A)

        failures, stats, hung = self.storm()
        storm_s = time.monotonic() - t0

        report = []
        if hung:
            report.append("%d client thread(s) still waiting on the server" % len(hung))
        if not self.server.running():
            report.append("the server is gone (exit %s)" % self.server.proc.returncode)
        else:
            r = self.server.request("/healthz", method="GET")
            if r.status != 200:
                report.append("/healthz answered %d after the storm" % r.status)
            r = self.server.api("plugin/list", {}, token=self.admin_a)
            if r.status != 200:
                report.append("plugin list answered %d after the storm: %r" %
                              (r.status, r.body))
            after = self.snapshot()
            for k in sorted(before):
                if before[k] != after[k]:
                    report.append("stored data changed: %s\n  before: %r\n  after:  %r" %
                                  (k, before[k], after[k]))
            # counts seen by A do not include B's plugins
            r = self.server.api("plugin/stat",
                                {"query": {"aggregate": [{"count": {"name": "n"}}]}},
                                token=self.admin_a)
            if r.status == 200:
                rows = r.body.get("results") or [{}]
                if rows[0].get("n") != len(A_IDS) + len(REMOTE_CATALOG):
                    report.append("plugin stat count for A is %r, expected %d" %
                                  (rows[0].get("n"), len(A_IDS) + len(REMOTE_CATALOG)))
            else:
                report.append("plugin stat count answered %d: %r" % (r.status, r.body))

        if os.environ.get("REPOD_FUZZ_VERBOSE"):
            print("\nseed %d: %d requests in %.1f s, max %.2f s, statuses %s, codes %s" %
                  (SEED, stats["sent"], storm_s, stats["max_s"], stats["status"],
                   stats["codes"]))
        if failures or report:
            lines = ["REPOD_FUZZ_SEED=%d (replay with this env var); %d requests sent in "
                     "%.1f s; statuses %s" % (SEED, stats["sent"], storm_s, stats["status"])]
            lines += report
            seen = set()
            for req, why in failures:
                key = (req.route, why[:60], req.note.split(",")[0])
                if key in seen:
                    continue
                seen.add(key)
                lines.append("- %s\n    %s" % (why, req.describe()))
                if len(seen) >= 25:
                    lines.append("... (%d failures in all)" % len(failures))
                    break
            self.fail("\n".join(lines) + self.server.describe())
        self.assertGreaterEqual(stats["sent"], min(N_REQUESTS, 300),
                                "too few requests sent within the budget (seed %d, %r)" %
                                (SEED, stats))


class RobustnessCasesTest(_RobustnessBase):
    """Fixed inputs for the defect classes the storm found (and neighbours)."""


    def assertClean4xx(self, r, what):
        """4xx with a well-formed error body, no path or token in it."""
        self.assertTrue(400 <= r.status < 500, "%s: expected a 4xx%s" % (what, self._ctx(r)))
        detail = self.assertError(r, r.status)
        self.assertTrue(detail["code"].startswith("ERROR_"), what + self._ctx(r))
        self.assertTrue(detail["message"].strip(), what + self._ctx(r))
        self.assertNotIn("/tmp/", detail["message"], what)
        self.assertNotIn("/work/", detail["message"], what)
        return detail

    def test_multibyte_values_in_error_messages(self):
        # error messages echo the offending value; a long value of multi-byte
        # characters must not make the answer a 500 (e.g. when the message is
        # cut inside a character)
        bad = []
        for ch in ("\u00e9", "\u65e5", "\U0001F600", "\u0301"):
            for prefix in ("", "k", "kk", "kkk"):
                value = prefix + ch * 300
                cases = [
                    ("plugin/get", {"plugin_id": value}, self.admin_a),
                    ("plugin/get-versions", {"plugin_id": value}, self.admin_a),
                    ("plugin/update", {"plugin_id": value, "name": 1}, self.admin_a),
                    ("plugin/get", {"plugin_id": "x", value: 1}, self.admin_a),
                    ("plugin/list", {"query": {"filter": [{"k": "name", "v": 1, "o": value}]}},
                     self.admin_a),
                    ("repository/get", {"repository_id": value}, self.system),
                ]
                for route, body, tok in cases:
                    r = self.server.api(route, body, token=tok)
                    if not _clean_error(r):
                        bad.append("%s %s -> HTTP %d %r" % (
                            route, json.dumps(body, ensure_ascii=False)[:70] + "...",
                            r.status, r.body if isinstance(r.body, dict) else r.body[:100]))
        if bad:
            self.fail("%d of %d requests did not get a clean 4xx:\n  %s%s" % (
                len(bad), 4 * 4 * 6, "\n  ".join(bad[:12]), self.server.describe()))

    def test_deep_nesting(self):
        # within jansson's depth limit (2048) the body parses and the server
        # must still answer 4xx without recursing itself to death; beyond it,
        # 400 ERROR_INVALID_JSON
        cases = [
            ("plugin/list", '{"query": {"filter": [{"k": "tags", "o": "eq", "v": %s}]}}'),
            ("plugin/list", '{"query": {"filter": [{"k": "tags", "o": "in", "v": [%s]}]}}'),
            ("plugin/stat", '{"query": {"aggregate": [{"group": %s}]}}'),
            ("plugin/get", '{"plugin_id": %s}'),
            ("plugin/update", '{"plugin_id": "alpha-one", "tags": %s, "zz_unknown": 1}'),
            ("plugin/register", '{"name": "n", "resource_type": "r", "image": "a/b", '
                                '"capability": %s, "zz_unknown": 1}'),
            ("repository/list", '{"query": {"filter": [{"k": "name", "o": "eq", "v": %s}]}}'),
        ]
        for depth in (2000, 2040, 2100, 5000, 100000):
            inner = '{"k":' * depth + "1" + "}" * depth
            for route, tmpl in cases:
                with self.subTest(route=route, depth=depth):
                    r = self.server.request(route, tmpl % inner, token=self.admin_a)
                    if route in ("plugin/list", "repository/list") and depth <= 2040:
                        self.assertIn(r.status, (200, 400), route + self._ctx(r))
                        if r.status == 200:
                            continue
                    self.assertClean4xx(r, "%s depth %d" % (route, depth))
        self.assertTrue(self.server.running(), "server died" + self.server.describe())

    def test_wrong_types_are_rejected_on_reads(self):
        # SPEC 3: type mismatches -> ERROR_INVALID_PARAMETER_TYPE (plugin get
        # does this for `only`; repository get must too)
        for route, body in (("plugin/get", {"plugin_id": A_IDS[0], "only": "name"}),
                            ("repository/get", {"repository_id": REMOTE_ID, "only": "name"}),
                            ("repository/get", {"repository_id": REMOTE_ID, "only": 5})):
            with self.subTest(route=route, body=body):
                r = self.server.api(route, body, token=self.admin_a)
                self.assertError(r, 400, ("ERROR_INVALID_PARAMETER_TYPE",
                                          "ERROR_INVALID_PARAMETER"))

    def test_stat_stages_on_an_empty_set(self):
        # every aggregate stage on zero rows (a filter that matches nothing):
        # 200 with empty results, and the server stays up (under UBSan a
        # memmove/qsort on the empty row array's NULL pointer kills it)
        nothing = [{"k": "name", "v": "no-such-plugin-anywhere", "o": "eq"}]
        stages = [{"skip": 0}, {"skip": 3}, {"limit": 0}, {"limit": 5},
                  {"sort": {"key": "n", "desc": True}}, {"unwind": {"path": "labels"}},
                  {"count": {"name": "c"}},
                  {"project": {"fields": [{"key": "name", "name": "h"}]}},
                  {"group": {"keys": [{"key": "provider", "name": "p"}],
                             "fields": [{"name": "n", "operator": "count"}]}}]
        bad = []
        for first in stages:
            for second in [None] + stages:
                agg = [first] + ([second] if second else [])
                body = {"query": {"filter": nothing, "aggregate": agg}}
                try:
                    r = self.server.api("plugin/stat", body, token=self.admin_a)
                except (OSError, http.client.HTTPException) as e:
                    bad.append("%s -> no answer (%s)" % (json.dumps(agg), e))
                    if not self.server.running():
                        break
                    continue
                if r.status != 200 and not _clean_error(r):
                    bad.append("%s -> HTTP %d %r" % (json.dumps(agg), r.status, r.body))
            if not self.server.running():
                bad.append("the server died (exit %s)" % self.server.proc.returncode)
                break
        if bad:
            self.fail("stat on an empty set:\n  " + "\n  ".join(bad[:10]) +
                      self.server.describe())

    def test_other_domain_is_indistinguishable_from_missing(self):
        # A asking for B's plugin gets the same answer as for a plugin that
        # does not exist anywhere (SPEC 7: not by error wording either)
        for route in ("get", "get-versions", "update", "enable", "disable", "deregister"):
            with self.subTest(route=route):
                body_b = {"plugin_id": B_ONLY_IDS[0]}
                body_n = {"plugin_id": "zz-" + B_ONLY_IDS[0][3:]}
                rb = self.server.api("plugin/" + route, body_b, token=self.admin_a)
                rn = self.server.api("plugin/" + route, body_n, token=self.admin_a)
                self.assertEqual(rb.status, rn.status, self._ctx(rb))
                self.assertTrue(400 <= rb.status < 500, self._ctx(rb))
                self.assertEqual(rb.body["detail"]["code"], rn.body["detail"]["code"])
                self.assertEqual(rb.body["detail"]["message"].replace(body_b["plugin_id"], "ID"),
                                 rn.body["detail"]["message"].replace(body_n["plugin_id"], "ID"))
        r = self.server.api("plugin/get", {"plugin_id": B_ONLY_IDS[0]}, token=self.admin_b)
        self.assertEqual(r.status, 200, "B's plugin vanished" + self._ctx(r))


def _clean_error(r):
    """r is a 4xx with a well-formed ERROR_* body and no file path."""
    if not (400 <= r.status < 500) or not isinstance(r.body, dict):
        return False
    d = r.body.get("detail")
    if not isinstance(d, dict):
        return False
    code, msg = d.get("code"), d.get("message")
    return (isinstance(code, str) and code.startswith("ERROR_") and isinstance(msg, str)
            and bool(msg.strip()) and "/tmp/" not in msg and "/work/" not in msg)


def _has_domain(v, domain):
    """True when v holds an object whose domain_id is domain."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("domain_id") == domain:
                return True
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return False


if __name__ == "__main__":
    unittest.main()

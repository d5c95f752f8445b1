"""test_store_memory.py - the store.* memory keys and the read model built
at start, through real repod processes over TLS.

- store.block_cache_mb / store.write_buffer_mb out of bounds or of the wrong
  type are refused by --check-config, each naming the key;
- a server with small RocksDB memory (1 MB block cache, 2 MB of memtables)
  takes 300 plugins (several memtable flushes), and after a restart (the
  model rebuilt from the store on two threads) answers every get, a list,
  a keyword list and a count exactly as before.
"""

import json
import os
import subprocess
import shutil
import tempfile
import unittest

import harness
from harness import Server, plugin_body, REPOD_BIN


class StoreKeysCheckedTest(unittest.TestCase):

    def check(self, store):
        tmp = tempfile.mkdtemp(prefix="repod-it-store-keys-")
        self.addCleanup(shutil.rmtree, tmp, True)
        certs = harness.cert_dir()
        cfg = {"tls": {"cert": os.path.join(certs, "server.crt"),
                       "key": os.path.join(certs, "server.key")},
               "listen": "127.0.0.1:0",
               "data_dir": os.path.join(tmp, "data"), "store": store}
        path = os.path.join(tmp, "repod.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return subprocess.run([REPOD_BIN, "--check-config", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)

    def test_bounds_and_types(self):
        self.assertEqual(self.check({"block_cache_mb": 1, "write_buffer_mb": 2}).returncode, 0)
        for store, key in (({"block_cache_mb": 0}, "store.block_cache_mb"),
                           ({"block_cache_mb": 65537}, "store.block_cache_mb"),
                           ({"block_cache_mb": "32"}, "store.block_cache_mb"),
                           ({"write_buffer_mb": 1}, "store.write_buffer_mb"),
                           ({"write_buffer_mb": 70000}, "store.write_buffer_mb")):
            r = self.check(store)
            self.assertNotEqual(r.returncode, 0, store)
            self.assertIn(key, r.stderr, store)


class SmallStoreRestartTest(unittest.TestCase):

    def test_restart_serves_the_same_answers(self):
        srv = Server(overrides={"store": {"block_cache_mb": 1, "write_buffer_mb": 2}},
                     name="small-store")
        self.addCleanup(srv.close)
        token = srv.make_token("domain-s", "admin")
        ids = []
        for i in range(300):
            r = srv.api("plugin/register",
                        plugin_body("acme/small-%03d" % i, name="Small %03d" % i,
                                    provider=["aws", "google", "azure"][i % 3],
                                    labels=["l%d" % (i % 5), "x" * (i % 40)]),
                        token=token)
            self.assertEqual(r.status, 200, r.body)
            ids.append(r.body["plugin_id"])
        lists = [{"query": {"filter": [{"k": "provider", "v": "aws", "o": "eq"}],
                            "sort": {"key": "name", "desc": True},
                            "page": {"start": 3, "limit": 17}}},
                 {"query": {"keyword": "small 02", "page": {"limit": 50}}},
                 {"query": {"filter": [{"k": "name", "v": "^small 1", "o": "regex"}],
                            "count_only": True}}]

        def snapshot():
            gets = {}
            for pid in ids:
                r = srv.api("plugin/get", {"plugin_id": pid}, token=token)
                self.assertEqual(r.status, 200, r.body)
                gets[pid] = r.body
            answers = []
            for body in lists:
                r = srv.api("plugin/list", body, token=token)
                self.assertEqual(r.status, 200, r.body)
                answers.append(r.body)
            return gets, answers

        before = snapshot()
        srv.restart()
        after = snapshot()
        self.assertEqual(before[0], after[0])
        self.assertEqual(before[1], after[1])
        self.assertEqual(after[1][2]["total_count"], 100)
        self.assertIn("read model holds 300 local plugins", srv.log())


if __name__ == "__main__":
    unittest.main()

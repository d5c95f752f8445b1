"""systemd readiness (Type=notify): repod reports READY=1 to $NOTIFY_SOCKET
only once its port answers, RELOADING=1 then READY=1 around a SIGHUP
reload, and STOPPING=1 on SIGTERM."""

import os
import socket
import tempfile
import threading
import time
import unittest

import harness
from harness import RepodTestCase, Server

WAIT_S = 20.0


class NotifySocket:
    """A unix datagram socket standing in for systemd's notify socket.  A
    reader thread records each message, and on READY=1 at once checks
    whether the server's port answers /readyz over TLS."""

    def __init__(self, port):
        self.dir = tempfile.mkdtemp(prefix="repod-it-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.port = port
        self.lock = threading.Lock()
        self.messages = []         # (text, port answered /readyz 200 at arrival)
        self.stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _port_answers(self):
        try:
            s = harness.tls_socket(self.port, timeout=5.0)
        except OSError:
            return False
        try:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return harness.recv_all(s, timeout=5.0).startswith(b"HTTP/1.1 200")
        finally:
            s.close()

    def _read(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            answered = self._port_answers() if "READY=1" in text.split("\n") else None
            with self.lock:
                self.messages.append((text, answered))

    def wait_for(self, line, count=1):
        """Waits until count messages hold line; returns all messages."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                got = [m for m in self.messages if line in m[0].split("\n")]
                if len(got) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError("no %d x %r on the notify socket; got %r" % (count, line, self.messages))

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


class NotifyTest(RepodTestCase):

    def setUp(self):
        port = harness.free_port()
        self.server = Server(overrides={"listen": "127.0.0.1:%d" % port}, start=False, name="notify")
        self.addCleanup(self.server.close)
        self.notify = NotifySocket(port)
        self.addCleanup(self.notify.close)
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = self.notify.path
        try:
            self.server.start()
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old

    def test_ready_only_once_the_port_answers(self):
        msgs = self.notify.wait_for("READY=1")
        ready = [m for m in msgs if "READY=1" in m[0].split("\n")]
        self.assertEqual(len(ready), 1, msgs)
        self.assertTrue(ready[0][1], "READY=1 came before the port answered /readyz: %r" % msgs)
        self.assertIn("STATUS=serving on https://127.0.0.1:%d" % self.server.port, ready[0][0])
        self.assertFalse(any("STOPPING=1" in m[0] for m in msgs), msgs)

    def test_reload_then_ready_and_stopping_on_sigterm(self):
        self.notify.wait_for("READY=1")
        self.server.sighup()
        msgs = self.notify.wait_for("READY=1", count=2)
        texts = [m[0] for m in msgs]
        reloading = [i for i, t in enumerate(texts) if "RELOADING=1" in t.split("\n")]
        ready = [i for i, t in enumerate(texts) if "READY=1" in t.split("\n")]
        self.assertEqual(len(reloading), 1, texts)
        self.assertTrue(ready[0] < reloading[0] < ready[1], texts)
        self.assertRegex(texts[reloading[0]], r"MONOTONIC_USEC=\d+")
        self.assertEqual(self.server.stop(), 0)
        msgs = self.notify.wait_for("STOPPING=1")
        self.assertEqual(sum("STOPPING=1" in m[0].split("\n") for m in msgs), 1, msgs)

    def test_no_notify_socket_is_harmless(self):
        # The server of setUp had one; a server without NOTIFY_SOCKET serves
        # and stops as always.
        self.assertNotIn("NOTIFY_SOCKET", os.environ)
        with Server(name="notify-none") as other:
            self.assertOK(other.request("/readyz", method="GET"))
            self.assertEqual(other.stop(), 0)


if __name__ == "__main__":
    unittest.main()

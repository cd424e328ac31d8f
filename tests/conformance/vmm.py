"""An `ignition --api-sock` process under test and an HTTP/1.1 client on its Unix socket.
Every request has a deadline; a request that times out, or a connection the server drops
without answering, or a process that dies, is a failure of the server (ServerFailure)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

REQUEST_TIMEOUT_S = 20.0
# What the sanitizers print when they find something; any of it in stderr fails the run.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehavior")


class ServerFailure(Exception):
    """The server crashed, hung, or dropped a connection it should have answered on."""


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body  # bytes

    def json(self):
        return json.loads(self.body) if self.body else None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"{self.status} {self.text()[:300]}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Vmm:
    """Starts `ignition --api-sock SOCK [extra args]` with the console on a file (and stdin a
    pipe the test can write to)."""

    def __init__(self, binary, work_dir, name, extra_args=()):
        self.work_dir = work_dir
        self.name = name
        self.socket_path = os.path.join(work_dir, f"{name}.sock")
        self.console_path = os.path.join(work_dir, f"{name}.console")
        self.stderr_path = os.path.join(work_dir, f"{name}.stderr")
        for p in (self.socket_path, self.console_path, self.stderr_path):
            if os.path.lexists(p):
                os.unlink(p)
        self._console = open(self.console_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--api-sock", self.socket_path, "--id", name, *extra_args],
            stdin=subprocess.PIPE,
            stdout=self._console,
            stderr=self._stderr,
        )
        self._conn = None
        self.requests = 0
        self._wait_for_socket(10.0)

    def _wait_for_socket(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if os.path.exists(self.socket_path):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.socket_path)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.005)
        raise ServerFailure(f"{self.name}: the API socket did not come up in {timeout} s")

    def alive(self):
        return self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise ServerFailure(
                f"{self.name}: ignition exited with {self.proc.returncode}\n{self.stderr_tail()}"
            )

    def stderr_tail(self, n=4000):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-n:]

    def console(self):
        with open(self.console_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_console(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.console():
                return True
            self.check_alive()
            time.sleep(0.05)
        return False

    def write_stdin(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method, path, body=None, headers=None):
        """One request on the keep-alive connection (reopened when the server closed it after
        a reply that says so). `body`: bytes, str, or a JSON-able value."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Accept": "application/json"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        self.check_alive()
        self.requests += 1
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = _UnixConnection(self.socket_path, REQUEST_TIMEOUT_S)
            fresh = self._conn.sock is None
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                r = self._conn.getresponse()
                data = r.read()
                reply = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
                if r.will_close:
                    self.close_connection()
                return reply
            except socket.timeout as e:
                self.close_connection()
                raise ServerFailure(
                    f"{self.name}: no reply to {method} {path} in {REQUEST_TIMEOUT_S} s"
                ) from e
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError) as e:
                self.close_connection()
                self.check_alive()
                # A keep-alive connection the server closed between requests is retried once
                # on a new one; a fresh connection dropped without a reply is a failure.
                if fresh or attempt == 1:
                    raise ServerFailure(
                        f"{self.name}: connection dropped on {method} {path}: {e!r}"
                    ) from e
        raise AssertionError("unreachable")

    def raw(self, data, timeout=REQUEST_TIMEOUT_S):
        """Sends raw bytes on a new connection; returns what comes back until the server
        closes or goes quiet for 0.5 s after answering."""
        self.check_alive()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket_path)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading all of it
            got = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    if got:
                        break
                    raise ServerFailure(f"{self.name}: no reply to raw {data[:40]!r}")
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
                s.settimeout(0.5)
            return got
        finally:
            s.close()

    def close_connection(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self, timeout=20.0):
        """SIGTERM; returns (exit code, problems) where problems lists what went wrong: a
        non-zero exit, a hang, sanitizer reports, a socket file left behind."""
        self.close_connection()
        problems = []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"{self.name}: did not exit within {timeout} s of SIGTERM")
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        self._console.close()
        self._stderr.close()
        code = self.proc.returncode
        if code != 0:
            problems.append(f"{self.name}: exit status {code}")
        err = self.stderr_tail(20000)
        for mark in SANITIZER_MARKS:
            if mark in err:
                problems.append(f"{self.name}: sanitizer report in stderr ({mark})")
                break
        if os.path.lexists(self.socket_path):
            problems.append(f"{self.name}: socket file left behind")
        if problems:
            problems.append(f"{self.name} stderr tail:\n{self.stderr_tail()}")
        return code, problems

"""Start the server under test (twig or a real nats-server), mirroring tests/src/harness.rs.

TWIG_TEST_TARGET=twig|nats-server (default twig). Binaries: TWIG_BIN, else
<workspace>/target/release/twig, else target/debug/twig; TWIG_NATS_SERVER, else nats-server on
PATH. A missing binary is an error, never a skip. The port is read from the
`Listening for client connections on HOST:PORT` log line, then `Server is ready` is awaited,
both within START_DEADLINE seconds.
"""

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

START_DEADLINE = 10.0
LISTENING = "Listening for client connections on "
READY = "Server is ready"
WORKSPACE = Path(__file__).resolve().parents[2]


def target():
    t = os.environ.get("TWIG_TEST_TARGET", "") or "twig"
    if t not in ("twig", "nats-server"):
        raise RuntimeError(f"TWIG_TEST_TARGET={t!r}: expected twig or nats-server")
    return t


def binary(which):
    if which == "twig":
        env = os.environ.get("TWIG_BIN")
        if env:
            if not Path(env).is_file():
                raise RuntimeError(f"TWIG_BIN={env} does not exist")
            return env
        for profile in ("release", "debug"):
            p = WORKSPACE / "target" / profile / "twig"
            if p.is_file():
                return str(p)
        raise RuntimeError(
            "twig binary not found: set TWIG_BIN or run `cargo build --release -p twig-gateway`; "
            "or use TWIG_TEST_TARGET=nats-server")
    env = os.environ.get("TWIG_NATS_SERVER")
    if env:
        if not Path(env).is_file():
            raise RuntimeError(f"TWIG_NATS_SERVER={env} does not exist")
        return env
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: set TWIG_NATS_SERVER or put it on PATH")
    return found


def parse_listening_port(line):
    _, sep, rest = line.partition(LISTENING)
    if not sep or not rest.split():
        return None
    try:
        return int(rest.split()[0].rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def render_config(which, opts):
    """Options without a command-line flag, as nats-server conf or twig TOML (see options.rs)."""
    keys = ("max_payload", "max_pending", "max_connections", "ping_interval", "ping_max")
    plain = {k: opts[k] for k in keys if k in opts}
    auth_timeout = opts.get("auth_timeout")
    if not plain and auth_timeout is None:
        return None
    lines = ["# rendered by tests/py/harness.py"]
    for k, v in plain.items():
        if which == "nats-server":
            lines.append(f'{k}: "{v}s"' if k == "ping_interval" else f"{k}: {v}")
        else:
            lines.append(f"{k} = {v}")
    if auth_timeout is not None:
        if which == "nats-server":
            lines.append(f"authorization {{\n  timeout: {auth_timeout}\n}}")
        else:
            lines.append(f"\n[authorization]\ntimeout = {auth_timeout}")
    return "\n".join(lines) + "\n"


class ServerUnderTest:
    """A running server; use as a context manager (killed on exit)."""

    def __init__(self, which=None, **opts):
        self.which = which or target()
        self.binary = binary(self.which)
        self.opts = opts
        self.dir = tempfile.TemporaryDirectory(prefix="twig-pytest-")
        self.proc = None
        self.port = None
        self.log = []
        self._start(None)

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def _start(self, port):
        args = [self.binary, "-a", "127.0.0.1", "-p", str(port if port else -1)]
        for flag, key in (("--user", "user"), ("--pass", "password"), ("--auth", "token")):
            if key in self.opts:
                args += [flag, self.opts[key]]
        conf = render_config(self.which, self.opts)
        if conf:
            path = Path(self.dir.name) / ("twig.toml" if self.which == "twig" else "nats.conf")
            path.write_text(conf)
            args += ["-c", str(path)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        lines = queue.Queue()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_DEADLINE
        found = None
        while True:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                line = None
                left = 0
            if line is None or left <= 0:
                self.stop()
                raise RuntimeError(f"{self.which} did not start within {START_DEADLINE}s; log:\n"
                                   + "\n".join(self.log))
            found = parse_listening_port(line) or found
            if READY in line:
                if found is None:
                    raise RuntimeError(f"`{READY}` before `{LISTENING}`")
                self.port = found
                return

    def restart(self):
        self.stop()
        self._start(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.dir.cleanup()

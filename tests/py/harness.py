"""Start the server under test (twig or a real nats-server), mirroring tests/src/harness.rs.

TWIG_TEST_TARGET=twig|nats-server (default twig). Binaries: TWIG_BIN, else
<workspace>/target/release/twig, else target/debug/twig; TWIG_NATS_SERVER, else nats-server on
PATH. A missing binary is an error, never a skip. The port is read from the
`Listening for client connections on HOST:PORT` log line, then `Server is ready` is awaited,
both within START_DEADLINE seconds.

Used by the nats-py suite (tests/py, the default python3) and the nats-core suite
(tests/py313, Python 3.13): only the standard library here.
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


def test_binary(name):
    """A helper binary of twig-tests (e.g. twig-test-pki), built by `cargo build --bins`."""
    for profile in ("release", "debug"):
        p = WORKSPACE / "target" / profile / name
        if p.is_file():
            return str(p)
    raise RuntimeError(f"{name} not found: run `cargo build --release -p twig-tests --bins`")


def make_certs(directory):
    """A test CA, server and client certificates in `directory` (dict of paths)."""
    subprocess.run([test_binary("twig-test-pki"), str(directory)], check=True)
    d = Path(directory)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server-key.pem"),
            "client_cert": str(d / "client.pem"), "client_key": str(d / "client-key.pem")}


def render_config(which, opts):
    """Options without a command-line flag, as nats-server conf or twig TOML (see options.rs).

    opts: max_payload, max_pending, max_connections, ping_interval, ping_max (plain);
    auth_timeout; nkeys (list of public user keys); tls (make_certs' dict) with tls_verify;
    lame_duck (duration, grace) in seconds."""
    keys = ("max_payload", "max_pending", "max_connections", "ping_interval", "ping_max")
    plain = {k: opts[k] for k in keys if k in opts}
    auth_timeout = opts.get("auth_timeout")
    nkeys = opts.get("nkeys") or []
    tls = opts.get("tls")
    lame_duck = opts.get("lame_duck")
    if not plain and auth_timeout is None and not nkeys and not tls and not lame_duck:
        return None
    nats = which == "nats-server"
    lines = ["# rendered by tests/py/harness.py"]
    for k, v in plain.items():
        if nats:
            lines.append(f'{k}: "{v}s"' if k == "ping_interval" else f"{k}: {v}")
        else:
            lines.append(f"{k} = {v}")
    if lame_duck:
        duration, grace = lame_duck
        sep = ": " if nats else " = "
        lines.append(f'lame_duck_duration{sep}"{int(duration * 1000)}ms"')
        lines.append(f'lame_duck_grace_period{sep}"{int(grace * 1000)}ms"')
    if tls:
        entries = [("cert_file", f'"{tls["cert"]}"'), ("key_file", f'"{tls["key"]}"')]
        if opts.get("tls_verify"):
            entries += [("ca_file", f'"{tls["ca"]}"'), ("verify", "true")]
        if nats:
            lines.append("tls {\n" + "".join(f"  {k}: {v}\n" for k, v in entries) + "}")
        else:
            lines.append("\n[tls]\n" + "".join(f"{k} = {v}\n" for k, v in entries))
    if auth_timeout is not None or nkeys:
        if nats:
            body = f"  timeout: {auth_timeout}\n" if auth_timeout is not None else ""
            if nkeys:
                body += "  users: [\n" + "".join(f"    {{ nkey: {k} }}\n" for k in nkeys) + "  ]\n"
            lines.append("authorization {\n" + body + "}")
        else:
            # twig keeps the auth timeout at the top level (nats-server: authorization.timeout).
            if auth_timeout is not None:
                lines.insert(1, f"auth_timeout = {auth_timeout}")
            if nkeys:
                lines.append("\n[authorization]\nusers = [\n"
                             + "".join(f'  {{ nkey = "{k}" }},\n' for k in nkeys) + "]")
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

    @property
    def url_v6(self):
        """nats://[::1]:PORT (start with ipv6_loopback=True)."""
        return f"nats://[::1]:{self.port}"

    @property
    def tls_url(self):
        return f"tls://127.0.0.1:{self.port}"

    def signal(self, command):
        """`<binary> --signal command=PID`, as an operator signals nats-server or twig."""
        subprocess.run([self.binary, "--signal", f"{command}={self.proc.pid}"], check=True,
                       timeout=START_DEADLINE)

    def wait_exit(self, timeout):
        """The exit code once the process ended (None if it still runs after `timeout`)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _start(self, port):
        if self.opts.get("ipv6_loopback"):
            # twig's default listens on both loopbacks; nats-server's would be every interface.
            host = [] if self.which == "twig" else ["-a", "::1"]
        else:
            host = ["-a", "127.0.0.1"]
        args = [self.binary, *host, "-p", str(port if port else -1)]
        for flag, key in (("--user", "user"), ("--pass", "password"), ("--auth", "token")):
            if key in self.opts:
                args += [flag, self.opts[key]]
        if "conf" in self.opts:
            # A config in nats-server's format, given as is to either server (twig reads it).
            path = Path(self.dir.name) / "server.conf"
            path.write_text(self.opts["conf"])
            args += ["-c", str(path)]
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

    def start_again(self):
        """Start after the process ended by itself (e.g. lame duck mode), on the same port."""
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

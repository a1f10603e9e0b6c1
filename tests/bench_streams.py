"""Stream benchmarks for tests/bench (issue 5): twig's `[[streams]]` against nats-server
JetStream, each as the leaf of a nats-server hub with JetStream (domain `hub`).

    tests/bench --only streams --runs 5

- `streams publish`: durable publish rate with PubAcks (twig-bench jspub, 256 in flight, 128 B)
  into twig with a stream (`sync = "always"`, `forward = "off"`) and a leafnode remote to the
  hub, against a nats-server leaf (JetStream domain `leaf`, `sync_interval: always`) with a
  file stream EDGE on the same subject.
- `streams publish, hub stream following`: the same while the hub stream AGG takes the leaf's
  messages as they come (twig forwards, the nats-server hub sources EDGE): the whole edge
  pattern runs while publishing.
- `streams drain`: the hub is down while N messages are published (with PubAcks) into the leaf's
  stream; then the hub starts: seconds from the hub being ready ("Server is ready") until the
  hub stream holds them. twig forwards its stream to the hub stream AGG (`forward =
  "jetstream"`); nats-server uses its own edge pattern (nats-protocol.md §4.4): hub stream AGG
  sources the leaf's stream EDGE via `external: {api: "$JS.leaf.API"}`. Before the hub goes
  down one message goes through (proves the path is configured; AGG must end with N + 1).
- `streams backlog RSS`: the hub is down (the remote points at a port nobody listens on); N
  messages published with PubAcks; then VmRSS and VmHWM (peak) of the leaf.

Every wait has a deadline. The nats-server leaf fills its stream with the default sync
interval in the drain and RSS scenarios (what is measured there is not the fill; with
`sync_interval: always` a 1,000,000-message fill takes minutes); twig always uses
`sync = "always"`. This module gets tests/bench's own module as `b` (servers, Scenario, ...).
"""
import contextlib, datetime, json, os, re, socket, subprocess, time

SUBJECT = "twig.bench"
START_TIMEOUT = 30.0   # a leaf pre-allocating a 256 MiB stream file, a JetStream hub recovering
POLL = 0.02            # hub stream polling interval in the drain
DRAIN_LIMIT = 180.0    # seconds for the hub stream to receive the backlog

# Counts per run: full and --quick.
FULL = {"publish": 100_000, "drain": 100_000, "rss": 1_000_000}
QUICK = {"publish": 2_000, "drain": 2_000, "rss": 5_000}


# ---------------------------------------------------------------- a minimal NATS client

class Nats:
    """A blocking raw-protocol client: enough for JetStream API requests."""

    def __init__(self, port, name, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.inbox = f"_INBOX.bench{os.getpid()}.{port}"
        self.serial = 0
        self.sock.sendall(f'CONNECT {{"verbose":false,"pedantic":false,"headers":true,'
                          f'"name":"{name}"}}\r\nSUB {self.inbox}.* 1\r\nPING\r\n'.encode())
        deadline = time.monotonic() + timeout
        while True:
            op = self._next(deadline)
            if op is None:
                raise RuntimeError(f"{name}: no PONG from port {port}")
            if op == "PONG":
                return

    def _next(self, deadline):
        """The next protocol op: "PONG", ("MSG", subject, payload), or None at the deadline."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = self.buf[:i]
                head = line.split(b" ", 1)[0].upper()
                if head in (b"MSG", b"HMSG"):
                    parts = line.split()
                    total = int(parts[-1])
                    if len(self.buf) < i + 2 + total + 2:
                        pass  # wait for the payload
                    else:
                        body = self.buf[i + 2:i + 2 + total]
                        if head == b"HMSG":
                            body = body[int(parts[-2]):]
                        self.buf = self.buf[i + 2 + total + 2:]
                        return ("MSG", parts[1].decode(), body)
                else:
                    self.buf = self.buf[i + 2:]
                    if head == b"PING":
                        self.sock.sendall(b"PONG\r\n")
                    elif head == b"PONG":
                        return "PONG"
                    elif head == b"-ERR":
                        raise RuntimeError(f"server error: {line.decode(errors='replace')}")
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise RuntimeError("server closed the connection")
            self.buf += chunk

    def request(self, subject, body, timeout=2.0):
        """The reply's payload, or None if none came within `timeout`."""
        self.serial += 1
        reply = f"{self.inbox}.{self.serial}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.sock.sendall(f"PUB {subject} {reply} {len(data)}\r\n".encode() + data + b"\r\n")
        deadline = time.monotonic() + timeout
        while True:
            op = self._next(deadline)
            if op is None:
                return None
            if op != "PONG" and op[1] == reply:
                return op[2]

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


def js(conn, api, body, what, timeout=5.0):
    """A JetStream API call that must succeed; its JSON reply."""
    got = conn.request(api, body, timeout)
    if got is None:
        raise RuntimeError(f"{what}: no reply to {api} within {timeout:.0f} s")
    reply = json.loads(got)
    if "error" in reply:
        raise RuntimeError(f"{what}: {api}: {reply['error']}")
    return reply


def stream_msgs(conn, stream):
    """Messages in `stream`, or None when the server cannot say yet (JetStream starting)."""
    got = conn.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=1.0)
    if got is None:
        return None
    reply = json.loads(got)
    return None if "error" in reply else reply["state"]["messages"]


def wait_msgs(port, stream, want, limit, what, give_up=False):
    """Polls `stream` on the server at `port` until it holds `want` messages; returns
    (monotonic time it did, count then). At the time limit: raises, or with give_up returns
    (None, the last count seen)."""
    deadline = time.monotonic() + limit
    conn, n, last = None, None, 0
    try:
        while time.monotonic() < deadline:
            if conn is None:
                with contextlib.suppress(OSError, RuntimeError):
                    conn = Nats(port, "bench-poll")
            if conn is not None:
                try:
                    n = stream_msgs(conn, stream)
                except (OSError, RuntimeError):
                    conn.close()
                    conn, n = None, None
                if n is not None and n >= want:
                    return time.monotonic(), n
                last = n if n is not None else last
            time.sleep(POLL)
    finally:
        if conn is not None:
            conn.close()
    if give_up:
        return None, last
    raise RuntimeError(f"{what}: {stream} did not reach {want} messages within {limit:.0f} s")


# ---------------------------------------------------------------- servers

class JsHub:
    """A nats-server hub with JetStream (domain `hub`) and a leafnode port; stopped and started
    again on the same ports and store."""

    def __init__(self, b, ctx):
        self.b, self.ctx = b, ctx
        self.port, self.leaf_port = b.free_port(), b.free_port()
        self.dir = os.path.join(ctx.tmpdir, f"hub-{self.port}")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "hub.conf")
        self.write_conf()
        self.srv = None

    def write_conf(self, leaf_extra=""):
        """The config; leaf_extra: more options in its `leafnodes { }` (before `up`)."""
        extra = f", {leaf_extra}" if leaf_extra else ""
        with open(self.conf, "w") as f:
            f.write(f'listen: "127.0.0.1:{self.port}"\n'
                    f'leafnodes {{ listen: "127.0.0.1:{self.leaf_port}"{extra} }}\n'
                    f'jetstream {{ domain: hub, store_dir: "{self.dir}/js" }}\n')

    def up(self):
        """Starts the hub; returns the monotonic time it said "Server is ready"."""
        self.srv = start(self.b, self.b.Target("hub", "hub", self.ctx.hub_bin), self.ctx,
                         ["-c", self.conf])
        return time.monotonic()

    def down(self):
        if self.srv is not None:
            self.srv.stop()
            self.srv = None


def start(b, target, ctx, args):
    """b.Server with a longer start limit (JetStream recovery, stream file pre-allocation)."""
    saved, b.START_TIMEOUT = b.START_TIMEOUT, START_TIMEOUT
    try:
        return b.Server(target, ctx.tmpdir, args)
    finally:
        b.START_TIMEOUT = saved


def is_twig(target):
    return target.key != "nats"


def twig_forwards(twig_bin, tmpdir):
    """Whether this twig build accepts `forward = "jetstream"` on a stream (`twig -t`)."""
    conf = os.path.join(tmpdir, "forward-probe.toml")
    with open(conf, "w") as f:
        f.write(f'[[streams]]\nname = "P"\nsubjects = ["p"]\nfile = "{tmpdir}/p.stream"\n'
                f'max_bytes = "128KiB"\nforward = "jetstream"\n\n'
                f'[[leafnodes.remotes]]\nurls = ["nats-leaf://127.0.0.1:7422"]\n')
    try:
        p = subprocess.run([twig_bin, "-c", conf, "-t"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return p.returncode == 0


def start_leaf(b, target, ctx, hub_leaf_port, *, sync_always, forward, max_bytes, wait_link,
               remote_extra=""):
    """The leaf under test with a stream (twig) or JetStream and a file stream EDGE
    (nats-server) on SUBJECT, its remote at hub_leaf_port (remote_extra: more options of the
    nats-server leaf's remote); returns the Server once its stream exists (and, with
    wait_link, its leafnode connection is up)."""
    d = os.path.join(ctx.tmpdir, f"leaf-{target.key}-{b.free_port()}")
    os.makedirs(d)
    url = f"nats-leaf://127.0.0.1:{hub_leaf_port}"
    if is_twig(target):
        conf = os.path.join(d, "twig.toml")
        with open(conf, "w") as f:
            f.write(f'host = "127.0.0.1"\nport = -1\nstore_dir = "{d}"\n\n'
                    f'[[streams]]\nname = "EDGE"\nsubjects = ["{SUBJECT}"]\n'
                    f'file = "{d}/edge.stream"\nmax_bytes = "{max_bytes}"\n'
                    f'sync = "{"always" if sync_always else "1s"}"\n'
                    + (f'forward = "{forward}"\n' if forward else "")
                    + f'\n[[leafnodes.remotes]]\nurls = ["{url}"]\n')
        srv = start(b, target, ctx, ["-c", conf])
    else:
        conf = os.path.join(d, "leaf.conf")
        sync = ", sync_interval: always" if sync_always else ""
        with open(conf, "w") as f:
            f.write(f'jetstream {{ domain: leaf, store_dir: "{d}/js"{sync} }}\n'
                    f'leafnodes {{ remotes = [ {{ url: "{url}"{", " + remote_extra if remote_extra else ""} }} ] }}\n')
        srv = start(b, target, ctx, ["-a", "127.0.0.1", "-p", "-1", "-c", conf])
    try:
        if not is_twig(target):
            conn = Nats(srv.port, "bench-setup")
            try:
                js(conn, "$JS.API.STREAM.CREATE.EDGE",
                   {"name": "EDGE", "subjects": [SUBJECT], "storage": "file"}, "leaf stream")
            finally:
                conn.close()
        if wait_link:
            deadline = time.monotonic() + START_TIMEOUT
            while "Leafnode connection created" not in open(srv.log_path, errors="replace").read():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target.label} leaf did not connect to the hub")
                time.sleep(0.01)
    except BaseException:
        srv.stop()
        raise
    return srv


def jspub(ctx, port, msgs, limit, size=128):
    """twig-bench jspub into the stream on `port`; its JSON result."""
    argv = [ctx.bench, "jspub", "--url", f"127.0.0.1:{port}", "--size", str(size),
            "--msgs", str(msgs), "--inflight", "256", "--subject", SUBJECT,
            "--duration-limit", str(limit)]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=limit + 15)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(argv)}` did not finish in {limit + 15:.0f} s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({p.returncode}): {p.stderr.strip()}")
    r = json.loads(lines[-1])
    if not r.get("complete"):
        raise RuntimeError(f"jspub incomplete: {r.get('done')}/{msgs} acked: {r.get('errors')}")
    return r


LOG_TIME = re.compile(r"^\[\d+\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) ")


def last_logged(path, text):
    """The time stamp (seconds since the epoch) of the last log line containing `text`; both
    servers log like nats-server: `[PID] 2026/11/22 08:49:06.934499 [INF] ...`."""
    when = None
    with open(path, errors="replace") as f:
        for line in f:
            m = LOG_TIME.match(line)
            if m and text in line:
                when = datetime.datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp()
    return when


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


# ---------------------------------------------------------------- scenarios

def create_agg(hub, target):
    """The hub stream AGG: twig's forwarder publishes into it; for nats-server it sources the
    leaf's EDGE (the edge pattern)."""
    conn = Nats(hub.port, "bench-setup")
    try:
        cfg = ({"name": "AGG", "subjects": [SUBJECT], "storage": "file"} if is_twig(target) else
               {"name": "AGG", "storage": "file",
                "sources": [{"name": "EDGE", "external": {"api": "$JS.leaf.API"}}]})
        js(conn, "$JS.API.STREAM.CREATE.AGG", cfg, "hub stream")
    finally:
        conn.close()


def publish_setup(b, edge):
    """The leaf connected to a hub. edge=False: the leaf only stores (twig `forward = "off"`,
    no hub stream). edge=True: the hub stream AGG takes the leaf's messages as they come (twig
    forwards, the nats-server hub sources EDGE): the whole edge pattern runs while publishing."""
    @contextlib.contextmanager
    def setup(target, ctx):
        if edge and is_twig(target) and not ctx.twig_forwards:
            raise NotMeasured("this twig build has no stream forwarder (`forward`)")
        hub = JsHub(b, ctx)
        hub.up()
        fwd = ("jetstream" if edge else "off") if ctx.twig_forwards else None
        try:
            leaf = start_leaf(b, target, ctx, hub.leaf_port, sync_always=True,
                              forward=fwd, max_bytes="64MiB", wait_link=True)
            try:
                if edge:
                    create_agg(hub, target)
                yield leaf
            finally:
                leaf.stop()
        finally:
            hub.down()
    return setup


def publish_run(b):
    """twig-bench jspub into the leaf, and the CPU the leaf spent per PubAcked message: on 2
    shared cores the hub and the load generator take their part, the leaf's own cost is this."""
    def run(sc, leaf, ctx):
        before = b.cpu_secs(leaf.pid)
        r = jspub(ctx, leaf.port, sc.count, sc.limit)
        r["leaf_cpu_us"] = (b.cpu_secs(leaf.pid) - before) * 1e6 / max(1, r.get("done", 1))
        r["human"] = (f"jspub {sc.count} x 128 B, 256 in flight: {b.rate_fmt(r['msgs_per_sec'])} "
                      f"PubAcked msgs/s; leaf CPU {r['leaf_cpu_us']:.1f} us/msg")
        return r
    return run


def drain_run(b):
    def run(sc, _unused, ctx):
        target, n = ctx.current, sc.count
        twig = is_twig(target)
        if twig and not ctx.twig_forwards:
            raise NotMeasured("this twig build has no stream forwarder (`forward`)")
        hub = JsHub(b, ctx)
        hub.up()
        leaf = None
        try:
            leaf = start_leaf(b, target, ctx, hub.leaf_port, sync_always=twig,
                              forward="jetstream",
                              max_bytes="64MiB", wait_link=True)
            create_agg(hub, target)
            # One message through with the hub up: the path works before it is timed.
            jspub(ctx, leaf.port, 1, 30)
            wait_msgs(hub.port, "AGG", 1, 60, "first message")
            hub.down()
            fill = jspub(ctx, leaf.port, n, sc.limit)
            ready = hub.up()
            done, got = wait_msgs(hub.port, "AGG", n + 1, DRAIN_LIMIT, "drain", give_up=True)
            # How much of it was the leaf reconnecting (both log in local time, same clock).
            hub_log, leaf_log = hub.srv.log_path, leaf.log_path
        finally:
            if leaf is not None:
                leaf.stop()
            hub.down()
        # Not there at the limit: the limit is shown as a lower bound, marked incomplete
        # (nats-server's sourcing sometimes backs off for minutes: its own behaviour).
        secs = DRAIN_LIMIT if done is None else done - ready
        t_ready = last_logged(hub_log, "Server is ready")
        t_link = last_logged(leaf_log, "Leafnode connection created")
        link = t_link - t_ready if t_ready and t_link and t_link >= t_ready else None
        errors = [] if got == n + 1 else [f"hub stream holds {got} messages, not {n + 1}"]
        if done is None:
            errors = [f"after {DRAIN_LIMIT:.0f} s the hub stream held {got} of {n + 1} messages"]
        r = {"drain_secs": secs, "msgs": n, "hub_msgs": got, "complete": not errors,
             "errors": errors, "fill_msgs_per_sec": fill["msgs_per_sec"],
             "lower_bound": done is None and not twig,
             "human": f"drain {n} msgs: hub ready -> AGG holds them in "
                      f"{'more than ' if done is None else ''}{secs:.2f} s "
                      f"(leaf link up after {'?' if link is None else f'{link:.2f}'} s; "
                      f"filled at {b.rate_fmt(fill['msgs_per_sec'])} msgs/s)"}
        if link is not None:
            r["link_secs"] = link
        return r
    return run


def rss_run(b):
    def run(sc, _unused, ctx):
        target, n = ctx.current, sc.count
        dead = b.free_port()  # the hub is down: nothing listens there
        leaf = start_leaf(b, target, ctx, dead, sync_always=is_twig(target),
                          forward="jetstream" if ctx.twig_forwards else None,
                          max_bytes="256MiB", wait_link=False)
        try:
            before = status_kib(leaf.pid, "VmRSS")
            fill = jspub(ctx, leaf.port, n, sc.limit)
            rss, hwm = status_kib(leaf.pid, "VmRSS"), status_kib(leaf.pid, "VmHWM")
        finally:
            leaf.stop()
        return {"rss_kib": rss, "hwm_kib": hwm, "start_rss_kib": before, "msgs": n,
                "fill_msgs_per_sec": fill["msgs_per_sec"],
                "human": f"backlog {n} msgs: RSS {b.mib(rss)}, peak {b.mib(hwm)} "
                         f"(at start {b.mib(before)}; filled at "
                         f"{b.rate_fmt(fill['msgs_per_sec'])} msgs/s)"}
    return run


class NotMeasured(RuntimeError):
    """A scenario this build cannot run (shown as n/a, not a failure)."""


@contextlib.contextmanager
def nothing(target, ctx):
    yield None


def scenarios(b, quick):
    n = QUICK if quick else FULL
    secs = lambda x: f"{x:.2f}"  # noqa: E731
    mib = lambda k: f"{k / 1024:.1f} MiB"  # noqa: E731
    pub = [b.Scenario(name, 128, [],
                      [b.Metric("msgs_per_sec", "PubAcked msgs/s (sync always, 256 in flight)",
                                True, b.rate_fmt),
                       b.Metric("leaf_cpu_us", "leaf CPU per message (us)", False,
                                lambda x: f"{x:.1f}")],
                      setup=publish_setup(b, edge), limit=300.0, run=publish_run(b),
                      count=n["publish"], what=f"{n['publish']:,} x 128 B")
           for name, edge in (("streams publish", False),
                              ("streams publish, hub stream following", True))]
    drain = b.Scenario("streams drain", 128, [],
                       [b.Metric("drain_secs", "hub ready -> hub stream holds the backlog (s)",
                                 False, secs),
                        b.Metric("link_secs", "of which: hub ready -> leaf link up again (s)",
                                 False, secs)],
                       setup=nothing, limit=300.0, run=drain_run(b), count=n["drain"],
                       what=f"{n['drain']:,} x 128 B")
    rss = b.Scenario("streams backlog RSS", 128, [],
                     [b.Metric("rss_kib", "RSS holding the backlog", False, mib),
                      b.Metric("hwm_kib", "peak RSS (VmHWM)", False, mib)],
                     setup=nothing, limit=600.0, run=rss_run(b), count=n["rss"],
                     what=f"{n['rss']:,} x 128 B", static=True)
    return pub + [drain, rss]


def checks(b, results, tw, na):
    """(target, twig's figure, met) rows for the targets of issue 5."""
    def med(name, key, t):
        return b.median_of(results.get((f"{name}/128", t), []), key)

    out = []
    for name in ("streams publish", "streams publish, hub stream following"):
        a, c = med(name, "msgs_per_sec", tw), med(name, "msgs_per_sec", na)
        if a is not None and c:
            out.append((f"{name}: PubAcked msgs/s (sync always, 128 B) >= 2x a nats-server "
                        "leaf (sync_interval: always)", f"{a / c:.1f}x", a >= 2 * c))
    a, c = med("streams drain", "drain_secs", tw), med("streams drain", "drain_secs", na)
    if a is not None and c:
        out.append(("drain: hub ready -> hub stream holds the backlog <= 1/10 of nats-server's "
                    "edge pattern", f"{a / c:.3f}x ({a:.2f} s vs {c:.1f} s)", a * 10 <= c))
    elif c is not None:
        out.append(("drain <= 1/10 of nats-server's edge pattern", "not measured", False))
    for key, label in (("twig", "glibc build"), ("static", "static musl build")):
        a = med("streams backlog RSS", "hwm_kib", key)
        if a is not None:
            out.append((f"peak RSS (VmHWM) holding the backlog <= 8 MiB ({label})",
                        b.mib(a), a <= 8 * 1024))
    return out

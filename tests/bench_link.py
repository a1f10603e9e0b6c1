"""Narrow-link benchmarks for tests/bench (issue 15): a backlog drains over an emulated uplink.

    tests/bench --only link --runs 3

The leaf's uplink goes through `twig-link` (the link emulator, tests/src/link_emu: per-direction
rate and one-way delay, a bottleneck queue) to a nats-server hub with JetStream. The hub is down
while N messages are published with PubAcks into the leaf's stream; then it starts, and the
figure is the time from the hub's "Server is ready" until the hub stream AGG holds them, with
the bytes that went up the link meanwhile (what a metered link bills):

- twig: its stream forwards to AGG (`forward = "jetstream"`).
- nats-server: the leaf edge pattern (nats-protocol.md section 4.4): the leaf has JetStream
  (domain `leaf`) and a file stream EDGE, its remote has `compression: s2_auto` (nats-server
  picks the S2 level from the measured round trip), and the hub's AGG sources EDGE through
  `$JS.leaf.API`.

Payloads, a different one per message (twig-bench jspub --payload): JSON sensor readings of
about 120 B, and 128 random bytes. Links: 1 Mbit/s with 200 ms round trip, 20 KB/s with 600 ms.
"Line" is the share of the link's rate the drain used: bytes up / rate over the time from the
leaf's link coming up to the end (what the reconnect takes is shown on its own).

This module gets tests/bench's own module as `b` and the stream helpers as `bs`.
"""
import contextlib, json, os, subprocess, time

N_FULL = 20_000
N_QUICK = 300
DRAIN_LIMIT = 1200.0   # seconds: 20,000 messages at 20 KB/s take about 220 s at line rate

# (name, bytes per second, round trip).
LINKS = [("1 Mbit/s 200 ms", 125_000, "200ms"), ("20 KB/s 600 ms", 20_000, "600ms")]
PAYLOADS = [("json", 120, "JSON readings (~120 B)"), ("random", 128, "x 128 B random")]


class Emulator:
    """A twig-link process between the leaf and the hub's leafnode port."""

    def __init__(self, ctx, target_port, rate, rtt):
        binary = os.path.join(os.path.dirname(ctx.bench), "twig-link")
        self.proc = subprocess.Popen(
            [binary, "--target", f"127.0.0.1:{target_port}", "--rate", str(rate), "--rtt", rtt],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"twig-link did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stats(self):
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def jspub(bs, ctx, port, msgs, limit, payload, size):
    """twig-bench jspub with a payload kind; its JSON result."""
    argv = [ctx.bench, "jspub", "--url", f"127.0.0.1:{port}", "--size", str(size),
            "--msgs", str(msgs), "--inflight", "256", "--subject", bs.SUBJECT,
            "--payload", payload, "--duration-limit", str(limit)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=limit + 15)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({p.returncode}): {p.stderr.strip()}")
    r = json.loads(lines[-1])
    if not r.get("complete"):
        raise RuntimeError(f"jspub incomplete: {r.get('done')}/{msgs}: {r.get('errors')}")
    return r


def drain_run(b, bs, rate, rtt, payload, size):
    def run(sc, _unused, ctx):
        target, n = ctx.current, sc.count
        twig = bs.is_twig(target)
        if twig and not ctx.twig_forwards:
            raise bs.NotMeasured("this twig build has no stream forwarder (`forward`)")
        hub = bs.JsHub(b, ctx)
        emu = leaf = None
        try:
            emu = Emulator(ctx, hub.leaf_port, rate, rtt)
            # The hub advertises the emulated link as its leafnode URL: a leaf that learnt its
            # own port would reconnect there directly, around the link.
            hub.write_conf(f'advertise: "127.0.0.1:{emu.port}"')
            hub.up()
            leaf = bs.start_leaf(b, target, ctx, emu.port, sync_always=twig,
                                 forward="jetstream", max_bytes="64MiB", wait_link=True,
                                 remote_extra="compression: s2_auto")
            bs.create_agg(hub, target)
            # One message through with the hub up: the path works before it is timed.
            jspub(bs, ctx, leaf.port, 1, 60, payload, size)
            bs.wait_msgs(hub.port, "AGG", 1, 120, "first message")
            hub.down()
            fill = jspub(bs, ctx, leaf.port, n, 300, payload, size)
            ready = hub.up()
            before = emu.stats()
            done, got = bs.wait_msgs(hub.port, "AGG", n + 1, DRAIN_LIMIT, "drain", give_up=True)
            after = emu.stats()
            hub_log, leaf_log = hub.srv.log_path, leaf.log_path
        finally:
            if leaf is not None:
                leaf.stop()
            if emu is not None:
                emu.stop()
            hub.down()
        secs = DRAIN_LIMIT if done is None else done - ready
        t_ready = bs.last_logged(hub_log, "Server is ready")
        t_link = bs.last_logged(leaf_log, "Leafnode connection created")
        link = t_link - t_ready if t_ready and t_link and t_link >= t_ready else 0.0
        up = after["up_delivered"] - before["up_delivered"]
        down = after["down_delivered"] - before["down_delivered"]
        line = up / rate / max(secs - link, 1e-3)
        errors = [] if got == n + 1 else [f"hub stream holds {got} messages, not {n + 1}"]
        if done is None:
            errors = [f"after {DRAIN_LIMIT:.0f} s the hub stream held {got} of {n + 1} messages"]
        return {"drain_secs": secs, "link_secs": link, "up_per_msg": up / n,
                "down_per_msg": down / n, "line_pct": 100 * line, "msgs": n, "hub_msgs": got,
                "complete": not errors, "errors": errors, "lower_bound": done is None and not twig,
                "human": f"drain {n} {payload}: {'more than ' if done is None else ''}"
                         f"{secs:.1f} s (link up after {link:.2f} s), {up / n:.1f} B up and "
                         f"{down / n:.1f} B down per message, line {100 * line:.0f}% "
                         f"(filled at {b.rate_fmt(fill['msgs_per_sec'])} msgs/s)"}
    return run


@contextlib.contextmanager
def nothing(target, ctx):
    yield None


def scenarios(b, bs, quick):
    n = N_QUICK if quick else N_FULL
    secs = lambda x: f"{x:.1f}"  # noqa: E731
    per = lambda x: f"{x:.1f}"  # noqa: E731
    pct = lambda x: f"{x:.0f}%"  # noqa: E731
    out = []
    # --quick (tests/run) proves the path on one link and payload: nats-server's sourcing
    # alone waits about 40 s for its retry back-off after a hub restart.
    links = LINKS[:1] if quick else LINKS
    payloads = PAYLOADS[:1] if quick else PAYLOADS
    for name, rate, rtt in links:
        for payload, size, what in payloads:
            metrics = [b.Metric("drain_secs", "hub ready -> hub stream holds the backlog (s)",
                                False, secs),
                       b.Metric("up_per_msg", "bytes up the link per message", False, per),
                       b.Metric("down_per_msg", "bytes down the link per message", False, per),
                       b.Metric("line_pct", "share of the link's rate used (after link up)",
                                True, pct),
                       b.Metric("link_secs", "of which: hub ready -> leaf link up (s)", False,
                                lambda x: f"{x:.2f}")]
            out.append(b.Scenario(f"link drain {name}", size, [], metrics, setup=nothing,
                                  limit=DRAIN_LIMIT, run=drain_run(b, bs, rate, rtt, payload, size),
                                  count=n, what=f"{n:,} {what}"))
    return out


def checks(b, results, tw, na):
    """(target, twig's figure, met) rows for the targets of issue 15."""
    out = []
    for name, _rate, _rtt in LINKS:
        for payload, size, _what in PAYLOADS:
            sid = f"link drain {name}/{size}"
            med = lambda key, t: b.median_of(results.get((sid, t), []), key)  # noqa: E731
            a, c = med("drain_secs", tw), med("drain_secs", na)
            if a is None:
                continue
            if c:
                out.append((f"{name}, {payload}: drain time <= 1/3 of nats-server's edge pattern",
                            f"{a / c:.2f}x ({a:.1f} s vs {c:.1f} s)", a * 3 <= c))
            a, c = med("up_per_msg", tw), med("up_per_msg", na)
            if c:
                out.append((f"{name}, {payload}: bytes up <= 1/2 of nats-server's (s2_auto)",
                            f"{a / c:.2f}x ({a:.0f} B vs {c:.0f} B per message)", a * 2 <= c))
            a = med("line_pct", tw)
            out.append((f"{name}, {payload}: drain at >= 90% of the link's rate", f"{a:.0f}%",
                        a >= 90))
    return out

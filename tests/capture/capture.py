#!/usr/bin/env python3
"""Record real NATS conversations as twig-core test data.

Runs a real nats-server (hub) and, for the leafnode capture, a second real nats-server as a
leaf; every connection goes through a recording TCP proxy on 127.0.0.1 that writes the bytes
each side sent to `<out>/<name>.c2s` (connecting side -> nats-server) and `<name>.s2c`
(nats-server -> connecting side). The clients are real too: nats-py for the client
conversation, a nats-server leaf for the leafnode one. Only the `-ERR` probes send hand-made
bytes, because their point is the server's answer.

This was run once; the files are kept in core-no-std/testdata/ (see its README). Re-run with:
    python3 tests/capture/capture.py --nats-server PATH --out core-no-std/testdata/nats-2.15.1
Needs nats-py (pip install nats-py). Only loopback addresses and free ports are used.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import nats


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from freeport import free_port  # noqa: E402


def wait_port(port, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} never opened")


class Server:
    """A nats-server process on a temp config, killed on exit."""

    def __init__(self, binary, conf_text, ports_to_wait):
        self.dir = tempfile.mkdtemp(prefix="twig-capture-")
        conf = os.path.join(self.dir, "server.conf")
        with open(conf, "w") as f:
            f.write(conf_text.replace("STORE_DIR", self.dir))
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"))
        for p in ports_to_wait:
            wait_port(p)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


class Recorder:
    """A recording proxy: one listening port, one upstream, records the Nth connection."""

    def __init__(self, upstream_port, out_dir):
        self.upstream_port = upstream_port
        self.out_dir = out_dir
        self.port = None
        self.next_name = None
        self.done = {}

    async def start(self):
        srv = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = srv.sockets[0].getsockname()[1]
        self.server = srv

    def expect(self, name):
        """Name the next connection accepted by the proxy."""
        self.next_name = name
        self.done[name] = asyncio.Event()

    async def _handle(self, creader, cwriter):
        name = self.next_name
        self.next_name = None
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        c2s = open(os.path.join(self.out_dir, name + ".c2s"), "wb") if name else None
        s2c = open(os.path.join(self.out_dir, name + ".s2c"), "wb") if name else None

        async def pump(r, w, f):
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    if f:
                        f.write(data)
                        f.flush()
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass

        await asyncio.gather(pump(creader, swriter, c2s), pump(sreader, cwriter, s2c))
        for f in (c2s, s2c):
            if f:
                f.close()
        if name:
            self.done[name].set()


async def client_conversation(rec):
    """nats-py doing what applications do: pub/sub, wildcards, queues, headers, requests."""
    rec.expect("client-subscriber")
    sub_nc = await nats.connect(f"nats://127.0.0.1:{rec.port}", name="capture-sub",
                                allow_reconnect=False)
    rec.expect("client-publisher")
    pub_nc = await nats.connect(f"nats://127.0.0.1:{rec.port}", name="capture-pub",
                                allow_reconnect=False)

    got = []

    async def cb(msg):
        got.append(msg)
        if msg.reply:
            await sub_nc.publish(msg.reply, b"reply:" + msg.data,
                                 headers={"Replied": "yes"} if msg.headers else None)

    await sub_nc.subscribe("sensors.*.temp", cb=cb)
    await sub_nc.subscribe("sensors.>", cb=cb)
    await sub_nc.subscribe("orders.new", queue="workers", cb=cb)
    limited = await sub_nc.subscribe("once.only", cb=cb)
    await limited.unsubscribe(limit=2)
    await sub_nc.subscribe("svc.echo", cb=cb)
    await sub_nc.flush()

    await pub_nc.publish("sensors.room1.temp", b"21.5")
    await pub_nc.publish("sensors.room2.humidity", b"")
    await pub_nc.publish("sensors.big", b"x" * 3000)
    await pub_nc.publish("orders.new", b"order-1", reply="orders.reply")
    await pub_nc.publish("sensors.room1.temp", b"with headers",
                         headers={"Nats-Msg-Id": "abc-1", "Unit": "C"})
    await pub_nc.publish("sensors.bin", bytes(range(256)))
    for i in range(3):
        await pub_nc.publish("once.only", f"n{i}".encode())
    await pub_nc.request("svc.echo", b"ping?", timeout=2)
    await pub_nc.request("svc.echo", b"hdr?", timeout=2, headers={"K": "v"})
    try:
        await pub_nc.request("nobody.home", b"hello", timeout=2)
    except nats.errors.NoRespondersError:
        pass
    await pub_nc.flush()
    await sub_nc.flush()
    await pub_nc.close()
    await sub_nc.close()
    for name in ("client-subscriber", "client-publisher"):
        await asyncio.wait_for(rec.done[name].wait(), 5)


async def raw_conversation(rec, name, chunks, settle=0.3):
    """Send hand-made bytes and record what the server answers (for -ERR cases)."""
    rec.expect(name)
    r, w = await asyncio.open_connection("127.0.0.1", rec.port)
    await r.readuntil(b"\r\n")  # INFO; recorded by the proxy
    for c in chunks:
        w.write(c)
        await w.drain()
    # Read until the server closes or goes quiet: the proxy records the answer either way.
    try:
        while await asyncio.wait_for(r.read(65536), settle):
            pass
    except asyncio.TimeoutError:
        pass
    w.close()
    await asyncio.wait_for(rec.done[name].wait(), 5)


ERR_CASES = [
    ("err-unknown-op", [b'CONNECT {"verbose":false}\r\n', b"FOO bar\r\n"]),
    ("err-control-line", [b'CONNECT {"verbose":false}\r\n', b"PUB " + b"a" * 5000 + b" 1\r\nx\r\n"]),
    ("err-max-payload", [b'CONNECT {"verbose":false}\r\n', b"PUB big 2000000\r\n"]),
    ("err-pub-args", [b'CONNECT {"verbose":false}\r\n', b"PUB foo\r\n"]),
    ("err-invalid-subject", [b'CONNECT {"verbose":false}\r\n', b"SUB foo..bar 1\r\nPING\r\n"]),
    ("err-pedantic-publish", [b'CONNECT {"verbose":true,"pedantic":true}\r\n',
                              b"PUB foo.* 2\r\nhi\r\nPING\r\n"]),
    ("err-protocol", [b'CONNECT {"protocol":7}\r\n']),
    ("err-no-responders-headers", [b'CONNECT {"no_responders":true,"headers":false}\r\n']),
    ("verbose-ok", [b"CONNECT {}\r\n", b"SUB a 1\r\nPUB a 2\r\nhi\r\nUNSUB 1\r\nPING\r\n"]),
    ("verbose-lowercase", [b"connect {}\r\n", b"sub a 1\r\npub a 2\r\nhi\r\nhpub a 12 14\r\nNATS/1.0\r\n\r\nhi\r\nping\r\n"]),
]

AUTH_CASES = [
    ("err-auth-violation", [b'CONNECT {"user":"u","pass":"wrong"}\r\nPING\r\n']),
    ("err-auth-first-op", [b"PING\r\n"]),
    ("auth-ok", [b'CONNECT {"user":"u","pass":"p","verbose":false}\r\nPING\r\n']),
]


async def leaf_conversation(binary, out):
    """A real nats-server leaf solicits a real hub through the recorder."""
    hub_client, hub_leaf = free_port(), free_port()
    hub = Server(binary, f"""
server_name: hub1
listen: 127.0.0.1:{hub_client}
leafnodes {{ listen: 127.0.0.1:{hub_leaf}, compression: off }}
""", [hub_client, hub_leaf])
    rec = Recorder(hub_leaf, out)
    await rec.start()
    leaf_client = free_port()
    rec.expect("leaf")
    leaf = Server(binary, f"""
server_name: leaf1
listen: 127.0.0.1:{leaf_client}
leafnodes {{ remotes: [ {{ url: "nats-leaf://127.0.0.1:{rec.port}", compression: off }} ] }}
""", [leaf_client])
    try:
        hub_nc = await nats.connect(f"nats://127.0.0.1:{hub_client}")
        leaf_nc = await nats.connect(f"nats://127.0.0.1:{leaf_client}")

        async def echo(msg):
            if msg.reply:
                await msg.respond(b"echo:" + msg.data)

        # Interest on the leaf side: plain, wildcard, queue (weights 1 then 2), service.
        await leaf_nc.subscribe("cloud.cmd.*", cb=echo)
        await leaf_nc.subscribe("cloud.>", cb=echo)
        await leaf_nc.subscribe("jobs", queue="workers", cb=echo)
        await leaf_nc.subscribe("jobs", queue="workers", cb=echo)
        await leaf_nc.subscribe("edge.svc", cb=echo)
        await leaf_nc.flush()
        # Interest on the hub side.
        await hub_nc.subscribe("telemetry.>", cb=echo)
        await hub_nc.subscribe("hub.svc", cb=echo)
        await hub_nc.flush()
        await wait_interest(hub_nc, "jobs")
        await wait_interest(leaf_nc, "hub.svc")

        # hub -> leaf: LMSG plain, with reply, with headers (HMSG), to a queue (| q, + r q).
        await hub_nc.publish("cloud.cmd.reboot", b"now")
        await hub_nc.publish("cloud.cmd.hdr", b"payload", headers={"Nats-Msg-Id": "m1"})
        await hub_nc.publish("jobs", b"job-1")
        await hub_nc.request("jobs", b"job-2", timeout=2)
        await hub_nc.request("edge.svc", b"q?", timeout=2)
        await hub_nc.request("edge.svc", b"h?", timeout=2, headers={"A": "b"})
        # leaf -> hub: LMSG and HMSG, request/reply the other way.
        await leaf_nc.publish("telemetry.t1", b"21.5")
        await leaf_nc.publish("telemetry.t2", b"22", headers={"Unit": "C"})
        await leaf_nc.request("hub.svc", b"up?", timeout=2)
        await leaf_nc.flush()
        await hub_nc.flush()
        # LS- on the way out.
        await leaf_nc.close()
        await hub_nc.flush()
        await asyncio.sleep(0.3)  # let LS- lines reach the proxy; nothing is asserted on it
        await hub_nc.close()
    finally:
        leaf.stop()
        hub.stop()
    await asyncio.wait_for(rec.done["leaf"].wait(), 5)


async def wait_interest(nc, subject, deadline_s=5.0):
    """Wait until a request on `subject` gets any answer (interest has propagated)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            await nc.request(subject, b"probe", timeout=0.2)
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.05)
    raise RuntimeError(f"no interest in {subject} within {deadline_s}s")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nats-server", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    port = free_port()
    hub = Server(a.nats_server, f"listen: 127.0.0.1:{port}\nserver_name: hub1\n", [port])
    try:
        rec = Recorder(port, a.out)
        await rec.start()
        await client_conversation(rec)
        for name, chunks in ERR_CASES:
            await raw_conversation(rec, name, chunks)
    finally:
        hub.stop()

    port = free_port()
    auth = Server(a.nats_server, f"""listen: 127.0.0.1:{port}
server_name: hub1
authorization {{ user: u, password: p, timeout: 1 }}
""", [port])
    try:
        rec = Recorder(port, a.out)
        await rec.start()
        for name, chunks in AUTH_CASES:
            await raw_conversation(rec, name, chunks)
        await raw_conversation(rec, "err-auth-timeout", [], settle=2.5)
    finally:
        auth.stop()

    await leaf_conversation(a.nats_server, a.out)
    print("captured:", ", ".join(sorted(os.listdir(a.out))))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

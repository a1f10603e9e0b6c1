"""nats-py takes the server under test for a nats-server (TWIG_TEST_TARGET=twig|nats-server):
version checks, every auth form, flush and drain, reconnect after a restart, lame duck mode onto
a second server, IPv6 loopback, client certificates (tls_verify).

Run: PYTHONPATH=.tools/pip python3 -m pytest tests/py
"""

import asyncio
import os
import ssl
import tempfile
import time

import nats
import nkeys
import pytest

from harness import ServerUnderTest, make_certs

STEP = 5.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def connect(url, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats.connect(url, connect_timeout=STEP, **kw)


async def round_trip(nc, subject="rt"):
    sub = await nc.subscribe(subject)
    await nc.flush()
    await nc.publish(subject, b"hi")
    assert (await sub.next_msg(timeout=STEP)).data == b"hi"
    await sub.unsubscribe()


def test_server_version_is_a_nats_server_2():
    """The assertion of nats-py's own legacy test suite (major version 2)."""
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server.url)
            v = nc.connected_server_version
            assert v.major == 2, nc._server_info
            assert (v.major, v.minor) >= (2, 8)
            assert isinstance(nc._server_info["go"], str)
            await nc.close()

    run(main())


def test_every_auth_form():
    async def main():
        with ServerUnderTest(user="app", password="s3cr3t") as server:
            await round_trip(await connect(server.url, user="app", password="s3cr3t"))
            await round_trip(await connect(f"nats://app:s3cr3t@127.0.0.1:{server.port}"))
        with ServerUnderTest(token="t0ken") as server:
            await round_trip(await connect(server.url, token="t0ken"))
            await round_trip(await connect(f"nats://t0ken@127.0.0.1:{server.port}"))
        kp = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        seed = kp.seed.decode()
        public = kp.public_key.decode()
        with tempfile.NamedTemporaryFile("w", suffix=".nk") as f:
            f.write(seed)
            f.flush()
            with ServerUnderTest(nkeys=[public]) as server:
                await round_trip(await connect(server.url, nkeys_seed=f.name))
                await round_trip(await connect(server.url, nkeys_seed_str=seed))

    run(main())


def test_flush_and_drain():
    async def main():
        with ServerUnderTest() as server:
            sub_nc = await connect(server.url)
            got = []

            async def cb(msg):
                await asyncio.sleep(0.001)
                got.append(int(msg.data))

            await sub_nc.subscribe("work", cb=cb)
            await sub_nc.flush(timeout=STEP)  # a PING/PONG: the server has the subscription
            pub = await connect(server.url)
            for i in range(200):
                await pub.publish("work", str(i).encode())
            await pub.flush(timeout=STEP)
            await pub.close()
            # drain: no new messages, everything already received is handled, then closed.
            await sub_nc.drain()
            assert got == list(range(200))
            assert sub_nc.is_closed

    run(main())


def test_reconnect_after_a_server_restart():
    async def main():
        with ServerUnderTest() as server:
            reconnected = asyncio.Event()

            async def on_reconnect():
                reconnected.set()

            nc = await connect(server.url, allow_reconnect=True, reconnect_time_wait=0.05,
                               max_reconnect_attempts=100, reconnected_cb=on_reconnect)
            sub = await nc.subscribe("again")
            await nc.flush()
            server.restart()
            await asyncio.wait_for(reconnected.wait(), STEP)
            deadline = time.monotonic() + STEP
            while True:
                await nc.publish("again", b"x")
                try:
                    assert (await sub.next_msg(timeout=0.2)).data == b"x"
                    break
                except nats.errors.TimeoutError:
                    assert time.monotonic() < deadline, "no delivery after the restart"
            await nc.close()

    run(main())


def test_lame_duck_mode_moves_the_client_to_a_second_server():
    async def main():
        ld = {"lame_duck": (30, 1)}
        with ServerUnderTest(**ld) as first, ServerUnderTest(**ld) as second:
            lame_duck = asyncio.Event()
            reconnected = asyncio.Event()

            async def on_ldm():
                lame_duck.set()

            async def on_reconnect():
                reconnected.set()

            nc = await nats.connect(servers=[first.url, second.url], dont_randomize=True,
                                    connect_timeout=STEP, reconnect_time_wait=0.05,
                                    lame_duck_mode_cb=on_ldm, reconnected_cb=on_reconnect)
            assert nc.connected_url.port == first.port
            sub = await nc.subscribe("ldm")
            await nc.flush()
            t0 = time.monotonic()
            first.signal("ldm")
            await asyncio.wait_for(lame_duck.wait(), STEP)
            await asyncio.wait_for(reconnected.wait(), STEP)
            assert time.monotonic() - t0 >= 0.9, "closed before the grace period"
            assert nc.connected_url.port == second.port
            other = await connect(second.url)
            deadline = time.monotonic() + STEP
            while True:
                await other.publish("ldm", b"moved")
                try:
                    assert (await sub.next_msg(timeout=0.2)).data == b"moved"
                    break
                except nats.errors.TimeoutError:
                    assert time.monotonic() < deadline, "no delivery on the second server"
            assert first.wait_exit(STEP) == 0, "\n".join(first.log)
            await other.close()
            await nc.close()

    run(main())


def test_ipv6_loopback():
    async def main():
        with ServerUnderTest(ipv6_loopback=True) as server:
            nc = await connect(server.url_v6)
            await round_trip(nc, "v6")
            assert nc._server_info["client_ip"] == "::1"
            await nc.close()

    run(main())


def test_tls_verify_needs_a_client_certificate():
    async def main():
        with tempfile.TemporaryDirectory() as d:
            certs = make_certs(d)
            with ServerUnderTest(tls=certs, tls_verify=True) as server:
                ctx = ssl.create_default_context(cafile=certs["ca"])
                ctx.load_cert_chain(certs["client_cert"], certs["client_key"])
                nc = await connect(server.tls_url, tls=ctx)
                assert nc._server_info.get("tls_verify") is True, nc._server_info
                await round_trip(nc, "mtls")
                await nc.close()
                bare = ssl.create_default_context(cafile=certs["ca"])
                with pytest.raises(Exception):
                    await connect(server.tls_url, tls=bare)

    run(main())

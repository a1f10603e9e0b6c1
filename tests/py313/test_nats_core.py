"""nats-core (PyPI `nats-core`, the newest official Python client: `nats.client`, Python 3.13)
against the server under test (TWIG_TEST_TARGET=twig|nats-server).

Its INFO parsing needs `go`, `host`, `headers` and the rest of nats-server's fields in every
INFO, lame duck notices included: a missing one breaks its read loop.

Run: PYTHONPATH=.tools/pip313 PYENV_VERSION=3.13.0 python3.13 -m pytest tests/py313
"""

import asyncio
import os
import ssl
import tempfile
import time

import nkeys
import pytest
from nats.client import connect as nats_connect

from harness import ServerUnderTest, make_certs

STEP = 5.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def connect(url, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats_connect(url, timeout=STEP, **kw)


async def round_trip(nc, subject="rt"):
    sub = await nc.subscribe(subject)
    await nc.flush()
    await nc.publish(subject, b"hi")
    assert (await sub.next(timeout=STEP)).data == b"hi"
    await sub.unsubscribe()


async def delivered(publisher, sub, subject):
    """Publishes until `sub` gets one (interest may still be on its way after a reconnect)."""
    deadline = time.monotonic() + STEP
    while True:
        await publisher.publish(subject, b"ping")
        await publisher.flush()
        try:
            assert (await sub.next(timeout=0.2)).data == b"ping"
            return
        except asyncio.TimeoutError:
            assert time.monotonic() < deadline, f"nothing delivered on {subject}"


def test_connect_sees_a_nats_server_2_info():
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server.url)
            info = nc.server_info
            assert info.version.startswith("2."), info
            assert info.go_version and info.host and info.headers and info.proto == 1
            assert info.max_payload == 1048576
            await round_trip(nc)
            await nc.close()

    run(main())


def test_every_auth_form():
    async def main():
        with ServerUnderTest(user="app", password="s3cr3t") as server:
            await round_trip(await connect(server.url, user="app", password="s3cr3t"))
            with pytest.raises(Exception, match="(?i)authorization violation"):
                await connect(server.url, user="app", password="wrong")
        with ServerUnderTest(token="t0ken") as server:
            await round_trip(await connect(server.url, token="t0ken"))
            with pytest.raises(Exception, match="(?i)authorization violation"):
                await connect(server.url, token="nope")
        seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
        public = nkeys.from_seed(seed.encode()).public_key.decode()
        with ServerUnderTest(nkeys=[public]) as server:
            nc = await connect(server.url, nkey=seed)
            assert nc.server_info.nonce and nc.server_info.auth_required
            await round_trip(nc)
            stranger = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
            with pytest.raises(Exception, match="(?i)authorization violation"):
                await connect(server.url, nkey=stranger)

    run(main())


def test_publish_subscribe_request_reply_and_headers():
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server.url)
            sub = await nc.subscribe("greet.*")
            await nc.flush()
            for i in range(20):
                await nc.publish(f"greet.n{i}", f"hello {i}".encode())
            for i in range(20):
                m = await sub.next(timeout=STEP)
                assert (m.subject, m.data) == (f"greet.n{i}", f"hello {i}".encode())

            responder = await connect(server.url)
            svc = await responder.subscribe("svc.echo")

            async def serve():
                async for m in svc:
                    await responder.publish(m.reply, b"echo:" + m.data,
                                            headers={"Served-By": "responder"})

            task = asyncio.create_task(serve())
            await responder.flush()
            for i in range(5):
                r = await nc.request("svc.echo", f"q{i}".encode(), timeout=STEP)
                assert r.data == f"echo:q{i}".encode()
                assert r.headers.get("Served-By") == "responder"
            task.cancel()

            hdr = await nc.subscribe("hdr")
            await nc.flush()
            await nc.publish("hdr", b"21.5", headers={"Nats-Msg-Id": "abc-1", "Unit": ["C", "K"]})
            m = await hdr.next(timeout=STEP)
            assert m.data == b"21.5"
            assert m.headers.get("Nats-Msg-Id") == "abc-1"
            assert m.headers.get_all("Unit") == ["C", "K"]
            await responder.close()
            await nc.close()

    run(main())


def test_flush_and_drain():
    async def main():
        with ServerUnderTest() as server:
            consumer = await connect(server.url)
            sub = await consumer.subscribe("work")
            await consumer.flush()
            producer = await connect(server.url)
            for i in range(200):
                await producer.publish("work", str(i).encode())
            await producer.flush()
            await round_trip(producer, "work.sync")
            # Drain: the subscription stops, what arrived can still be read, then closed.
            await consumer.drain()
            got = [int(m.data) async for m in sub]
            assert got == list(range(200))
            assert consumer.status.value == "closed"
            await producer.close()

    run(main())


def test_reconnect_after_a_server_restart():
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server.url, allow_reconnect=True, reconnect_time_wait=0.05,
                               reconnect_max_attempts=100)
            reconnected = asyncio.Event()
            nc.add_reconnected_callback(reconnected.set)
            sub = await nc.subscribe("again")
            await nc.flush()
            server.restart()
            await asyncio.wait_for(reconnected.wait(), STEP)
            await delivered(nc, sub, "again")
            await nc.close()

    run(main())


def test_lame_duck_mode_then_a_second_server_on_the_same_address():
    """nats-core has no lame-duck callback and only the URL it was given: it must take the
    `"ldm":true` INFO in its stride, and once the first server is gone, find the second one
    that took over the address."""
    async def main():
        with ServerUnderTest(lame_duck=(30, 1)) as server:
            nc = await connect(server.url, allow_reconnect=True, reconnect_time_wait=0.05,
                               reconnect_max_attempts=200)
            first_id = nc.server_info.server_id
            reconnected = asyncio.Event()
            nc.add_reconnected_callback(reconnected.set)
            sub = await nc.subscribe("ldm")
            await nc.flush()
            server.signal("ldm")
            code = await asyncio.to_thread(server.wait_exit, STEP)
            assert code == 0, "\n".join(server.log)
            assert any("Entering lame duck mode" in line for line in server.log)
            server.start_again()
            await asyncio.wait_for(reconnected.wait(), STEP)
            assert nc.server_info.server_id != first_id
            await delivered(nc, sub, "ldm")
            await nc.close()

    run(main())


def test_ipv6_loopback():
    async def main():
        with ServerUnderTest(ipv6_loopback=True) as server:
            nc = await connect(server.url_v6)
            await round_trip(nc, "v6")
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
                assert nc.server_info.tls_required and nc.server_info.tls_verify
                await round_trip(nc, "mtls")
                await nc.close()
                bare = ssl.create_default_context(cafile=certs["ca"])
                with pytest.raises(Exception):
                    await connect(server.tls_url, tls=bare)

    run(main())

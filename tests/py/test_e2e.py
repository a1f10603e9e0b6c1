"""nats-py against the server under test (TWIG_TEST_TARGET=twig|nats-server).

Run: python3 -m pytest tests/py  (needs pytest and nats-py). Each test starts its own server.
"""

import asyncio
import socket
import time

import nats
import pytest
from nats.errors import NoRespondersError

from harness import ServerUnderTest, parse_listening_port, render_config

STEP = 5.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def connect(server, **kw):
    return await nats.connect(server.url, allow_reconnect=False, connect_timeout=STEP, **kw)


async def next_msg(sub):
    return await sub.next_msg(timeout=STEP)


def test_harness_parses_port_and_renders_configs():
    line = "[1] 2026/01/01 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:4333"
    assert parse_listening_port(line) == 4333
    assert parse_listening_port("Server is ready") is None
    assert render_config("nats-server", {}) is None
    assert "max_payload: 10\n" in render_config("nats-server", {"max_payload": 10})
    assert "max_payload = 10\n" in render_config("twig", {"max_payload": 10})


def test_publish_subscribe():
    async def main():
        with ServerUnderTest() as server:
            sub_nc = await connect(server)
            pub_nc = await connect(server)
            sub = await sub_nc.subscribe("greet.*")
            await sub_nc.flush()
            for i in range(5):
                await pub_nc.publish(f"greet.n{i}", f"hello {i}".encode())
            await pub_nc.publish("other", b"no")
            await pub_nc.flush()
            for i in range(5):
                m = await next_msg(sub)
                assert m.subject == f"greet.n{i}"
                assert m.data == f"hello {i}".encode()
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)
            await sub_nc.close()
            await pub_nc.close()

    run(main())


def test_queue_group_each_message_once():
    async def main():
        with ServerUnderTest() as server:
            got = {0: [], 1: [], 2: []}
            members = []
            for i in range(3):
                nc = await connect(server)

                async def cb(msg, i=i):
                    got[i].append(int(msg.data))

                await nc.subscribe("jobs", queue="workers", cb=cb)
                await nc.flush()
                members.append(nc)
            watcher = await connect(server)
            everything = await watcher.subscribe("jobs")
            await watcher.flush()
            pub = await connect(server)
            for n in range(300):
                await pub.publish("jobs", str(n).encode())
            await pub.flush()
            for n in range(300):
                assert int((await next_msg(everything)).data) == n
            deadline = time.monotonic() + STEP
            while sum(len(v) for v in got.values()) < 300 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # would reveal duplicates arriving late
            all_got = sorted(n for v in got.values() for n in v)
            assert all_got == list(range(300)), "each message exactly once across the group"
            assert all(got[i] for i in range(3)), f"every member gets some: {got}"
            for nc in members + [watcher, pub]:
                await nc.close()

    run(main())


def test_request_reply():
    async def main():
        with ServerUnderTest() as server:
            responder = await connect(server)

            async def echo(msg):
                await responder.publish(msg.reply, b"echo:" + msg.data)

            await responder.subscribe("svc.echo", cb=echo)
            await responder.flush()
            requester = await connect(server)
            for i in range(10):
                resp = await requester.request("svc.echo", f"q{i}".encode(), timeout=STEP)
                assert resp.data == f"echo:q{i}".encode()
            await responder.close()
            await requester.close()

    run(main())


def test_headers():
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server)
            sub = await nc.subscribe("hdr")
            await nc.flush()
            await nc.publish("hdr", b"21.5", headers={"Nats-Msg-Id": "abc-1", "Unit": "C"})
            m = await next_msg(sub)
            assert m.data == b"21.5"
            assert m.headers == {"Nats-Msg-Id": "abc-1", "Unit": "C"}
            await nc.close()

    run(main())


def test_headers_stripped_for_client_without_headers():
    with ServerUnderTest() as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=STEP)
        buf = b""
        raw.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\n'
                    b"SUB hdr 9\r\nPING\r\n")
        while b"PONG\r\n" not in buf:
            buf += raw.recv(4096)

        async def publish():
            nc = await connect(server)
            await nc.publish("hdr", b"hello", headers={"A": "b"})
            await nc.flush()
            await nc.close()

        run(publish())
        deadline = time.monotonic() + STEP
        while b"hello\r\n" not in buf and time.monotonic() < deadline:
            buf += raw.recv(4096)
        raw.close()
        assert b"MSG hdr 9 5\r\nhello\r\n" in buf, buf


def test_no_responders():
    async def main():
        with ServerUnderTest() as server:
            nc = await connect(server)
            started = time.monotonic()
            with pytest.raises(NoRespondersError):
                await nc.request("nobody.home", b"anyone?", timeout=10)
            assert time.monotonic() - started < 2, "the 503 must come at once"
            await nc.close()

    run(main())


def test_auth_user_password():
    async def main():
        with ServerUnderTest(user="derek", password="s3cr3t") as server:
            nc = await connect(server, user="derek", password="s3cr3t")
            sub = await nc.subscribe("a")
            await nc.publish("a", b"x")
            assert (await next_msg(sub)).data == b"x"
            await nc.close()
            for kw in ({"user": "derek", "password": "wrong"}, {}):
                with pytest.raises(Exception) as err:
                    await connect(server, **kw)
                assert "authorization violation" in str(err.value).lower(), err.value

    run(main())


def test_auth_token_failure():
    async def main():
        with ServerUnderTest(token="t0ken") as server:
            nc = await connect(server, token="t0ken")
            await nc.close()
            with pytest.raises(Exception) as err:
                await connect(server, token="other")
            assert "authorization violation" in str(err.value).lower(), err.value

    run(main())

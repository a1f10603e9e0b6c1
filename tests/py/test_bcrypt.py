"""nats-py logging in with bcrypt-hashed passwords and tokens, against the server under test
(TWIG_TEST_TARGET=twig|nats-server), the same nats-server-format config for both.

Run: python3 -m pytest tests/py/test_bcrypt.py
"""

import asyncio

import nats
import pytest

from harness import ServerUnderTest

STEP = 5.0

# Fixed hashes, so the suite needs no bcrypt module: a published `$2a$` vector (openwall's
# crypt_blowfish tests, password "U*U") and a `$2b$` one made with glibc's crypt(3)
# (password "nats-py-pass", cost 6).
HASH_2A = ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
HASH_2B = ("nats-py-pass", "$2b$06$MZeTeEJMJ2BQxZhChY4y8ut1Sa28V9kehePHlejqRtmC3ksr4866e")

USERS = f"""authorization {{
  users: [
    {{ user: vector, password: "{HASH_2A[1]}" }}
    {{ user: py, password: "{HASH_2B[1]}" }}
  ]
}}
"""

TOKEN = f"""authorization {{
  token: "{HASH_2B[1]}"
}}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def connect(server, **kw):
    return await nats.connect(server.url, allow_reconnect=False, connect_timeout=STEP, **kw)


async def round_trip(nc):
    sub = await nc.subscribe("bcrypt.py")
    await nc.publish("bcrypt.py", b"x")
    assert (await sub.next_msg(timeout=STEP)).data == b"x"


def test_bcrypt_users():
    async def main():
        with ServerUnderTest(conf=USERS) as server:
            for user, (password, _) in (("vector", HASH_2A), ("py", HASH_2B)):
                nc = await connect(server, user=user, password=password)
                await round_trip(nc)
                await nc.close()
            for kw in ({"user": "py", "password": "nats-py-pasS"},
                       {"user": "py", "password": HASH_2B[1]},
                       {"user": "vector", "password": "U*V"}):
                with pytest.raises(Exception) as err:
                    await connect(server, **kw)
                assert "authorization violation" in str(err.value).lower(), err.value

    run(main())


def test_bcrypt_token():
    async def main():
        with ServerUnderTest(conf=TOKEN) as server:
            nc = await connect(server, token=HASH_2B[0])
            await round_trip(nc)
            await nc.close()
            with pytest.raises(Exception) as err:
                await connect(server, token="other")
            assert "authorization violation" in str(err.value).lower(), err.value

    run(main())

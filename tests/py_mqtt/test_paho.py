"""paho-mqtt (the Eclipse Python client, MQTT 3.1.1 and 5) against twig's MQTT listener, and the
same MQTT-only cases against mosquitto 2.0, so they check MQTT behaviour, not twig's idea of it.

Run: PYTHONPATH=.tools/pip python3 -m pytest -q tests/py_mqtt  (needs paho-mqtt, nats-py,
pytest and mosquitto; tests/run installs them). Each test starts its own broker.
"""

import asyncio
import queue
import socket
import struct
import threading
import time

import nats
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

import brokers

STEP = 5.0
BROKERS = ["twig", "mosquitto"]
VERSIONS = {"v311": mqtt.MQTTv311, "v5": mqtt.MQTTv5}


@pytest.fixture(params=BROKERS)
def broker(request):
    b = brokers.start(request.param)
    yield b
    b.close()


@pytest.fixture
def twig():
    b = brokers.Twig()
    yield b
    b.close()


class Dev:
    """A paho client with its network loop in a thread; received messages in a queue."""

    def __init__(self, port, cid, version=mqtt.MQTTv311, clean=True, expiry=None, will=None):
        self.v5 = version == mqtt.MQTTv5
        kw = {} if self.v5 else {"clean_session": clean}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=version, **kw)
        self.msgs = queue.Queue()
        self.acks = queue.Queue()
        self.connected = threading.Event()
        self.code = None
        self.session_present = None
        self.c.on_message = lambda c, u, m: self.msgs.put(m)
        self.c.on_subscribe = lambda c, u, mid, codes, p: self.acks.put(("sub", mid, codes))

        def on_connect(c, u, flags, rc, props):
            self.code = rc
            self.session_present = flags.session_present
            self.connected.set()

        self.c.on_connect = on_connect
        if will:
            self.c.will_set(*will)
        props = None
        if self.v5 and expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
        args = {"clean_start": clean, "properties": props} if self.v5 else {}
        self.c.connect("127.0.0.1", port, keepalive=30, **args)
        self.c.loop_start()
        assert self.connected.wait(STEP), "no CONNACK"
        assert not self.code.is_failure, f"CONNACK {self.code}"

    def sub(self, topic, qos=0, **options):
        if self.v5:
            opts = SubscribeOptions(qos=qos, **options)
            _, mid = self.c.subscribe(topic, options=opts)
        else:
            _, mid = self.c.subscribe(topic, qos)
        kind, got, codes = self.acks.get(timeout=STEP)
        assert (kind, got) == ("sub", mid)
        return codes

    def pub(self, topic, payload, qos=0, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(STEP)
        assert info.is_published()

    def next(self, timeout=STEP):
        return self.msgs.get(timeout=timeout)

    def quiet(self, timeout=0.3):
        with pytest.raises(queue.Empty):
            m = self.msgs.get(timeout=timeout)
            pytest.fail(f"unexpected message {m.topic} {m.payload!r}")

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize("version", VERSIONS)
def test_qos_0_1_2_at_the_lower_of_publish_and_subscription(broker, version):
    v = VERSIONS[version]
    sub = Dev(broker.mqtt_port, f"sub-{version}", v)
    sub.sub("t/#", 2)
    sub.sub("low/+", 0)
    pub = Dev(broker.mqtt_port, f"pub-{version}", v)
    for q in range(3):
        pub.pub(f"t/{q}", f"m{q}", qos=q)
    pub.pub("low/x", "capped", qos=2)
    got = sorted((m.topic, m.qos, m.payload) for m in (sub.next() for _ in range(4)))
    assert got == [("low/x", 0, b"capped"), ("t/0", 0, b"m0"), ("t/1", 1, b"m1"),
                   ("t/2", 2, b"m2")], broker.name
    sub.quiet()
    sub.close()
    pub.close()


def test_v5_subscription_options(broker):
    p = broker.mqtt_port
    d = Dev(p, "opts", mqtt.MQTTv5)
    d.pub("ret/a", "kept", qos=1, retain=True)
    # No Local: a device does not get its own messages on that subscription.
    d.sub("nl/#", 1, noLocal=True)
    d.pub("nl/x", "own", qos=1)
    other = Dev(p, "opts-other", mqtt.MQTTv5)
    other.pub("nl/x", "theirs", qos=1)
    assert d.next().payload == b"theirs", broker.name
    # Retain Handling 2: no retained messages on subscribe.
    d.sub("ret/#", 1, retainHandling=2)
    d.quiet()
    # Retain As Published: a live retained publish keeps its RETAIN flag.
    d.sub("rap/#", 1, retainAsPublished=True)
    other.pub("rap/x", "r", qos=1, retain=True)
    m = d.next()
    assert (m.topic, m.retain) == ("rap/x", True), broker.name
    # Without it the flag is cleared on live messages.
    fresh = Dev(p, "opts-fresh", mqtt.MQTTv5)
    fresh.sub("rap2/#", 1)
    other.pub("rap2/x", "r", qos=1, retain=True)
    assert fresh.next().retain is False, broker.name
    for x in (d, other, fresh):
        x.close()


def test_v5_properties_reach_the_subscriber(broker):
    p = broker.mqtt_port
    sub = Dev(p, "props-sub", mqtt.MQTTv5)
    sub.sub("props/#", 1)
    pub = Dev(p, "props-pub", mqtt.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("unit", "C"), ("site", "north")]
    props.ContentType = "text/plain"
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 60
    props.ResponseTopic = "props/reply"
    props.CorrelationData = b"\x01\x02"
    pub.pub("props/x", "21.5", qos=1, props=props)
    m = sub.next()
    got = m.properties
    assert got.UserProperty == [("unit", "C"), ("site", "north")], broker.name
    assert got.ContentType == "text/plain"
    assert got.PayloadFormatIndicator == 1
    assert 55 <= got.MessageExpiryInterval <= 60
    assert got.ResponseTopic == "props/reply"
    assert got.CorrelationData == b"\x01\x02"
    sub.close()
    pub.close()


def test_v5_shared_subscription_delivers_each_message_once(broker):
    p = broker.mqtt_port
    a = Dev(p, "share-a", mqtt.MQTTv5)
    b = Dev(p, "share-b", mqtt.MQTTv5)
    a.sub("$share/workers/jobs/#", 1)
    b.sub("$share/workers/jobs/#", 1)
    pub = Dev(p, "share-pub", mqtt.MQTTv5)
    n = 40
    for i in range(n):
        pub.pub(f"jobs/{i}", str(i), qos=1)
    seen = []
    end = time.monotonic() + STEP
    while len(seen) < n and time.monotonic() < end:
        for d in (a, b):
            try:
                seen.append((d, int(d.next(timeout=0.05).payload)))
            except queue.Empty:
                pass
    assert sorted(i for _, i in seen) == list(range(n)), broker.name
    assert {d for d, _ in seen} == {a, b}, "both members get work"
    for x in (a, b, pub):
        x.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_persistent_session_keeps_messages_while_offline(broker, version):
    v = VERSIONS[version]
    p = broker.mqtt_port
    d = Dev(p, f"keeper-{version}", v, clean=False, expiry=300)
    d.sub("keep/#", 1)
    d.close()
    pub = Dev(p, f"keep-pub-{version}", v)
    for i in range(3):
        pub.pub(f"keep/{i}", f"k{i}", qos=1)
    back = Dev(p, f"keeper-{version}", v, clean=False, expiry=300)
    assert back.session_present, broker.name
    assert [back.next().payload for _ in range(3)] == [b"k0", b"k1", b"k2"], broker.name
    back.close()
    pub.close()


def raw_connect_with_will(port, cid, topic, payload):
    """A 3.1.1 CONNECT with a will, over a bare socket (so the test can drop it abruptly)."""
    def s(b):
        return struct.pack("!H", len(b)) + b
    var = s(b"MQTT") + bytes([4, 0b0000_0110]) + struct.pack("!H", 30)  # will, clean session
    body = var + s(cid.encode()) + s(topic.encode()) + s(payload)
    sock = socket.create_connection(("127.0.0.1", port), timeout=STEP)
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4)[:1] == b"\x20"
    return sock


def test_the_will_is_published_on_abnormal_disconnect_only(broker):
    p = broker.mqtt_port
    watcher = Dev(p, "watcher", mqtt.MQTTv5)
    watcher.sub("will/#", 1)
    sock = raw_connect_with_will(p, "dies", "will/dies", b"gone")
    sock.close()
    m = watcher.next()
    assert (m.topic, m.payload) == ("will/dies", b"gone"), broker.name
    # A normal DISCONNECT discards the will.
    polite = Dev(p, "polite", mqtt.MQTTv311, will=("will/polite", b"never", 1))
    polite.close()
    watcher.quiet(0.5)
    watcher.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_and_nats_py_see_each_other(twig, version):
    v = VERSIONS[version]

    async def main():
        nc = await nats.connect(twig.nats_url, allow_reconnect=False)
        sub = await nc.subscribe("meters.>")
        await nc.flush()
        dev = Dev(twig.mqtt_port, f"meter-{version}", v)
        dev.sub("cmd/#", 1)
        await asyncio.to_thread(dev.pub, "meters/7/kwh", "12.5", 1)
        m = await sub.next_msg(timeout=STEP)
        assert (m.subject, m.data, m.headers.get("Nmqtt-Pub")) == ("meters.7.kwh", b"12.5", "1")
        await nc.publish("cmd.7.reset", b"now")
        await nc.flush()
        got = await asyncio.to_thread(dev.next)
        # NATS -> MQTT at the subscription's QoS 1 (nats-server delivers QoS 0 only).
        assert (got.topic, got.payload, got.qos) == ("cmd/7/reset", b"now", 1)
        dev.close()
        await nc.close()

    run(main())


def test_a_v5_device_calls_a_nats_service(twig):
    async def main():
        nc = await nats.connect(twig.nats_url, allow_reconnect=False)

        async def serve(msg):
            await msg.respond(b"pong:" + msg.data)

        await nc.subscribe("svc.ping", cb=serve)
        await nc.flush()
        dev = Dev(twig.mqtt_port, "caller", mqtt.MQTTv5)
        dev.sub("caller/answers", 1)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "caller/answers"
        props.CorrelationData = b"req-1"
        await asyncio.to_thread(dev.pub, "svc/ping", "x", 1, False, props)
        m = await asyncio.to_thread(dev.next)
        assert (m.topic, m.payload) == ("caller/answers", b"pong:x")
        assert m.properties.CorrelationData == b"req-1"
        dev.close()
        await nc.close()

    run(main())

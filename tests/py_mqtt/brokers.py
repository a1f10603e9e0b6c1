"""The MQTT brokers under test for the paho-mqtt suite: twig with `[mqtt_listener]`, and Debian's
mosquitto 2.0 with configs/mosquitto.conf, each on free loopback ports, killed when done.

Binaries: twig as tests/py/harness.py finds it (TWIG_BIN, else target/release|debug/twig);
mosquitto from TWIG_MOSQUITTO, else /usr/sbin/mosquitto. Missing is an error, never a skip.
"""

import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
from harness import binary, WORKSPACE  # noqa: E402

DEADLINE = 10.0


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from freeport import free_port  # noqa: E402


class Twig:
    """twig with an MQTT listener; `top` and `extra` are TOML lines (top level, and in or after
    [mqtt_listener])."""

    name = "twig"

    def __init__(self, top="", extra=""):
        self.dir = tempfile.TemporaryDirectory(prefix="twig-paho-")
        self.mqtt_port = free_port()
        conf = Path(self.dir.name) / "twig.toml"
        conf.write_text(f'port = -1\nstore_dir = "{self.dir.name}"\n{top}\n'
                        f"[mqtt_listener]\nport = {self.mqtt_port}\n{extra}\n")
        self.proc = subprocess.Popen([binary("twig"), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = []
        lines = queue.Queue()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.nats_port = None
        mqtt_line = f"Listening for MQTT clients on mqtt://127.0.0.1:{self.mqtt_port}"
        seen_mqtt = False
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.close()
                raise RuntimeError("twig did not start:\n" + "\n".join(self.log))
            if mqtt_line in line:
                seen_mqtt = True
            marker = "Listening for client connections on 127.0.0.1:"
            if marker in line:
                self.nats_port = int(line.split(marker)[1].split()[0])
            if "Server is ready" in line and seen_mqtt and self.nats_port:
                return

    @property
    def nats_url(self):
        return f"nats://127.0.0.1:{self.nats_port}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


class Mosquitto:
    name = "mosquitto"

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="twig-paho-mosq-")
        self.mqtt_port = free_port()
        d = Path(self.dir.name)
        store = d / "store"
        store.mkdir()
        # Started as root, mosquitto drops to its own user, which must write the store.
        os.chmod(d, 0o755)
        os.chmod(store, 0o777)
        base = (WORKSPACE / "configs" / "mosquitto.conf").read_text()
        conf = d / "mosquitto.conf"
        conf.write_text(f"{base}\nlistener {self.mqtt_port} 127.0.0.1\n"
                        f"persistence_location {store}/\n")
        exe = os.environ.get("TWIG_MOSQUITTO") or "/usr/sbin/mosquitto"
        if not Path(exe).is_file():
            raise RuntimeError("mosquitto not found: apt-get install mosquitto (tests/run does)")
        self.logfile = d / "mosquitto.log"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.logfile, "w"))
        end = time.monotonic() + DEADLINE
        while " running" not in self.logfile.read_text():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.close()
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.01)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


def start(name, **kw):
    return Twig(**kw) if name == "twig" else Mosquitto()

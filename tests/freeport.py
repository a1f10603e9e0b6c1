"""A free loopback TCP port for the Python suites and benchmarks (the Rust harness's
`free_port` does the same).

Picked below the kernel's ephemeral range and checked free on both loopbacks. A port from
bind(:0) is ephemeral: an outgoing connection may take it as its local port before the server
binds it, which a loaded CI run hit ("Address already in use")."""

import random
import socket

_given = set()
_rng = random.SystemRandom()


def _free(family, host, port):
    try:
        with socket.socket(family) as s:
            s.bind((host, port))
        return True
    except OSError as e:
        # No IPv6 on the machine counts as free; a listener on the port does not.
        return family == socket.AF_INET6 and e.errno != 98


def free_port():
    for _ in range(1000):
        port = _rng.randrange(10000, 32000)
        if port in _given:
            continue
        if _free(socket.AF_INET, "127.0.0.1", port) and _free(socket.AF_INET6, "::1", port):
            _given.add(port)
            return port
    raise RuntimeError("no free port in 10000..32000 after 1000 tries")

"""A port for a listener a test must name before the process binds it (Kafka's controller, fixed listeners).

Owns: choosing such ports. Must not: hand out ports of the kernel's ephemeral range: there, any client
connection of a test running at the same time (run.sh runs passes in parallel) can take the port as its
source port between the choice and the bind, and the broker then fails with "Address already in use".
Below that range only another listener can take it, and the choice is random, so two tests rarely meet.
"""
import random
import socket

_LOWEST = 10000
# Ports this process handed out: a closed probe socket does not keep its port, so without this two
# listeners of one broker could be given the same number.
_given = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A port of host that nothing is bound to now, outside the ephemeral range when there is room below it."""
    high = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(_LOWEST, high) if high > _LOWEST + 1000 else 0
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            port = s.getsockname()[1]
            _given.add(port)
            return port
    raise OSError("no free port on %s below %d" % (host, high))

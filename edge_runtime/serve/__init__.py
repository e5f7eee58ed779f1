"""`edge-run --serve`: the live pipeline in a browser and to other programs, over HTTP.

Needs the `serve` extra (aiohttp, prometheus-client); `app` imports them, so nothing here is
imported unless a run serves.
"""


class ServeError(RuntimeError):
    """The server cannot start (the port is taken, the extra is not installed): one line."""


def parse_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` (an IPv6 host in brackets) as (host, port); the host defaults to 127.0.0.1.

    Raises:
        ValueError: naming what was expected.
    """
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with a port from 1 to 65535, such as 8080 or 0.0.0.0:8080")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything

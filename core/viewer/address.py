"""Where the browser viewer listens: loopback checks, the page's URL, and a port checked before the
server starts (a clear message instead of a socket traceback)."""

from __future__ import annotations

import errno
import ipaddress
import socket

from ..errors import SplatgenError


class ViewerError(SplatgenError, RuntimeError):
    """The viewer cannot start (port in use, address not available, bad option)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as it goes into the page's URL (a wildcard address as this machine's loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_port(host: str, port: int) -> None:
    """Raise :class:`ViewerError` with a clear message when ``host:port`` cannot be listened on."""
    if not 0 <= int(port) <= 65535:
        raise ViewerError(f"port {port} is out of range (0-65535; 0 picks a free one)")
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ViewerError(f"cannot listen on {host}: unknown host ({exc.strerror})") from None
    failures = []
    for family, _type, _proto, _name, addr in infos:  # e.g. "localhost": ::1 and 127.0.0.1
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself will
            try:
                s.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ViewerError(f"port {port} on {host} is already in use; pick another with --port "
                                      f"(--port 0 picks a free one)") from None
                failures.append(exc)
    if len(failures) == len(infos):
        exc = failures[0]
        raise ViewerError(f"cannot listen on {host}:{port} ({exc.strerror or exc})")

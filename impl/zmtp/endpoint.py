"""Endpoints: `tcp://host:port` and `ipc:///path` (libzmq's syntax)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "tcp" or "ipc"
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        scheme, sep, rest = text.partition("://")
        if not sep:
            raise ValueError(f"endpoint {text!r} has no transport; expected tcp://host:port or ipc:///path")
        if scheme == "ipc":
            if not rest:
                raise ValueError(f"endpoint {text!r} names no path")
            return cls("ipc", path=rest)
        if scheme != "tcp":
            raise ValueError(f"endpoint {text!r}: transport {scheme!r} is not supported (tcp, ipc)")
        if rest.startswith("["):
            host, bracket, port_text = rest[1:].partition("]")
            if not bracket or not port_text.startswith(":"):
                raise ValueError(f"endpoint {text!r}: expected tcp://[v6-address]:port")
            port_text = port_text[1:]
        else:
            host, colon, port_text = rest.rpartition(":")
            if not colon:
                raise ValueError(f"endpoint {text!r}: expected tcp://host:port")
        if port_text == "*":
            port = 0
        else:
            try:
                port = int(port_text)
            except ValueError:
                raise ValueError(f"endpoint {text!r}: port {port_text!r} is not a number") from None
            if not 0 <= port <= 65535:
                raise ValueError(f"endpoint {text!r}: port {port} is outside 0-65535")
        if host in ("*", ""):
            host = "0.0.0.0"
        return cls("tcp", host=host, port=port)

    def __str__(self) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

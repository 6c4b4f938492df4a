"""Endpoints: `tcp://host:port[/resource]` and `ipc:///path` (libzmq's syntax, and RFC 37's resources)."""

from __future__ import annotations

from dataclasses import dataclass

RESOURCE_CLAUSE = "37/ZMTP#new-the-resource-property"
# ALPHA is ABNF's: ASCII letters only, which is why str.isalnum (true for any Unicode letter) is not used.
RESOURCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789$-_@.&+")
RESOURCE_GRAMMAR = 'resource = resource-name *("/" resource-name), resource-name = 1*(ALPHA | DIGIT | "$-_@.&+")'


def resource_problem(resource: str) -> str | None:
    """What keeps `resource` from matching RFC 37's grammar, or None if it matches."""
    offset = 0
    for index, name in enumerate(resource.split("/")):
        if not name:
            where = "first" if index == 0 else "last" if offset == len(resource) else f"number {index + 1}"
            return f"resource {resource!r}: resource-name {where} (at offset {offset}) is empty; expected {RESOURCE_GRAMMAR}"
        for i, ch in enumerate(name):
            if ch not in RESOURCE_CHARS:
                return (
                    f"resource {resource!r}: character {ch!r} at offset {offset + i} is not a resource-char"
                    f" (an ASCII letter, a digit or one of $-_@.&+); expected {RESOURCE_GRAMMAR}"
                )
        offset += len(name) + 1
    return None


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "tcp" or "ipc"
    host: str = ""
    port: int = 0
    path: str = ""
    resource: str = ""  # tcp only: RFC 37's Resource, the service asked for (connect) or offered (bind)

    def __post_init__(self) -> None:
        if self.resource:
            if self.transport != "tcp":
                raise ValueError(f"only tcp endpoints name a resource, not {self.transport}")
            problem = resource_problem(self.resource)
            if problem is not None:
                raise ValueError(problem)

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
        # A host holds no "/" (not even a bracketed v6 address), so the first one starts the resource.
        rest, slash, resource = rest.partition("/")
        if slash:
            if not resource:
                raise ValueError(
                    f"endpoint {text!r}: a resource must follow the '/'; expected {RESOURCE_GRAMMAR} [{RESOURCE_CLAUSE}]"
                )
            problem = resource_problem(resource)
            if problem is not None:
                raise ValueError(f"endpoint {text!r}: {problem} [{RESOURCE_CLAUSE}]")
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
        return cls("tcp", host=host, port=port, resource=resource)

    def __str__(self) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        resource = f"/{self.resource}" if self.resource else ""
        return f"tcp://{host}:{self.port}{resource}"

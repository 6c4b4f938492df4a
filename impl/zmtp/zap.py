"""ZAP (RFC 27): how a server asks an application whether a client may connect.

The handler is an object with `async def authenticate(self, request) ->
ZapResponse`, installed on the context (`Context.set_zap_handler`). The
sans-I/O core only says that it needs an answer (`AuthenticationRequested`)
and waits for one (`Connection.authenticate`); the engine calls the handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

SUCCESS, TEMPORARY, FAILURE, ERROR = 200, 300, 400, 500


@dataclass(frozen=True)
class ZapRequest:
    domain: str
    address: str  # the client's IP address ("" over ipc)
    identity: bytes
    mechanism: str  # NULL, PLAIN or CURVE
    credentials: tuple[bytes, ...] = ()
    request_id: bytes = b"1"
    version: str = "1.0"

    @property
    def username(self) -> str | None:
        return self.credentials[0].decode("utf-8", "replace") if self.mechanism == "PLAIN" else None

    @property
    def password(self) -> str | None:
        return self.credentials[1].decode("utf-8", "replace") if self.mechanism == "PLAIN" else None

    @property
    def client_key(self) -> bytes | None:
        """The client's long-term public key (CURVE), 32 bytes."""
        return self.credentials[0] if self.mechanism == "CURVE" else None

    def __repr__(self) -> str:  # never print a password
        who = f" user={self.username!r}" if self.mechanism == "PLAIN" else ""
        return f"ZapRequest(domain={self.domain!r}, address={self.address!r}, mechanism={self.mechanism}{who})"


@dataclass(frozen=True)
class ZapResponse:
    request_id: bytes
    status_code: int
    status_text: str = ""
    user_id: str = ""
    metadata: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status_code == SUCCESS

    @classmethod
    def success(cls, request_id: bytes, user_id: str = "", metadata: dict[str, bytes] | None = None) -> ZapResponse:
        return cls(request_id, SUCCESS, "OK", user_id, dict(metadata or {}))

    @classmethod
    def failure(cls, request_id: bytes, reason: str = "", status_code: int = FAILURE) -> ZapResponse:
        if status_code not in (TEMPORARY, FAILURE, ERROR):
            raise ValueError(f"a failure is status 300, 400 or 500, not {status_code}")
        return cls(request_id, status_code, reason)


class ZapHandler(Protocol):
    async def authenticate(self, request: ZapRequest) -> ZapResponse: ...

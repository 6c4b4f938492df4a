"""CURVE transient keys written to a key log file, for decrypting captures (like TLS's SSLKEYLOGFILE).

When the environment variable ZMTP_CURVE_KEYLOG names a file, every
transient key pair that the CURVE mechanism makes is appended to it as

    ZMTP_CURVE_TRANSIENT <public key, hex> <secret key, hex>

With it, and a capture, `zmtp-conformance dissect --keylog FILE` opens every
box of those connections. Transient keys live for one connection; long-term
keys are never written. Anyone holding the file can read the traffic it
covers: set it for test runs, never in production.
"""

from __future__ import annotations

import os

ENV = "ZMTP_CURVE_KEYLOG"
LABEL = "ZMTP_CURVE_TRANSIENT"


class KeyLog:
    """Appends transient key pairs to one file; CurveMechanism calls it with each pair it makes.

    It lives in the I/O layer: the socket makes one (`from_environment`) and
    passes it to the mechanism, which itself never opens a file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __call__(self, public: bytes, secret: bytes) -> None:
        line = f"{LABEL} {public.hex()} {secret.hex()}\n".encode()
        # One write per line with O_APPEND: lines from several processes never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def from_environment() -> KeyLog | None:
    """The key log $ZMTP_CURVE_KEYLOG names, or None when it is unset or empty."""
    path = os.environ.get(ENV)
    return KeyLog(path) if path else None

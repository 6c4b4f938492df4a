"""CURVE keys: generation with PyNaCl, Z85 and hex forms, czmq certificate files.

A czmq certificate (zcert) is two ZPL text files: NAME with the public key
and NAME_secret with both keys, each in Z85:

    metadata
    curve
        public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
        secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
"""

from __future__ import annotations

import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey

from . import z85

KEY_SIZE = 32


def parse_key(value: bytes | str, what: str = "key") -> bytes:
    """A 32-octet key from raw bytes, 40 Z85 characters or 64 hex digits."""
    if isinstance(value, bytes) and len(value) == KEY_SIZE:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if len(text) == 40:
        try:
            return z85.decode(text)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    if len(text) == 64:
        try:
            return binascii.unhexlify(text)
        except binascii.Error:
            raise ValueError(f"{what}: 64 characters but not hex digits") from None
    raise ValueError(
        f"{what} must be 32 bytes, 40 Z85 characters or 64 hex digits; got {len(value)} "
        f"{'bytes' if isinstance(value, bytes) else 'characters'}"
    )


@dataclass(frozen=True)
class CurveKeyPair:
    public: bytes
    secret: bytes | None = None  # None for a public-only certificate

    def __post_init__(self) -> None:
        if len(self.public) != KEY_SIZE or (self.secret is not None and len(self.secret) != KEY_SIZE):
            raise ValueError("CURVE keys are 32 bytes each")
        if self.secret is not None and bytes(PrivateKey(self.secret).public_key) != self.public:
            raise ValueError("the public key does not belong to the secret key")

    def __repr__(self) -> str:  # never show the secret
        return f"CurveKeyPair(public={self.public_z85!r}{', secret=...' if self.secret else ''})"

    @classmethod
    def generate(cls) -> CurveKeyPair:
        sk = PrivateKey.generate()
        return cls(bytes(sk.public_key), bytes(sk))

    @classmethod
    def from_secret(cls, secret: bytes | str) -> CurveKeyPair:
        sk = parse_key(secret, "secret key")
        return cls(bytes(PrivateKey(sk).public_key), sk)

    @classmethod
    def from_public(cls, public: bytes | str) -> CurveKeyPair:
        return cls(parse_key(public, "public key"))

    @property
    def public_z85(self) -> str:
        return z85.encode(self.public)

    @property
    def secret_z85(self) -> str:
        if self.secret is None:
            raise ValueError("this key pair has no secret key")
        return z85.encode(self.secret)

    @property
    def public_hex(self) -> str:
        return self.public.hex()

    @property
    def secret_hex(self) -> str:
        if self.secret is None:
            raise ValueError("this key pair has no secret key")
        return self.secret.hex()

    # -- czmq certificates ---------------------------------------------------

    def save_zcert(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        """Write PATH (public) and PATH_secret (secret, mode 0600), as czmq's zcert_save does."""
        path = Path(path)
        meta = "".join(f'    {k} = "{v}"\n' for k, v in (metadata or {}).items())
        header = "#   ZeroMQ CURVE {} Certificate\n#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange. Store public certificates in your home\n#   directory, in the .curve subdirectory.\n\n"
        path.write_text(
            header.format("Public") + "metadata\n" + meta + "curve\n" + f'    public-key = "{self.public_z85}"\n'
        )
        if self.secret is not None:
            secret_path = Path(f"{path}_secret")
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(
                    header.format("**Secret**")
                    + "metadata\n"
                    + meta
                    + "curve\n"
                    + f'    public-key = "{self.public_z85}"\n'
                    + f'    secret-key = "{self.secret_z85}"\n'
                )

    @classmethod
    def load_zcert(cls, path: str | Path) -> CurveKeyPair:
        """Read a czmq certificate: PATH_secret when it exists (both keys), else PATH (public only)."""
        path = Path(path)
        secret_path = Path(f"{path}_secret")
        source = secret_path if secret_path.exists() else path
        try:
            text = source.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read certificate {source}: {exc}") from None
        values = dict(re.findall(r'^\s*([a-z-]+)\s*=\s*"([^"]*)"', text, re.M))
        if "public-key" not in values:
            raise ValueError(f"{source}: no public-key in the curve section")
        public = parse_key(values["public-key"], f"{source}: public-key")
        if "secret-key" in values:
            try:
                return cls(public, parse_key(values["secret-key"], f"{source}: secret-key"))
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
        return cls(public)

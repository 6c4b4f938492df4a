"""CURVE key logs: how each peer's transient keys reach a file, and reading that file.

A capture of CURVE traffic is opaque without the connections' transient
secret keys. Peers write them to the file named by ZMTP_CURVE_KEYLOG, one
line per key pair (`ZMTP_CURVE_TRANSIENT <public hex> <secret hex>`):
zmtp by itself (zmtp.keylog), libzmq and czmq through `sodium_keylog.c`,
preloaded into their agents, which wraps libsodium's crypto_box_keypair.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ...peers import BUILD_DIR

ENV = "ZMTP_CURVE_KEYLOG"
LABEL = "ZMTP_CURVE_TRANSIENT"
SHIM_SOURCE = Path(__file__).resolve().parent / "sodium_keylog.c"
SHIM = BUILD_DIR / "zmtp_keylog_preload.so"  # (a name without "libsodium": the shim looks for that)


class KeylogError(Exception):
    """A key log that cannot be read; the message names the file and line."""


def read(path: str | Path) -> dict[bytes, bytes]:
    """Transient secret keys by public key."""
    keys: dict[bytes, bytes] = {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise KeylogError(f"cannot read the key log {path}: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 3 or parts[0] != LABEL:
            raise KeylogError(f"{path}:{n}: expected '{LABEL} <public hex> <secret hex>', got {line[:80]!r}")
        try:
            public, secret = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        except ValueError:
            raise KeylogError(f"{path}:{n}: keys must be hex") from None
        if len(public) != 32 or len(secret) != 32:
            raise KeylogError(f"{path}:{n}: keys must be 32 octets (64 hex digits)")
        keys[public] = secret
    return keys


def build_shim() -> Path | str:
    """The preload library, compiled on first use; or why it cannot be."""
    if SHIM.exists() and SHIM.stat().st_mtime >= SHIM_SOURCE.stat().st_mtime:
        return SHIM
    cc = shutil.which("cc")
    if cc is None:
        return "no C compiler (cc) to build the key log shim"
    SHIM.parent.mkdir(parents=True, exist_ok=True)
    tmp = SHIM.with_name(f"{SHIM.name}.{os.getpid()}.tmp")
    proc = subprocess.run(
        [cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return f"building the key log shim failed: {proc.stderr.strip()[-300:]}"
    tmp.replace(SHIM)
    return SHIM


def agent_env(how: str, keylog: Path) -> dict[str, str]:
    """Environment for an agent whose peer exports keys `how` ("zmtp" or "sodium")."""
    env = {ENV: str(keylog)}
    if how == "sodium":
        shim = build_shim()
        if isinstance(shim, str):
            return {}  # no key log for this peer; its CURVE captures stay opaque
        env["LD_PRELOAD"] = " ".join(p for p in (str(shim), os.environ.get("LD_PRELOAD", "")) if p)
    return env

"""The test credentials every PLAIN and CURVE cell uses (libzmq's documented test keys)."""

from __future__ import annotations

from typing import Any

from .scenario import Role

# Test credentials for cells run under PLAIN and CURVE (libzmq's documented test keys).
PLAIN_USER, PLAIN_PASSWORD = "admin", "secret"
CURVE_SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
CURVE_SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CURVE_CLIENT_PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CURVE_CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
# Servers name a ZAP domain, as deployments that authenticate do: some implementations
# (Monocoque) consult ZAP only when one is set, and RFC 27 passes it to the handler.
ZAP_DOMAIN = "global"
MECHANISM_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "NULL": {"server": {}, "client": {}},
    "PLAIN": {
        "server": {"plain_server": True, "zap_domain": ZAP_DOMAIN},
        "client": {"plain_username": PLAIN_USER, "plain_password": PLAIN_PASSWORD},
    },
    "CURVE": {
        "server": {"curve_server": True, "curve_secretkey": CURVE_SERVER_SECRET, "zap_domain": ZAP_DOMAIN},
        "client": {
            "curve_secretkey": CURVE_CLIENT_SECRET,
            "curve_publickey": CURVE_CLIENT_PUBLIC,
            "curve_serverkey": CURVE_SERVER_PUBLIC,
        },
    },
}


Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85_decode(text: str) -> bytes:
    """RFC 32: five characters to four octets, big-endian base 85."""
    if len(text) % 5:
        raise ValueError(f"Z85 text of {len(text)} characters is not a multiple of 5")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for ch in text[i : i + 5]:
            value = value * 85 + Z85.index(ch)
        out += value.to_bytes(4, "big")
    return bytes(out)


def client_mechanism(mechanism: str, curve_secretkey: str | None = None) -> Any:
    """The raw peer's client side of a mechanism with the test credentials (None for NULL);
    `curve_secretkey` (Z85) replaces the test client key under CURVE (a key ZAP does not allow).

    The raw peer's own codec (rawcodec), not impl's: the judge shares no code with the judged.
    """
    from functools import partial

    from .rawcodec import Curve, Plain

    if mechanism == "PLAIN":
        return partial(Plain, username=PLAIN_USER.encode(), password=PLAIN_PASSWORD.encode())
    if mechanism == "CURVE":
        secret = z85_decode(curve_secretkey or CURVE_CLIENT_SECRET)
        return partial(Curve, secret=secret, server_public=z85_decode(CURVE_SERVER_PUBLIC))
    return None


def server_mechanism(mechanism: str) -> Any:
    """The raw peer's server side of a mechanism with the test server key (None for NULL).

    The raw peer's own codec (rawcodec), so a raw server role checks what the client sends.
    """
    from functools import partial

    from .rawcodec import CurveServer, PlainServer

    if mechanism == "CURVE":
        return partial(CurveServer, secret=z85_decode(CURVE_SERVER_SECRET))
    if mechanism == "PLAIN":
        return PlainServer
    return None


def role_options(role: Role, mechanism: str) -> dict[str, Any]:
    """The scenario's options over the mechanism's defaults for the role's side."""
    return {**MECHANISM_OPTIONS[mechanism][role.side], **role.options}

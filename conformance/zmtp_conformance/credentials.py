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
MECHANISM_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "NULL": {"server": {}, "client": {}},
    "PLAIN": {
        "server": {"plain_server": True},
        "client": {"plain_username": PLAIN_USER, "plain_password": PLAIN_PASSWORD},
    },
    "CURVE": {
        "server": {"curve_server": True, "curve_secretkey": CURVE_SERVER_SECRET},
        "client": {
            "curve_secretkey": CURVE_CLIENT_SECRET,
            "curve_publickey": CURVE_CLIENT_PUBLIC,
            "curve_serverkey": CURVE_SERVER_PUBLIC,
        },
    },
}


def client_mechanism(mechanism: str) -> Any:
    """The sans-I/O mechanism a raw client uses with the test credentials (None for NULL)."""
    from functools import partial

    from zmtp.keys import parse_key
    from zmtp.mechanisms.curve import CurveMechanism
    from zmtp.mechanisms.plain import PlainMechanism

    if mechanism == "PLAIN":
        return partial(PlainMechanism, username=PLAIN_USER.encode(), password=PLAIN_PASSWORD.encode())
    if mechanism == "CURVE":
        return partial(
            CurveMechanism, secret_key=parse_key(CURVE_CLIENT_SECRET), server_key=parse_key(CURVE_SERVER_PUBLIC)
        )
    return None


def role_options(role: Role, mechanism: str) -> dict[str, Any]:
    """The scenario's options over the mechanism's defaults for the role's side."""
    return {**MECHANISM_OPTIONS[mechanism][role.side], **role.options}

"""CURVE transient keys go to $ZMTP_CURVE_KEYLOG only when it is set, and long-term keys never."""

from __future__ import annotations

from nacl.public import PrivateKey

from zmtp import keylog
from zmtp.keys import CurveKeyPair
from zmtp.mechanisms.curve import CurveMechanism


def make(server: CurveKeyPair) -> CurveMechanism:
    return CurveMechanism(
        secret_key=CurveKeyPair.generate().secret,
        server_key=server.public,
        as_server=False,
        local_metadata=[],
        check_peer=lambda md: None,
    )


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(keylog.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    make(CurveKeyPair.generate())
    assert list(tmp_path.iterdir()) == []


def test_each_transient_pair_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "keys.txt"
    monkeypatch.setenv(keylog.ENV, str(path))
    server = CurveKeyPair.generate()
    mechs = [make(server) for _ in range(3)]
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    for mech, line in zip(mechs, lines, strict=True):
        label, public, secret = line.split()
        assert label == "ZMTP_CURVE_TRANSIENT"
        assert bytes.fromhex(public) == bytes(mech.transient.public_key)
        assert bytes(PrivateKey(bytes.fromhex(secret)).public_key) == bytes.fromhex(public)
        assert bytes.fromhex(secret) != mech.long_sk.encode()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # a key log is a secret

"""CURVE transient keys go to a key log only when one is passed in (the socket passes
$ZMTP_CURVE_KEYLOG's), and long-term keys never; the core opens no file itself."""

from __future__ import annotations

from nacl.public import PrivateKey

from zmtp import SocketOptions, keylog
from zmtp.keys import CurveKeyPair
from zmtp.mechanisms.curve import CurveMechanism
from zmtp.patterns import Dealer


def make(server: CurveKeyPair, log: keylog.KeyLog | None = None) -> CurveMechanism:
    return CurveMechanism(
        secret_key=CurveKeyPair.generate().secret,
        server_key=server.public,
        as_server=False,
        local_metadata=[],
        check_peer=lambda md: None,
        keylog=log,
    )


def test_the_core_writes_nothing_without_a_key_log_even_with_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(keylog.ENV, str(tmp_path / "keys.txt"))
    monkeypatch.chdir(tmp_path)
    make(CurveKeyPair.generate())
    assert list(tmp_path.iterdir()) == []


def test_each_transient_pair_is_one_line(tmp_path):
    path = tmp_path / "keys.txt"
    server = CurveKeyPair.generate()
    log = keylog.KeyLog(path)
    mechs = [make(server, log) for _ in range(3)]
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    for mech, line in zip(mechs, lines, strict=True):
        label, public, secret = line.split()
        assert label == "ZMTP_CURVE_TRANSIENT"
        assert bytes.fromhex(public) == bytes(mech.transient.public_key)
        assert bytes(PrivateKey(bytes.fromhex(secret)).public_key) == bytes.fromhex(public)
        assert bytes.fromhex(secret) != mech.long_sk.encode()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # a key log is a secret


def test_the_environment_names_the_key_log_only_when_set(tmp_path, monkeypatch):
    monkeypatch.delenv(keylog.ENV, raising=False)
    assert keylog.from_environment() is None
    monkeypatch.setenv(keylog.ENV, "")
    assert keylog.from_environment() is None
    monkeypatch.setenv(keylog.ENV, str(tmp_path / "k.txt"))
    found = keylog.from_environment()
    assert found is not None and found.path == str(tmp_path / "k.txt")


def test_a_curve_socket_hands_the_mechanism_the_environments_key_log(tmp_path, monkeypatch):
    server = CurveKeyPair.generate()
    sock = Dealer(None, SocketOptions(curve_secretkey=CurveKeyPair.generate().secret, curve_serverkey=server.public))
    monkeypatch.delenv(keylog.ENV, raising=False)
    assert sock.mechanism_args(False, "127.0.0.1")["mechanism"].keywords["keylog"] is None
    monkeypatch.setenv(keylog.ENV, str(tmp_path / "k.txt"))
    args = sock.mechanism_args(False, "127.0.0.1")
    args["mechanism"](as_server=False, local_metadata=[], check_peer=lambda md: None)
    assert len((tmp_path / "k.txt").read_text().splitlines()) == 1

"""The ZAP request checker (zap.py) and the expect_zap step: every field it judges, fed wrong."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from scenario_samples import run_one

from zmtp_conformance import zap
from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome

KEY = bytes(range(32))


def body(mechanism: bytes = b"PLAIN", credentials: tuple[bytes, ...] = (b"admin", b"secret"), **fields: bytes):
    """A request from its version frame on, with these fields replaced."""
    values = {
        "version": b"1.0",
        "request_id": b"1",
        "domain": b"global",
        "address": b"127.0.0.1",
        "identity": b"",
        "mechanism": mechanism,
    }
    values.update(fields)
    return [*values.values(), *credentials]


def as_router(frames: list[bytes]) -> list[bytes]:
    return [b"\x00\x80\x00\x00\x01", b"", *frames]


def check(frames, handler=zap.ROUTER, spec=None, over_ip=True):
    if handler == zap.ROUTER:
        frames = as_router(frames)
    return zap.check_requests([frames], handler, spec or {}, {}, over_ip)


@pytest.mark.parametrize("handler", zap.HANDLERS)
@pytest.mark.parametrize(
    "request_body",
    [
        body(),
        body(b"NULL", ()),
        body(b"CURVE", (KEY,)),
        body(address=b"::1"),
        body(address=b"2001:db8::1"),
        body(identity=b"x" * 255),
        body(b"X-OTHER", (b"anything", b"goes", b"")),  # a mechanism RFC 27 does not describe
    ],
)
def test_a_conforming_request_passes(handler, request_body):
    assert check(request_body, handler) == []


def test_the_values_a_scenario_names_are_matched():
    spec = {
        "count": 1,
        "mechanism": "PLAIN",
        "domain": "global",
        "address": "127.0.0.1",
        "identity": "",
        "request_id": {"capture": "rid"},
        "credentials": ["admin", "secret"],
    }
    vars: dict[str, bytes] = {}
    assert zap.check_requests([as_router(body())], zap.ROUTER, spec, vars, True) == []
    assert vars["rid"] == b"1"


# Each wrong request: what is wrong, the field the checker must name, the frame (as reported
# by a ROUTER handler: routing id, delimiter, version is frame 3) and the requirement.
WRONG = [
    ("version 1.1", as_router(body(version=b"1.1")), "version", 3, "27/message-format/4"),
    ("version empty", as_router(body(version=b"")), "version", 3, "27/message-format/4"),
    ("no delimiter", [b"\x00\x80\x00\x00\x01", *body()], "address delimiter", 2, "27/message-format/3"),
    ("a delimiter that is not empty", [b"\x00rid", b"x", *body()], "address delimiter", 2, "27/message-format/3"),
    ("empty domain", as_router(body(domain=b"")), "domain", 5, "27/message-format/6"),
    ("domain not ASCII", as_router(body(domain="dömain".encode())), "domain", 5, "27/message-format/6"),
    ("domain too long", as_router(body(domain=b"d" * 256)), "domain", 5, "27/message-format/6"),
    ("address a host name", as_router(body(address=b"localhost")), "address", 6, "27/message-format/18"),
    ("address empty over TCP", as_router(body(address=b"")), "address", 6, "27/message-format/18"),
    ("address with a port", as_router(body(address=b"127.0.0.1:5555")), "address", 6, "27/message-format/18"),
    ("IPv6 not canonical", as_router(body(address=b"0:0:0:0:0:0:0:1")), "address", 6, "27/message-format/18"),
    ("IPv6 in capitals", as_router(body(address=b"2001:DB8::1")), "address", 6, "27/message-format/18"),
    ("identity of 256 octets", as_router(body(identity=b"i" * 256)), "identity", 7, "27/message-format/19"),
    ("empty mechanism", as_router(body(b"", ())), "mechanism", 8, "27/message-format/20"),
    ("NULL with a credential", as_router(body(b"NULL", (b"x",))), "credentials", 9, "27/the-null-mechanism/2"),
    ("PLAIN with one credential", as_router(body(b"PLAIN", (b"admin",))), "credentials", 9, "27/the-plain-mechanism/2"),
    ("PLAIN with none", as_router(body(b"PLAIN", ())), "credentials", None, "27/the-plain-mechanism/2"),
    ("CURVE key of 31 octets", as_router(body(b"CURVE", (KEY[:31],))), "credentials", 9, "27/the-curve-mechanism/2"),
    ("CURVE with two frames", as_router(body(b"CURVE", (KEY, KEY))), "credentials", 9, "27/the-curve-mechanism/2"),
    ("CURVE key as Z85 text", as_router(body(b"CURVE", (b"x" * 40,))), "credentials", 9, "27/the-curve-mechanism/2"),
    ("five frames", as_router(body()[:5]), "frames", None, "27/message-format/2"),
]


@pytest.mark.parametrize(("what", "frames", "field", "frame", "rule"), WRONG, ids=[w[0] for w in WRONG])
def test_each_wrong_request_is_named(what, frames, field, frame, rule):
    problems = zap.check_requests([frames], zap.ROUTER, {}, {}, True)
    assert [(p.field, p.frame, p.rule) for p in problems][:1] == [(field, frame, rule)], (what, problems)
    text = str(problems[0])
    assert text.startswith("ZAP request 1") and field in text and rule in text


@pytest.mark.parametrize(
    ("spec", "frames", "field"),
    [
        ({"mechanism": "CURVE"}, body(), "mechanism"),
        ({"domain": "other"}, body(), "domain"),
        ({"address": "10.0.0.1"}, body(), "address"),
        ({"identity": "me"}, body(), "identity"),
        ({"request_id": "0001"}, body(), "request id"),
        ({"credentials": ["admin", "wrong"]}, body(), "credentials"),
        ({"credentials": [{"hex": KEY.hex()}]}, body(b"CURVE", (KEY[::-1],)), "credentials"),
        ({"credentials": []}, body(b"X-MINE", (b"extra",)), "credentials"),
    ],
)
def test_a_value_other_than_the_scenarios_is_named(spec, frames, field):
    problems = check(frames, spec=spec)
    assert [p.field for p in problems] == [field], problems
    assert problems[0].rule == ""  # the scenario's value, not a rule of RFC 27


def test_the_number_of_requests_is_exact():
    one = as_router(body())
    (more,) = zap.check_requests([one, one], zap.ROUTER, {"count": 1}, {}, True)
    assert (more.field, more.expected, more.seen, more.rule) == (
        "requests",
        "1 (one per handshake)",
        "2",
        "27/message-format/1",
    )
    (fewer,) = zap.check_requests([], zap.ROUTER, {"count": 2}, {}, True)
    assert fewer.seen == "0" and fewer.rule == ""
    assert zap.check_requests([], zap.ROUTER, {"count": 0}, {}, True) == []


def test_each_bad_request_of_several_is_numbered():
    problems = zap.check_requests(
        [as_router(body()), as_router(body(version=b"2.0"))], zap.ROUTER, {"count": 2}, {}, True
    )
    assert [(p.request, p.field) for p in problems] == [(2, "version")]


def test_without_an_envelope_frames_count_from_the_version():
    (p,) = check(body(version=b"0.9"), zap.REP)
    assert p.frame == 1
    (p,) = check(body(domain=b""), zap.CALLBACK)
    assert p.frame == 3


def test_the_address_is_not_judged_when_the_client_came_over_ipc():
    assert check(body(address=b""), over_ip=False) == []
    assert check(body(address=b""), over_ip=True) != []


def test_an_unknown_handler_kind_is_refused():
    (p,) = zap.check_requests([body()], "DEALER", {}, {}, True)
    assert p.field == "handler"


def test_the_transcript_names_each_field():
    text = zap.describe(as_router(body(b"CURVE", (KEY,))), zap.ROUTER)
    assert "version='1.0'" in text and "mechanism='CURVE'" in text and "(32 octets)" in text


def test_the_checker_imports_nothing_from_impl():
    tree = ast.parse(Path(zap.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith("zmtp") or node.module.startswith("zmtp_conformance"), node.module
        if isinstance(node, ast.Import):
            assert not any(a.name == "zmtp" or a.name.startswith("zmtp.") for a in node.names)


# -- the step against impl's agent ------------------------------------------------------------


def run(sid: str, mechanism: str, change: dict | None = None):
    (sc,) = [s for s in load_all() if s.id == sid]
    if change:
        steps = [
            dataclasses.replace(st, arg={**st.arg, **change}) if st.action == "expect_zap" else st for st in sc.steps
        ]
        sc = dataclasses.replace(sc, steps=steps)
    return run_one(sc, mechanism=mechanism)


def test_impl_passes_and_the_transcript_shows_its_request():
    r = run("27/zap/plain-request-format", "PLAIN")
    assert r.outcome == Outcome.PASSED, r.reason
    assert "zap request" in r.transcript and "credential 1='admin'" in r.transcript


def test_the_step_fails_on_a_value_impl_did_not_send():
    r = run("27/zap/plain-request-format", "PLAIN", {"domain": "elsewhere"})
    assert r.outcome == Outcome.FAILED
    assert "frame 3 (domain)" in r.reason and "'elsewhere'" in r.reason, r.reason
    r = run("27/zap/null-request-format", "NULL", {"count": 2, "timeout": 0.5})
    assert r.outcome == Outcome.FAILED and "(requests): expected 2" in r.reason, r.reason

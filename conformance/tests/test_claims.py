"""The README claims held against a run: conformance/claims.yaml and report/claims.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from zmtp_conformance.report import claims, findings


def _claims(tmp_path, body: str) -> list[claims.Claim]:
    path = tmp_path / "claims.yaml"
    path.write_text("implementations:\n  mono:\n    source: its README\n    release: '1.0'\n    claims:\n" + body)
    return claims.load(path)


def _scenario(sid: str, server: str = "PULL", client: str = "PUSH", tags: tuple[str, ...] = ()) -> SimpleNamespace:
    roles = {
        "s": SimpleNamespace(side="server", type=server, raw=False),
        "c": SimpleNamespace(side="client", type=client, raw=False),
    }
    return SimpleNamespace(id=sid, roles=roles, tags=list(tags))


def _cell(sid, server, client, outcome, reason="", mechanism="NULL", transport="tcp", version="1.0"):
    def side(peer):
        family = "mono" if peer.startswith("mono") else peer
        return {"peer": peer, "family": family, "versions": {family: version}}

    return {
        "scenario": sid, "server": side(server), "client": side(client), "outcome": outcome,
        "reason": reason, "mechanism": mechanism, "transport": transport,
    }  # fmt: skip


def test_the_shipped_claims_load_and_name_known_features():
    table = claims.load()
    assert {c.implementation for c in table} >= {"monocoque", "zmqrs", "zmq4", "jeromq", "zeromqjs"}
    assert all(c.source and c.release for c in table)


def test_a_bad_claim_is_refused_with_its_line(tmp_path):
    with pytest.raises(claims.ClaimsError, match=r"claims.yaml:6: feature 'sockets' is not one of"):
        _claims(tmp_path, "      - {says: x, feature: sockets, values: [REQ]}\n")
    with pytest.raises(claims.ClaimsError, match=r'has no None \(write "NULL" in quotes\)'):
        _claims(tmp_path, "      - {says: x, feature: mechanisms, values: [NULL]}\n")
    with pytest.raises(claims.ClaimsError, match="takes no values"):
        _claims(tmp_path, "      - {says: x, feature: zap, values: [yes]}\n")
    with pytest.raises(claims.ClaimsError, match="needs values"):
        _claims(tmp_path, "      - {says: x, feature: transports}\n")
    with pytest.raises(claims.ClaimsError, match="has no QUEUE"):
        _claims(tmp_path, "      - {says: x, feature: socket_types, values: [QUEUE]}\n")


def test_a_claim_holds_fails_or_is_contradicted_by_its_own_agent(tmp_path):
    table = _claims(
        tmp_path,
        "      - {says: PULL and REQ, feature: socket_types, values: [PULL, REQ]}\n"
        "      - {says: CURVE, feature: mechanisms, values: [CURVE]}\n"
        "      - {says: ZAP, feature: zap}\n"
        "      - {says: XPUB, feature: socket_types, values: [XPUB]}\n",
    )
    scenarios = [
        _scenario("30/a"),
        _scenario("28/b", "REP", "REQ"),
        _scenario("27/z", "ROUTER", "DEALER", tags=("area:zap",)),
        _scenario("29/x", "XPUB", "SUB"),
    ]
    records = [
        _cell("30/a", "mono-1.0", "impl", "passed"),
        _cell("29/x", "mono-1.0", "impl", "passed"),
        _cell("30/a", "mono-1.0", "impl", "passed", mechanism="CURVE"),
        _cell("30/a", "mono-1.0", "libzmq", "failed", mechanism="CURVE"),
        # REQ is the client's type: its agent says it lacks REQ.
        _cell("28/b", "impl", "mono-1.0", "unsupported", "mono-1.0/client: socket type REQ is not implemented"),
        # The other side lacking something says nothing about this implementation.
        _cell("27/z", "mono-1.0", "zmq4", "unsupported", "zmq4/client: no ZAP here"),
        # Its own agent lacking something else (a monitor) does not contradict the ZAP claim...
        _cell("27/z", "mono-1.0", "impl", "unsupported", "mono-1.0/server: no socket monitor"),
        _cell("27/z", "mono-1.0", "libzmq", "failed"),
        # ...and cells of another release are not judged against this README.
        _cell("27/z", "mono-0.9", "impl", "passed", version="0.9"),
    ]
    verdicts = {(v.claim.says, v.value): v for v in claims.judge(table, records, scenarios)}
    assert verdicts["XPUB", "XPUB"].status == "holds"
    # The CURVE cells play PULL too: one of them failed.
    assert verdicts["PULL and REQ", "PULL"].status == "fails in some cells"
    assert verdicts["PULL and REQ", "PULL"].counts == {"passed": 2, "failed": 1}
    assert verdicts["PULL and REQ", "REQ"].status == "contradicted"
    assert "REQ is not implemented" in verdicts["PULL and REQ", "REQ"].lacks[0]
    assert verdicts["CURVE", "CURVE"].status == "fails in some cells"
    zap = verdicts["ZAP", ""]
    assert (zap.status, zap.lacks, zap.counts) == ("fails in every cell", [], {"failed": 1})
    page = claims.html_section(list(verdicts.values()))
    assert "contradicted" in page and "REQ is not implemented" in page


def test_the_findings_page_holds_the_claims_against_the_run(tmp_path):
    records = [_cell("30/pull-binds-push-connects", "zeromqjs-6.8.0", "impl", "passed", mechanism="CURVE", version="6.8.0")]
    records[0]["server"]["family"] = "zeromqjs"
    out = tmp_path / "findings.html"
    findings.write_html(out, {}, {"generated": "now"}, records)
    text = out.read_text()
    assert "id='claims'" in text and "secure CURVE protocol" in text and "holds" in text

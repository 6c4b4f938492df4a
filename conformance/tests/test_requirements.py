"""The requirement inventory: sentence finding, overrides, the checks on quotes and ids, and `covers:` in scenarios."""

from __future__ import annotations

import json

import pytest
from scenario_samples import GOOD, write

from zmtp_conformance import requirements as q
from zmtp_conformance import rfc
from zmtp_conformance.scenario import ScenarioError, load_file

SPEC = """\
---
slug: 99
title: 99/TEST
---

## Preamble

The key words "MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT", "SHOULD", "SHOULD NOT", "RECOMMENDED", "MAY", and "OPTIONAL" in this document are to be interpreted as described in RFC 2119.

## The Greeting

A peer MUST send a greeting. It MAY wait, e.g. for a
while. The peer SHOULD NOT send
garbage.

The `ping. Pong` command MUST NOT be sent before the greeting. This sentence has no keyword.

```
; Grammar comments are not prose even if they say MUST
greeting = 64OCTET
```

* A client SHALL send HELLO and MAY send READY.
* The server SHALL answer.

### The PUB Socket Type

* SHALL not modify outgoing messages in any way.
"""


def scan() -> list[q.Sentence]:
    return q.scan("99", SPEC)


def test_scan_finds_one_entry_per_keyword_sentence_with_section_ids():
    found = {s.id: s for s in scan()}
    assert list(found) == [
        "99/preamble/1",
        "99/the-greeting/1",
        "99/the-greeting/2",
        "99/the-greeting/3",
        "99/the-greeting/4",
        "99/the-greeting/5",
        "99/the-greeting/6",
        "99/the-pub-socket-type/1",
    ]
    assert found["99/the-greeting/1"].text == "A peer MUST send a greeting."
    assert found["99/the-greeting/2"].text == "It MAY wait, e.g. for a while."  # no split after e.g., lines joined
    assert found["99/the-greeting/3"].keyword == "SHOULD NOT"
    assert found["99/the-greeting/4"].text.startswith("The `ping. Pong` command MUST NOT")  # code spans stay whole
    assert found["99/the-greeting/4"].keyword == "MUST NOT"
    assert found["99/the-greeting/5"].text == "A client SHALL send HELLO and MAY send READY."  # a list item, no marker
    assert found["99/the-greeting/5"].keyword == "SHALL"  # the strongest keyword of the sentence
    assert not any("Grammar comments" in s.text for s in found.values())


def test_ids_are_stable_when_another_section_grows():
    before = {s.id: s.text for s in scan()}
    grown = SPEC.replace("## The Greeting\n", "## Intro\n\nImplementations MAY differ.\n\n## The Greeting\n")
    after = {s.id: s.text for s in q.scan("99", grown)}
    assert after["99/intro/1"] == "Implementations MAY differ."
    assert all(after[k] == v for k, v in before.items())


def test_roles_come_from_the_sentence_or_the_socket_type_section():
    found = {s.id: s for s in scan()}
    assert found["99/the-greeting/5"].roles == ("client",)
    assert found["99/the-greeting/6"].roles == ("server",)
    assert found["99/the-greeting/1"].roles == ("peer",)
    assert found["99/the-pub-socket-type/1"].roles == ("PUB",)


def overrides(**kw) -> q.Overrides:
    base = dict(drop={}, drop_patterns=[], split={}, merge={}, roles={}, untestable={}, known_gaps={})
    base.update(kw)
    return q.Overrides(**base)


def test_overrides_drop_split_merge_roles_and_untestable():
    ov = overrides(
        drop_patterns=['The key words "MUST"'],
        drop={"99/the-greeting/2": "descriptive"},
        split={"99/the-greeting/5": ["A client SHALL send HELLO", "and MAY send READY"]},
        merge={"99/the-greeting/6": "99/the-greeting/1"},
        roles={"99/the-greeting/5b": ["client"]},
        untestable={"99/the-greeting/3": "nothing on the wire shows it"},
    )
    reqs = {r.id: r for r in q.apply(scan(), ov)}
    assert "99/preamble/1" not in reqs and "99/the-greeting/2" not in reqs and "99/the-greeting/6" not in reqs
    assert reqs["99/the-greeting/5a"].keyword == "SHALL" and reqs["99/the-greeting/5b"].keyword == "MAY"
    assert reqs["99/the-greeting/5b"].quote == "and MAY send READY"
    assert reqs["99/the-greeting/3"].untestable == "nothing on the wire shows it"
    assert reqs["99/the-greeting/4"].force == "MUST"
    assert not q.verify(list(reqs.values()), lambda n: SPEC)


@pytest.mark.parametrize(
    "ov,message",
    [
        (overrides(drop={"99/nowhere/1": "x"}), "'99/nowhere/1' is not a sentence id"),
        (overrides(split={"99/the-greeting/1": ["A peer MUST send nothing"]}), "is not part of"),
        (overrides(split={"99/the-greeting/1": ["A peer"]}), "has no requirement keyword"),
        (overrides(untestable={"99/the-greeting/9": "x"}), "'99/the-greeting/9' is not a requirement id"),
        (overrides(merge={"99/the-greeting/6": "99/the-greeting/9"}), "which is not a requirement"),
    ],
)
def test_an_override_that_names_nothing_is_an_error(ov, message):
    with pytest.raises(q.InventoryError, match=message):
        q.apply(scan(), ov)


def test_verify_fails_a_quote_that_is_not_in_its_rfc():
    reqs = q.apply(scan(), overrides())
    bad = [
        *reqs,
        q.Requirement(
            "99/the-greeting/9", "99", "the-greeting", "The Greeting", "MUST", "A peer MUST dance.", ("peer",)
        ),
    ]
    problems = q.verify(bad, lambda n: SPEC)
    assert problems == ["99/the-greeting/9: the quote is not in RFC 99: 'A peer MUST dance.'"]


def test_verify_fails_a_duplicate_id_and_a_wrong_keyword_or_role():
    reqs = q.apply(scan(), overrides())
    first = reqs[1]
    twice = [*reqs, first]
    assert f"{first.id}: the id is used twice" in q.verify(twice, lambda n: SPEC)
    wrong = q.Requirement(first.id + "x", "99", first.section, first.heading, "SHOULD", first.quote, ("robot",))
    problems = q.verify([wrong], lambda n: SPEC)
    assert any("does not say SHOULD" in p for p in problems)
    assert any("roles ['robot']" in p for p in problems)


def test_loading_an_inventory_with_a_duplicate_id_fails(tmp_path):
    entry = {
        "id": "99/a/1",
        "rfc": "99",
        "section": "a",
        "heading": "A",
        "keyword": "MUST",
        "quote": "x MUST",
        "roles": ["peer"],
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"requirements": [entry, entry]}))
    with pytest.raises(q.InventoryError, match="used twice"):
        q.load(path)


def test_the_committed_inventory_loads_and_looks_up():
    inv = q.load()
    assert len(inv) > 400
    assert inv["37/connection-heartbeating/3b"].keyword == "MUST"
    assert inv["37/version-negotiation/8"].keyword == "MUST NOT"
    with pytest.raises(LookupError, match="not in the requirement inventory"):
        q.lookup("37/no-such-section/1")


def test_every_quote_of_the_committed_inventory_is_in_its_rfc():
    if not rfc.available():
        pytest.skip(f"the RFC texts are not at {rfc.SPECS_DIR}")
    assert q.verify(list(q.load().values()), rfc.text) == []


def test_the_committed_inventory_is_what_the_texts_and_overrides_make():
    if not rfc.available():
        pytest.skip(f"the RFC texts are not at {rfc.SPECS_DIR}")
    assert q.main(["--check"]) == 0, "run python -m zmtp_conformance.requirements"


def test_an_unknown_covers_id_is_a_load_error_naming_file_and_line(tmp_path):
    text = GOOD.replace("roles:\n", "covers: [37/connection-heartbeating/3a, 37/no-such-section/1]\nroles:\n")
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert str(err.value).startswith(f"{path}:5: covers[1]: '37/no-such-section/1' is not a requirement id")


def test_a_malformed_covers_id_is_a_schema_error(tmp_path):
    path = write(tmp_path, GOOD.replace("roles:\n", "covers: [heartbeating]\nroles:\n"))
    with pytest.raises(ScenarioError, match=r":5: covers\[0\]: 'heartbeating' does not match"):
        load_file(path)


def test_a_known_covers_id_loads(tmp_path):
    path = write(tmp_path, GOOD.replace("roles:\n", "covers:\n  - 37/connection-heartbeating/3a\nroles:\n"))
    assert load_file(path).covers == ["37/connection-heartbeating/3a"]
    assert load_file(write(tmp_path, GOOD, "plain.yaml")).covers is None

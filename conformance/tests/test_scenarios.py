"""The scenario loader and its schema errors."""

from __future__ import annotations

import pytest
from scenario_samples import GOOD, write

from zmtp_conformance.scenario import SCENARIO_DIR, ScenarioError, load_all, load_file


def test_every_shipped_scenario_loads_and_ids_are_unique():
    scenarios = load_all()
    assert len(scenarios) >= 80
    ids = [s.id for s in scenarios]
    assert len(ids) == len(set(ids))
    for sc in scenarios:
        assert sc.rfc and sc.requirement
        assert sc.id.split("/")[0].isdigit() or sc.id.startswith("corpus/")


def test_every_rfc_clause_names_a_spec_we_ship():
    specs = {p.stem.removeprefix("rfc") for p in (SCENARIO_DIR.parent.parent / "shared" / "specs").glob("rfc*.md")}
    if not specs:
        pytest.skip("shared/specs is not beside this checkout")
    for sc in load_all():
        for clause in sc.rfc:
            assert clause.split("/")[0] in specs, f"{sc.id}: {clause}"


def test_every_clause_names_its_rfc_as_the_rfc_does():
    """'49/SCATTER-GATHER#...' and '49/SCATTERGATHER#...' would be one RFC under two names in the reports."""
    from zmtp_conformance import rfc

    if not rfc.available():
        pytest.skip(f"the RFC texts are not at {rfc.SPECS_DIR}")
    wrong = {
        f"{sc.path}: {spec}, but RFC {spec.split('/')[0]} is {rfc.title(spec.split('/')[0])}"
        for sc in load_all()
        for spec in (clause.split("#")[0] for clause in sc.rfc)
        if spec != rfc.title(spec.split("/")[0])
    }
    assert not wrong, "\n".join(sorted(wrong))
    assert rfc.title("49") == "49/SCATTERGATHER" != "49/SCATTER-GATHER"


def test_every_level_is_a_keyword_of_the_clause_it_cites():
    """h2spec's rule: a scenario at MUST cites a passage that says MUST (or SHALL, and so on)."""
    from zmtp_conformance import rfc

    if not rfc.available():
        pytest.skip(f"the RFC texts are not at {rfc.SPECS_DIR}")
    wrong = []
    for sc in load_all():
        found: set[str] = set()
        for clause in sc.rfc:
            found |= rfc.keywords(rfc.section(clause))  # an anchor that names no section raises
        if sc.level != "interop" and sc.level not in found:
            wrong.append(f"{sc.path}: level {sc.level}, but {', '.join(sc.rfc)} says only {sorted(found)}")
    assert not wrong, "\n".join(wrong)


def test_the_level_check_can_fail():
    from zmtp_conformance import rfc

    if not rfc.available():
        pytest.skip(f"the RFC texts are not at {rfc.SPECS_DIR}")
    assert "MUST" not in rfc.keywords(rfc.section("37/ZMTP#connection-metadata"))
    assert "SHALL" in rfc.keywords(rfc.section("37/ZMTP#connection-metadata"))
    with pytest.raises(LookupError, match="no section"):
        rfc.section("37/ZMTP#no-such-section")


def test_good_file(tmp_path):
    sc = load_file(write(tmp_path, GOOD))
    assert sc.id == "99/test/ok"
    assert [s.action for s in sc.steps] == ["send", "expect"]
    assert sc.transports == ["tcp", "ipc"] and sc.mechanisms == ["NULL"]


@pytest.mark.parametrize(
    "change,line,where,message",
    [
        (("  - client.send: [hi]", "  - client.sendd: [hi]"), 9, "steps[0]", "'client.sendd' is not a known action"),
        (('rfc: ["37/ZMTP#framing"]', 'rfc: ["ZMTP framing"]'), 3, "rfc[0]", "does not match"),
        (("title: a test scenario\n", ""), 1, "", "'title' is a required property"),
        (("type: PULL}", "type: PULLL}"), 6, "roles.server.type", "is not one of"),
        (("  - server.expect: [hi]", "  - other.expect: [hi]"), 10, "steps[1]", "role 'other' is not declared"),
        (("  - server.expect: [hi]", "  - server.expect_raw: 'ff'"), 10, "steps[1]", "expect_raw is for raw roles"),
        (
            ("type: PULL}", "type: PULL, options: {handshake_timout: 1}}"),
            6,
            "options",
            "'handshake_timout' is not a known option",
        ),
        (("type: PULL}", "type: PULL, options: {linger: fast}}"), 6, "options.linger", "not valid"),
        (("  - server.expect: [hi]", "  - server.expect: [{nope: 1}]"), 10, "steps[1].server.expect[0]", "not valid"),
    ],
)
def test_schema_errors_name_file_line_and_field(tmp_path, change, line, where, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}"), text
    assert where in text and message in text


def test_invalid_yaml(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml:2: not valid YAML"):
        load_file(write(tmp_path, "id: x\n  bad: [indent\n"))


def test_duplicate_ids_are_refused(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(ScenarioError, match="already used by"):
        load_all(tmp_path)


def test_selection_by_prefix_and_glob(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD.replace("99/test/ok", "99/other/x"), "b.yaml")
    assert [s.id for s in load_all(tmp_path, ["99/test"])] == ["99/test/ok"]
    assert [s.id for s in load_all(tmp_path, ["99/*/x"])] == ["99/other/x"]


def test_the_schema_file_is_what_the_vocabulary_makes():
    from zmtp_conformance import vocabulary

    assert vocabulary.main(["--check"]) == 0, "run python -m zmtp_conformance.vocabulary"


def test_every_action_has_one_handler_per_role_kind_it_allows():
    from zmtp_conformance import runner, vocabulary

    peer = {n for n, a in vocabulary.ACTIONS.items() if vocabulary.PEER in a.roles}
    raw = {n for n, a in vocabulary.ACTIONS.items() if vocabulary.RAW in a.roles}
    assert set(runner.PEER_STEPS) == peer
    assert set(runner.RAW_STEPS) == raw


def test_every_option_is_one_impl_honours():
    import dataclasses

    import zmtp
    from zmtp_conformance import vocabulary

    fields = {f.name for f in dataclasses.fields(zmtp.SocketOptions)}
    assert set(vocabulary.OPTIONS) <= fields


def test_peer_only_actions_are_refused_on_raw_roles(tmp_path):
    text = GOOD.replace("type: PULL}", "raw: true}").replace("  - server.expect: [hi]", "  - server.unsubscribe: a")
    with pytest.raises(ScenarioError, match="unsubscribe is for peer roles"):
        load_file(write(tmp_path, text))

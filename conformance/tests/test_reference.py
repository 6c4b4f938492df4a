"""The docs' reference tables come from the vocabulary, and every step action is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zmtp_conformance import reference, vocabulary

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_options_table_in_the_agent_protocol_is_current():
    assert reference.main(["--check"]) == 0, "run python -m zmtp_conformance.reference"


def test_every_option_is_in_the_table_and_a_new_one_would_be():
    text = reference.render(reference.DOC.read_text())
    for name in vocabulary.OPTIONS:
        assert f"| `{name}` |" in text
    # A stale block is rewritten, not left as it was.
    stale = text.replace("| `sndhwm` |", "| `sndhwm_old` |")
    assert "| `sndhwm` |" in reference.render(stale) and "sndhwm_old" not in reference.render(stale)


def test_a_doc_without_the_block_is_an_error_naming_it():
    with pytest.raises(LookupError, match="options:begin"):
        reference.render("# no table here\n")


def test_every_step_action_is_documented_for_scenario_authors():
    text = (DOCS / "scenarios.md").read_text()
    missing = [a for a in vocabulary.ACTIONS if not re.search(rf"`{re.escape(a)}\b", text)]
    assert not missing, f"docs/scenarios.md does not describe: {', '.join(missing)}"


def test_a_stale_generated_file_fails_the_check_and_is_rewritten_without_it(tmp_path, capsys):
    path = tmp_path / "generated.md"
    path.write_text("old\n")
    assert vocabulary.regenerate(path, "new\n", ["--check"], "some.module") == 1
    assert "run python -m some.module" in capsys.readouterr().out and path.read_text() == "old\n"
    assert vocabulary.regenerate(path, "new\n", [], "some.module") == 0 and path.read_text() == "new\n"
    assert vocabulary.regenerate(path, "new\n", ["--check"], "some.module") == 0

"""send_until_full and expect_numbered's sent_by/must_lose: the checks turn red when the queue does not do what the step says."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scenario_samples import run_one

from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome


def run_changed(sid: str, action: str, change: dict[str, Any]):
    """Run `sid` impl against impl with the argument of its `action` step changed."""
    (sc,) = [s for s in load_all() if s.id == sid]
    steps = [replace(st, arg={**st.arg, **change}) if st.action == action else st for st in sc.steps]
    assert steps != sc.steps, f"{sid} has no {action} step"
    return run_one(replace(sc, steps=steps))


def test_a_queue_that_drops_is_not_full():
    r = run_changed("29/pub/drops-when-queue-full", "send_until_full", {"full": True})
    assert r.outcome == Outcome.FAILED and r.action == "send_until_full", r.reason
    assert "took 400 of at most 400" in r.reason


def test_a_queue_that_blocks_is_full():
    r = run_changed("30/push/blocks-when-queue-full", "send_until_full", {"full": False})
    assert r.outcome == Outcome.FAILED and r.action == "send_until_full", r.reason
    assert "would block or was refused" in r.reason


def test_the_count_is_held_to_its_bounds():
    r = run_changed("30/push/blocks-when-queue-full", "send_until_full", {"at_most": 1})
    assert r.outcome == Outcome.FAILED and "queue took" in r.reason, r.reason


def test_must_lose_fails_when_everything_arrived():
    r = run_changed("30/push/blocks-when-queue-full", "expect_numbered", {"must_lose": True})
    assert r.outcome == Outcome.FAILED and r.action == "expect_numbered", r.reason
    assert "received all" in r.reason


def test_a_lossy_run_ends_at_the_senders_end_marker():
    (sc,) = [s for s in load_all() if s.id == "29/pub/drops-when-queue-full"]
    r = run_one(sc)
    assert r.outcome == Outcome.PASSED, r.reason
    assert "end of the numbered run" in r.transcript and "the end marker: nothing more" in r.transcript, r.transcript


def test_no_end_marker_unless_the_run_is_the_last_step():
    # A marker left in flight would meet the steps after; without one the quiet period is waited out.
    from zmtp_conformance.scenario import Step

    (sc,) = [s for s in load_all() if s.id == "29/pub/drops-when-queue-full"]
    r = run_one(replace(sc, steps=[*sc.steps, Step(None, "wait", 0.01)]))
    assert r.outcome == Outcome.PASSED, r.reason
    assert "end of the numbered run" not in r.transcript and "lost" in r.transcript, r.transcript

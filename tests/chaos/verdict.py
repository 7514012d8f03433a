"""Judging one chaos run: the right outcome for the mode, the right rank blamed, soon enough.

The rules (issue 15):

- a worker whose loss the run tolerates (``Experiment.continues_after_worker_loss`` in a
  parameter-server mode), lost after every rank joined: the run goes on, ``status == "ok"``, the
  victim alone in ``result.lost`` (stopped: ended by ddlkit, "unresponsive" in its ``how``);
- lost before every rank joined, or any rank another run cannot lose: ``WorkerFailed`` naming it
  (stopped: ``WorkerUnresponsive`` naming it);
- the harness cannot always know whether the victim had joined when it was hit (its
  ``RankReady`` may still have been on its way): then either outcome is right, but the rank
  blamed or lost must be the victim;
- a hit on a process that had already exited is *missed*; a run that ends well without
  losing its victim is *late*, allowed only if the hit came at the run's last step or after
  (the victim may have sent its final report already);
- detection within 10 s of the hit (a stopped rank: ``unresponsive_s`` + 10 s), a record on
  disk whose status matches, and no leak.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tests.chaos.plan import Case
from tests.chaos.trial import Observation

DETECT_WITHIN_S = 10.0
#: a run that ends well without losing its victim is late, not wrong, if its last step was
#: reported less than this after the hit
LATE_S = 0.5
PROBLEMS = ("hang", "wrong blame", "wrong outcome", "slow detection", "no record", "leak")
#: the record's status for each way a run can end
RECORD_STATUS = {"ok": "ok", "stopped": "stopped", "WorkerFailed": "failed",
                 "WorkerUnresponsive": "failed", "RunTimeout": "timeout"}


@dataclass
class Verdict:
    """``outcome``: survived, failed, unresponsive, late, missed, hang or error;
    ``problems``: (kind, detail) pairs, kinds from :data:`PROBLEMS`."""

    outcome: str
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def outcome_of(obs: Observation) -> str:
    """How the run ended, as the campaign counts it."""
    if obs.outcome == "RunTimeout":
        return "hang"
    if not obs.hit.get("sent"):
        return "missed"
    return {"WorkerUnresponsive": "unresponsive", "WorkerFailed": "failed",
            "ok": "survived" if obs.lost else "late"}.get(obs.outcome, "error")


def allowed_outcomes(case: Case, obs: Observation) -> set[str]:
    """The outcomes that are right for this mode, victim and hit."""
    failing = "unresponsive" if case.signal == "STOP" else "failed"
    if case.tolerated:
        allowed = {"survived"} if obs.hit.get("joined") else {"survived", failing}
    else:
        allowed = {failing}
    if obs.last_step_after_hit_s is not None and obs.last_step_after_hit_s < LATE_S:
        allowed.add("late")
    return allowed


def judge(case: Case, obs: Observation) -> Verdict:
    """The verdict on one run."""
    verdict = Verdict(outcome_of(obs))
    problems = verdict.problems
    problems += [("leak", leak) for leak in obs.leaks]
    outcome = verdict.outcome
    if outcome == "hang":
        problems.append(("hang", obs.error))
    elif outcome == "missed":
        if obs.outcome != "ok" or obs.lost:
            problems.append(("wrong outcome", f"rank {case.victim} was never hit "
                                              f"({obs.hit.get('missed')}), yet: {_ending(obs)}"))
    else:
        problems += _blame(case, obs, outcome)
        allowed = allowed_outcomes(case, obs)
        if outcome not in allowed:
            problems.append(("wrong outcome", f"{outcome}, expected {' or '.join(sorted(allowed))}"
                                              f" (joined: {obs.hit.get('joined')}): "
                                              f"{_ending(obs)}"))
        problems += _latency(case, obs, outcome)
    expected = RECORD_STATUS.get(obs.outcome)
    if expected is not None and obs.record_status != expected:
        problems.append(("no record", f"record status {obs.record_status!r}, "
                                      f"expected {expected!r}"))
    return verdict


def _blame(case: Case, obs: Observation, outcome: str) -> list[tuple[str, str]]:
    """The rank blamed, or lost, must be the one hit."""
    if outcome in ("failed", "unresponsive") and obs.blamed != case.victim:
        return [("wrong blame", f"rank {obs.blamed} blamed, rank {case.victim} was hit: "
                                f"{obs.error}")]
    lost = [entry["rank"] for entry in obs.lost]
    if lost and lost != [case.victim]:
        return [("wrong blame", f"ranks {lost} lost, rank {case.victim} was hit")]
    if outcome == "survived" and case.signal == "STOP":
        how = str(obs.lost[0].get("how", ""))
        if "unresponsive" not in how:
            return [("wrong outcome", f"a stopped rank lost with how={how!r}")]
    return []


def _latency(case: Case, obs: Observation, outcome: str) -> list[tuple[str, str]]:
    if outcome not in ("survived", "failed", "unresponsive"):
        return []
    limit = DETECT_WITHIN_S + (case.experiment().unresponsive_s if case.signal == "STOP"
                               else 0.0)
    if obs.latency_s is None:
        return [("slow detection", "the loss was never reported (no RankLost event)")]
    if obs.latency_s > limit:
        return [("slow detection", f"{obs.latency_s:.1f} s after the hit (limit {limit:g} s)")]
    return []


def _ending(obs: Observation) -> str:
    if obs.error:
        return f"{obs.outcome}: {obs.error}"
    return f"status {obs.outcome}, lost {obs.lost}"

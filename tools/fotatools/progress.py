"""How far a job has got, counted over every thing it targets.

AWS IoT (and the stand-in) list a job's executions, but a rollout rate creates an execution for
a target thing only when its turn comes, and a cancelled job creates none for the things it had
not reached: counting executions calls a rate-limited rollout done after its first minute and
hides what a cancel spared. Here every target thing counts, in one of these states:

- an execution's state (QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, TIMED_OUT, REMOVED,
  CANCELED: stopped while it ran);
- WAITING: the job still runs but has not queued the thing yet (its rollout rate);
- SPARED: the job was cancelled (by hand or by its abort criteria) before the thing started it:
  no execution, or one cancelled while still QUEUED.

The verdict (`Progress.code`), as `fota status` and `--watch` exit: 3 while any target is
WAITING, QUEUED or IN_PROGRESS; then 0 if every target SUCCEEDED, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backend import ENDED_JOB_STATES, Execution, JobInfo

EXIT_OK, EXIT_FAILED, EXIT_IN_PROGRESS = 0, 1, 3
WAITING, SPARED = "WAITING", "SPARED"
PENDING = (WAITING, "QUEUED", "IN_PROGRESS")
# the order in which states are counted and named
STATES = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED", SPARED,
          "IN_PROGRESS", "QUEUED", WAITING)
WORDS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "REJECTED": "rejected",
         "TIMED_OUT": "timed out", "REMOVED": "removed", "CANCELED": "canceled while running",
         SPARED: "spared", "IN_PROGRESS": "in progress", "QUEUED": "queued", WAITING: "waiting"}
RESULTS = {EXIT_OK: "succeeded", EXIT_FAILED: "failed", EXIT_IN_PROGRESS: "in_progress"}


@dataclass
class Target:
    """One thing the job targets, and where it stands."""

    thing: str
    state: str  # an execution state, WAITING or SPARED
    execution: Execution | None = None
    stage: str = ""  # of a canary rollout (fotatools.canary): "canary" or "rest"
    why: str = ""  # the note, when the job's own state does not say it

    @property
    def note(self) -> str:
        """Why a thing without a finished execution stands where it does (or "")."""
        if self.why:
            return self.why
        if self.state == WAITING:
            return "(not queued yet)"
        if self.state == SPARED:
            return "(never queued)" if self.execution is None else "(canceled while QUEUED)"
        return ""


def rate_text(rollout: dict[str, Any]) -> str:
    """A job's rollout rate in a few words ("1/min", "from 5/min, x2"), or ""."""
    expo = rollout.get("exponentialRate")
    if isinstance(expo, dict) and expo.get("baseRatePerMinute"):
        cap = f" up to {rollout['maximumPerMinute']}/min" if rollout.get("maximumPerMinute") \
            else ""
        return f"from {expo['baseRatePerMinute']}/min, x{expo.get('incrementFactor', '?')}{cap}"
    if rollout.get("maximumPerMinute"):
        return f"{rollout['maximumPerMinute']}/min"
    return ""


@dataclass
class Progress:
    job: JobInfo
    targets: list[Target]  # by thing name

    @classmethod
    def of(cls, job: JobInfo, executions: list[Execution], things: list[str]) -> "Progress":
        """The job's targets: `things` (as `Backend.target_things` gives them) and every thing
        that has an execution (the latest, one per thing)."""
        latest = {e.thing_name: e for e in sorted(executions, key=lambda e: e.execution_number)}
        ended = job.status in ENDED_JOB_STATES
        targets = []
        for thing in sorted(set(things) | set(latest)):
            e = latest.get(thing)
            if e is None:
                state = SPARED if ended else WAITING
            elif e.status == "CANCELED" and e.started_at is None:
                state = SPARED  # cancelled before the device took it
            else:
                state = e.status
            targets.append(Target(thing, state, e))
        return cls(job, targets)

    @property
    def counts(self) -> dict[str, int]:
        """Targets by state, in STATES order, states with none left out."""
        have = [t.state for t in self.targets]
        extra = sorted(set(have) - set(STATES))  # a state this version does not know
        return {s: have.count(s) for s in list(STATES) + extra if s in have}

    @property
    def settled(self) -> int:
        """Targets that will not move any more."""
        return sum(1 for t in self.targets if t.state not in PENDING)

    @property
    def code(self) -> int:
        if any(t.state in PENDING for t in self.targets):
            return EXIT_IN_PROGRESS
        if not self.targets:  # nothing to count (yet): the job decides
            return EXIT_FAILED if self.job.status in ENDED_JOB_STATES else EXIT_IN_PROGRESS
        if all(t.state == "SUCCEEDED" for t in self.targets):
            return EXIT_OK
        return EXIT_FAILED

    @property
    def result(self) -> str:
        return RESULTS[self.code]

    def summary(self) -> str:
        """"1/3 succeeded, 2 waiting (not yet queued at 1/min)"."""
        counts = self.counts
        parts = [f"{counts.get('SUCCEEDED', 0)}/{len(self.targets)} succeeded"]
        for state, n in counts.items():
            if state == "SUCCEEDED":
                continue
            text = f"{n} {WORDS.get(state, state)}"
            if state == WAITING:
                rate = rate_text(self.job.rollout)
                text += f" (not yet queued at {rate})" if rate else " (not yet queued)"
            elif state == SPARED:
                text += " (canceled before they started)" if n > 1 else \
                    " (canceled before it started)"
            parts.append(text)
        return ", ".join(parts)

    def totals(self) -> str:
        """"totals: 1 SUCCEEDED, 2 WAITING of 3; result: in_progress"."""
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items()) or "no targets"
        return f"totals: {counts} of {len(self.targets)}; result: {self.result}"

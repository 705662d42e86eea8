"""A canary rollout: a first few things, then the rest once every one of them SUCCEEDED.

AWS IoT Jobs has no job that waits for another (AssociateTargetsWithJob adds targets only to a
CONTINUOUS job, which never completes), so a canary is two SNAPSHOT jobs, as on AWS by hand:

- JOB, the canary: the first N things of the targets (`publish --canary N`: the things named
  with --thing first, then each --group's members) or a group (`--canary-group G`), with the
  in-progress timeout but no rate or abort criteria: one thing that does not succeed is enough
  to stop here. Its description carries the plan for the rest, as one line of JSON after
  `fota canary: ` (AWS keeps it with the job; a description holds at most 2028 characters):
  the rest's job id (JOB-rest), the targets of the whole rollout and its rollout settings.
- JOB-rest: the targets' things other than the canary's (group members as they are when it
  is made), named one by one, with the rollout rate, abort criteria and timeout given to
  `publish`. `fota status JOB` (and `--watch`, and `publish --watch`) creates it the first
  time it finds every canary thing SUCCEEDED.

`fota status JOB` counts both stages over every thing: the rest's things are WAITING while the
canary runs, SPARED when it ended otherwise (a thing failed, timed out, was rejected, or the
job was cancelled), and as their own job says once it exists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from .backend import Backend, BackendError, JobInfo, NotFound, Rollout
from .progress import EXIT_IN_PROGRESS, EXIT_OK, SPARED, WAITING, Progress, Target

PREFIX = "fota canary: "
REST_PREFIX = "fota rest of canary "
REST_SUFFIX = "-rest"
MAX_DESCRIPTION = 2028  # CreateJob's description
CANARY, REST = "canary", "rest"


@dataclass
class Plan:
    rest_job: str
    targets: list[str]  # the thing and group ARNs of the whole rollout
    rollout: dict[str, Any]  # the rest's Rollout, as asdict

    def encode(self) -> str:
        text = PREFIX + json.dumps(asdict(self), separators=(",", ":"))
        if len(text) > MAX_DESCRIPTION:
            raise ValueError(f"the canary's plan takes {len(text)} characters, more than the "
                             f"{MAX_DESCRIPTION} of a job description: target fewer groups or "
                             "things, or put them in one group")
        return text

    def rest_rollout(self) -> Rollout:
        known = {f.name for f in fields(Rollout)}
        return Rollout(**{k: v for k, v in self.rollout.items() if k in known})


def decode(description: str | None) -> Plan | None:
    """The plan a canary job's description carries, or None (not a canary, or unreadable)."""
    if not description or not description.startswith(PREFIX):
        return None
    try:
        raw = json.loads(description[len(PREFIX):])
        return Plan(str(raw["rest_job"]), [str(t) for t in raw["targets"]], dict(raw["rollout"]))
    except (ValueError, KeyError, TypeError):
        return None


def target_list(backend: Backend, things: list[str], groups: list[str]) -> list[str]:
    """The things a rollout to `things` and `groups` reaches, in order: the named things, then
    each group's members; each once."""
    out = list(things)
    for g in groups:
        out += backend.group_members(g)
    return list(dict.fromkeys(out))


def rest_things(backend: Backend, plan: Plan, canary: list[str]) -> list[str]:
    """The plan's things (group members as they are now) other than the canary's."""
    things: list[str] = []
    for arn in plan.targets:
        kind, _, name = arn.split(":", 5)[-1].partition("/")
        things += [name] if kind == "thing" else backend.group_members(name)
    skip = set(canary)
    return [t for t in dict.fromkeys(things) if t not in skip]


@dataclass
class Stages:
    """Both stages of a canary rollout."""

    plan: Plan
    canary: Progress
    rest: Progress | None  # None until JOB-rest exists
    rest_things: list[str]
    promoted: bool = False  # JOB-rest was created just now

    def progress(self) -> Progress:
        """One Progress over every thing of both stages (the canary job stands for them)."""
        targets = [Target(t.thing, t.state, t.execution, stage=CANARY)
                   for t in self.canary.targets]
        if self.rest is not None:
            targets += [Target(t.thing, t.state, t.execution, stage=REST)
                        for t in self.rest.targets]
        else:
            state = WAITING if self.canary.code == EXIT_IN_PROGRESS else SPARED
            note = "(after the canary)" if state == WAITING else "(the canary did not succeed)"
            targets += [Target(t, state, None, stage=REST, why=note) for t in self.rest_things]
        return Progress(self.canary.job, targets)

    def report(self) -> list[dict[str, Any]]:
        out = [{"stage": CANARY, "job_id": self.canary.job.job_id,
                "status": self.canary.job.status, "total": len(self.canary.targets),
                "counts": self.canary.counts, "summary": self.canary.summary()}]
        if self.rest is not None:
            out.append({"stage": REST, "job_id": self.rest.job.job_id,
                        "status": self.rest.job.status, "total": len(self.rest.targets),
                        "counts": self.rest.counts, "summary": self.rest.summary()})
        else:
            waiting = self.canary.code == EXIT_IN_PROGRESS
            out.append({"stage": REST, "job_id": self.plan.rest_job,
                        "status": "WAITING" if waiting else "NOT_CREATED",
                        "total": len(self.rest_things),
                        "counts": {WAITING if waiting else SPARED: len(self.rest_things)}
                        if self.rest_things else {},
                        "summary": ("waits for the canary" if waiting
                                    else "not created: the canary did not succeed")})
        return out


def follow(backend: Backend, job: JobInfo, canary: Progress, plan: Plan) -> Stages:
    """Both stages of the canary `job` whose progress is `canary`; creates JOB-rest once every
    canary thing SUCCEEDED."""
    canary_things = [t.thing for t in canary.targets]
    rest_job = _describe(backend, plan.rest_job)
    promoted = False
    if rest_job is None:
        things = rest_things(backend, plan, canary_things)
        if canary.code == EXIT_OK and canary.targets and things:
            arns = [backend.thing_arn(t) for t in things]
            try:
                backend.create_job(plan.rest_job, arns, job.document, plan.rest_rollout(),
                                   description=REST_PREFIX + job.job_id)
                promoted = True
            except BackendError as e:  # another `fota status` made it first
                if e.code != "ResourceAlreadyExistsException":
                    raise
            rest_job = backend.describe_job(plan.rest_job)
        else:
            return Stages(plan, canary, None, things)
    executions = backend.list_executions(rest_job.job_id)
    rest = Progress.of(rest_job, executions, backend.target_things(rest_job))
    return Stages(plan, canary, rest, [t.thing for t in rest.targets], promoted)


def _describe(backend: Backend, job_id: str) -> JobInfo | None:
    try:
        return backend.describe_job(job_id)
    except NotFound:
        return None


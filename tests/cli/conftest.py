"""Fixtures for the host CLI tests: a moto server standing in for AWS, and a `fota` runner."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/fota-presign"

sys.path.insert(0, str(Path(__file__).parent))


@dataclass
class Moto:
    url: str
    account: str = "123456789012"

    def iot_model(self):
        """moto's in-process IoT state (the server runs in a thread of this process)."""
        from moto.iot.models import iot_backends
        return iot_backends[self.account][REGION]

    def device_update(self, job_id: str, thing: str, status: str,
                      details: dict[str, str] | None = None) -> None:
        """What a device's UpdateJobExecution does (moto has no Jobs data plane): new status
        and statusDetails, lastUpdatedAt now, versionNumber + 1."""
        import datetime as dt

        ex = self.iot_model().job_executions[(job_id, thing)]
        ex.status = status
        ex.status_details_map = dict(details or {})
        ex.last_updated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        if ex.started_at is None:
            ex.started_at = ex.last_updated_at
        ex.version_number += 1

    # moto creates every execution of a job when the job is created (one per target ARN, a
    # group's named after the group); AWS creates a target thing's execution when the job's
    # rollout reaches it. These play AWS's rollout on moto's model.
    def hold_back(self, job_id: str) -> None:
        """The rollout has reached no thing yet: the job has no executions."""
        model = self.iot_model()
        for key in [k for k in model.job_executions if k[0] == job_id]:
            del model.job_executions[key]

    def roll_out(self, job_id: str, thing: str) -> None:
        """The rollout reaches `thing`: an execution, QUEUED, not started."""
        from moto.iot.models import FakeJobExecution

        model = self.iot_model()
        ex = FakeJobExecution(job_id, model.describe_thing(thing).arn)
        ex.started_at = None
        ex.execution_number = ex.version_number = 1
        model.job_executions[(job_id, thing)] = ex

    def job_ends(self, job_id: str, status: str, reason_code: str | None = None) -> None:
        """The job is COMPLETED or CANCELED (its rollout over: no processingTargets); a cancel
        cancels the executions still QUEUED, as AWS's does."""
        model = self.iot_model()
        job = model.jobs[job_id]
        job.status, job.reason_code = status, reason_code
        job.job_process_details["processingTargets"] = []
        if status == "CANCELED":
            for (jid, _), ex in model.job_executions.items():
                if jid == job_id and ex.status == "QUEUED":
                    ex.status = "CANCELED"


@pytest.fixture(scope="session")
def moto() -> Moto:
    """moto in server mode on a free loopback port, stopped at the end of the session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield Moto(f"http://{host}:{port}")
    server.stop()


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "FOTA_BACKEND",
           "FOTA_HOME", "FOTA_BUCKET", "FOTA_PRESIGN_ROLE_ARN", "AWS_ENDPOINT_URL",
           "AWS_ENDPOINT_URL_IOT_DATA_PLANE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials and a clean environment for in-process boto3."""
    for k in CLEARED:
        monkeypatch.delenv(k, raising=False)
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Fota:
    """Runs `python -m fotatools.cli` in a subprocess with a given environment."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env = env
        self.cwd = cwd

    def __call__(self, *args: str, timeout: float = 60) -> Result:
        p = subprocess.run([sys.executable, "-m", "fotatools.cli", *map(str, args)],
                           capture_output=True, text=True, env=self.env, cwd=self.cwd,
                           timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tools"), str(ROOT)])
    env["FOTA_HOME"] = str(tmp_path / "home")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    return env


@pytest.fixture
def fota_aws(moto, tmp_path) -> Fota:
    """`fota` with the AWS backend pointed at the moto server."""
    env = base_env(tmp_path)
    env.update(AWS_ENV)
    env.update({"FOTA_BACKEND": "aws", "FOTA_BUCKET": unique("fota-fw"),
                "FOTA_PRESIGN_ROLE_ARN": ROLE_ARN, "AWS_ENDPOINT_URL": moto.url})
    return Fota(env, tmp_path)

"""tools/fotatools/cloud/control.py: ListJobExecutionsForJob gives statusDetails only when
asked (includeDetails, a local extension), and a certificate that does not exist."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlError
from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import control_api


@pytest.fixture()
def api(tmp_path):
    yield from control_api(tmp_path)


def test_list_job_executions_for_job_gives_details_only_when_asked(api):
    # AWS's JobExecutionSummary has no statusDetails nor versionNumber: without includeDetails
    # the answer is shaped as boto3's list_job_executions_for_job
    api.call("CreateJob", {"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    plain = api.call("ListJobExecutionsForJob", {"jobId": "j"})["executionSummaries"]
    assert [s["thingArn"] for s in plain] == [thing_arn("a")]
    assert set(plain[0]["jobExecutionSummary"]) == {"status", "queuedAt", "lastUpdatedAt",
                                                    "executionNumber", "retryAttempt"}
    asked = api.call("ListJobExecutionsForJob", {"jobId": "j", "includeDetails": True})["executionSummaries"]
    assert asked[0]["jobExecutionSummary"]["statusDetails"] == {}
    assert asked[0]["jobExecutionSummary"]["versionNumber"] == 1


@pytest.mark.parametrize("op, params", [
    ("DescribeCertificate", {"certificateId": "ab" * 32}),
    ("UpdateCertificate", {"certificateId": "ab" * 32, "newStatus": "INACTIVE"}),
])
def test_a_certificate_that_does_not_exist_is_resource_not_found(api, op, params):
    with pytest.raises(ControlError) as e:
        api.call(op, params)
    assert (e.value.kind, e.value.message) == ("ResourceNotFoundException",
                                               f"Certificate {'ab' * 32} does not exist")
    assert ControlError.STATUS[e.value.kind] == 404

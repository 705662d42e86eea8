"""The operator's IAM policy in README.md allows every AWS call the host tool makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWS = (ROOT / "tools" / "fotatools" / "aws.py").read_text()
# boto3 calls that are not one IAM action of the same name
S3 = {"head_bucket": ["s3:ListBucket"], "create_bucket": ["s3:CreateBucket"],
      "upload_file": ["s3:PutObject", "s3:AbortMultipartUpload"]}


def readme_policy() -> dict:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```json\n(\{\"Version\".*?)\n```", text, re.S)
    assert block, "README.md has no IAM policy block"
    return json.loads(block.group(1))


def allowed(policy: dict) -> set[str]:
    out: set[str] = set()
    for st in policy["Statement"]:
        acts = st["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out


def needed() -> set[str]:
    out: set[str] = set()
    calls = set(re.findall(r"self\.iot\.([a-z_]+)\(", AWS)) - {"get_paginator"}
    calls |= set(re.findall(r'self\.iot\.get_paginator\("([a-z_]+)"\)', AWS))
    calls |= set(re.findall(r"self\.data\.([a-z_]+)\(", AWS))  # the IoT data plane: iot: actions too
    # paginators named in a table (AwsBackend.names: ("list_things", "things", "thingName"))
    calls |= set(re.findall(r'\("(list_[a-z_]+)", "[a-zA-Z]+", "[a-zA-Z]+"\)', AWS))
    out |= {"iot:" + "".join(w.capitalize() for w in c.split("_")).replace("Ota", "OTA") for c in calls}
    for c in re.findall(r"self\.s3\.([a-z_]+)\(", AWS):
        out |= set(S3[c])
    if re.search(r"self\._signer\.[a-z_]+\(", AWS):
        out.add("signer:*")
    out.add("iam:PassRole")
    return out


def test_the_readme_policy_allows_every_call_the_tool_makes():
    missing = needed() - allowed(readme_policy())
    assert not missing, f"README.md's IAM policy lacks {sorted(missing)}"


def test_the_check_sees_a_missing_action():
    policy = readme_policy()
    policy["Statement"][0]["Action"].remove("iot:CreateJob")
    assert "iot:CreateJob" in needed() - allowed(policy)


def test_the_check_sees_the_data_plane_and_the_paginators_of_a_table():
    assert {"iot:GetThingShadow", "iot:ListThings", "iot:ListThingGroups"} <= needed()

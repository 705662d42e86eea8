"""Job documents -> update plans, in MicroPython: every bad field is refused with a reason."""

import json

import pytest

from tests.device.mpy import run_json

GOOD = {"operation": "fota", "bc_idx": 1, "bc_crc": "0123456789abcdef0123456789ABCDEF",
        "bc_size": 1500000, "bc_url": "https://localhost:8443/fw/app.bin?X-Sig=abc", "version": "1.0.1"}
SLOT = 0x180000


def plan(doc, running=0, next_slot=1):
    code = f"""
import json
from fota.plan import plan, kind, DocError
doc = json.loads({json.dumps(json.dumps(doc))})
try:
    p = plan(doc, 2, {running}, {next_slot}, {SLOT})
    print(json.dumps({{"ok": [p.slot, p.size, p.md5, p.url, p.version], "kind": kind(doc),
                      "stream": p.stream}}))
except DocError as e:
    print(json.dumps({{"error": str(e), "kind": kind(doc)}}))
"""
    return run_json(code)


def changed(base, change):
    """base with change applied: a None value removes the key."""
    doc = dict(base)
    for k, v in change.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


def test_good_document_gives_a_plan():
    r = plan(GOOD)
    assert r["ok"] == [1, 1500000, GOOD["bc_crc"].lower(), GOOD["bc_url"], "1.0.1"]


def test_slot_minus_one_takes_the_next_update_slot():
    assert plan(dict(GOOD, bc_idx=-1), running=1, next_slot=0)["ok"][0] == 0


BAD = [
    ({"bc_idx": None}, "bc_idx missing"),
    ({"bc_idx": "1"}, "bc_idx must be an integer"),
    ({"bc_idx": True}, "bc_idx must be an integer"),
    ({"bc_idx": 1.0}, "bc_idx must be an integer"),
    ({"bc_idx": 0}, "running slot"),
    ({"bc_idx": 2}, "no such OTA slot"),
    ({"bc_idx": -2}, "no such OTA slot"),
    ({"bc_size": None}, "bc_size missing"),
    ({"bc_size": "1500000"}, "bc_size must be an integer"),
    ({"bc_size": 0}, "does not fit"),
    ({"bc_size": SLOT + 1}, "does not fit"),
    ({"bc_crc": None}, "bc_crc"),
    ({"bc_crc": "xyz"}, "bc_crc"),
    ({"bc_crc": "g" * 32}, "bc_crc"),
    ({"bc_crc": 12345}, "bc_crc"),
    ({"bc_url": None}, "bc_url missing"),
    ({"bc_url": "http://localhost/fw.bin"}, "https"),
    ({"bc_url": "ftp://x/y"}, "https"),
    ({"bc_url": "https://"}, "https"),
    ({"bc_url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k}"}, "placeholder"),
    ({"bc_url": ["https://x/y"]}, "bc_url missing"),
    ({"version": 101}, "version"),
]


@pytest.mark.parametrize("change,reason", BAD, ids=[f"{list(c)[0]}={list(c.values())[0]!r}" for c, _ in BAD])
def test_bad_field_is_refused(change, reason):
    r = plan(changed(GOOD, change))
    assert "error" in r, r
    assert reason in r["error"]


@pytest.mark.parametrize("doc,kind", [
    ({"operation": "fota"}, "fota"),
    ({"afr_ota": {"protocols": ["MQTT"], "files": []}}, "afr_ota"),  # refused: see below
    ({"operation": "reboot"}, None),
    ([1, 2], None),
])
def test_document_kinds(doc, kind):
    r = plan(doc)
    assert r["kind"] == kind
    assert "error" in r


NORDIC = {"operation": "app_fw_update", "fwversion": "v1.0.2", "size": 181124,
          "location": {"protocol": "https:", "host": "bucket.s3.amazonaws.com", "path": "fw/app.bin?X-Amz-Signature=ab"}}


def test_nordic_aws_fota_document_gives_a_plan_without_hash():
    r = plan(NORDIC, running=1, next_slot=0)
    assert r["kind"] == "aws_fota"
    assert r["ok"] == [0, 181124, None, "https://bucket.s3.amazonaws.com/fw/app.bin?X-Amz-Signature=ab", "v1.0.2"]


NORDIC_BAD = [
    ({"size": None}, "size missing"),
    ({"size": SLOT + 1}, "does not fit"),
    ({"location": None}, "location missing"),
    ({"location": {"protocol": "http:", "host": "h", "path": "p"}}, "location.protocol must be https:"),
    ({"location": {"protocol": "https:", "host": "", "path": "p"}}, "location needs a host and a path"),
    ({"location": {"protocol": "https:", "host": "h/x", "path": "p"}}, "location needs a host and a path"),
    ({"location": {"protocol": "https:", "host": "h", "path": None}}, "location needs a host and a path"),
    ({"fwversion": 2}, "fwversion must be a string"),
]


@pytest.mark.parametrize("change,reason", NORDIC_BAD, ids=[str(c)[:40] for c, _ in NORDIC_BAD])
def test_bad_nordic_document_is_refused(change, reason):
    r = plan(changed(NORDIC, change))
    assert reason in r.get("error", ""), r


AFR = {"afr_ota": {"protocols": ["HTTP", "MQTT"], "streamname": "AFR_OTA-1", "files": [{
    "filepath": "/fw.bin", "filesize": 181124, "fileid": 0, "certfile": "signer.crt",
    "update_data_url": "https://bucket.s3.amazonaws.com/fw.bin?X-Amz-Signature=ab",
    "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": "MEUCIQ=="}]}}


def test_freertos_afr_ota_document_over_http_gives_a_plan():
    r = plan(AFR, running=1, next_slot=0)
    assert r["kind"] == "afr_ota"
    assert r["ok"] == [0, 181124, None, AFR["afr_ota"]["files"][0]["update_data_url"], None]


def test_afr_ota_takes_the_first_protocol_it_can_serve():
    r = plan(changed(AFR, {"afr_ota": dict(AFR["afr_ota"], protocols=["MQTT", "HTTP"])}), running=1, next_slot=0)
    assert r["ok"] == [0, 181124, None, None, None] and r["stream"] == ["AFR_OTA-1", 0]
    assert plan(AFR)["stream"] is None  # HTTP first


def _afr(ota_change=None, file_change=None):
    ota = dict(AFR["afr_ota"], files=[changed(AFR["afr_ota"]["files"][0], file_change or {})])
    return {"afr_ota": changed(ota, ota_change or {})}


AFR_BAD = [
    ({"afr_ota": []}, "afr_ota must be an object"),
    (_afr({"files": []}), "afr_ota.files missing"),
    (_afr({"protocols": ["FTP"]}), "none of the protocols"),
    (_afr({"protocols": ["MQTT"], "streamname": "a/b"}), "afr_ota.streamname missing or not a stream id"),
    (_afr({"protocols": "HTTP"}), "afr_ota.protocols missing"),
    (_afr(file_change={"fileid": 1}), "no file for this processor (fileid 0)"),
    (_afr({"files": [AFR["afr_ota"]["files"][0]] * 2}), "file 0 is listed twice"),
    (_afr(file_change={"fileid": 256}), "fileid must be an integer 0..255"),
    (_afr(file_change={"fileid": "1"}), "fileid must be an integer 0..255"),
    (_afr(file_change={"filesize": None}), "file 0: filesize missing"),
    (_afr(file_change={"filesize": 0}), "file 0: filesize 0 is not a size"),
    (_afr(file_change={"filepath": 7}), "file 0: filepath must be a string"),
    (_afr(file_change={"filesize": SLOT + 1}), "does not fit"),
    (_afr(file_change={"update_data_url": "http://x/y"}), "update_data_url must be an https URL"),
    (_afr(file_change={"sig-sha256-ecdsa": None}), "sig-sha256-ecdsa must be a base64 signature"),
    (_afr(file_change={"sig-sha256-ecdsa": "@@@"}), "sig-sha256-ecdsa must be a base64 signature"),
]


@pytest.mark.parametrize("doc,reason", AFR_BAD, ids=[r for _, r in AFR_BAD])
def test_bad_afr_ota_document_is_refused(doc, reason):
    assert reason in plan(doc).get("error", ""), plan(doc)


def files(doc):
    code = f"""
import json
from fota.plan import files, DocError
try:
    print(json.dumps([[f.id, f.size, f.path, f.stream, f.url, len(f.sig)] for f in files(json.loads({json.dumps(json.dumps(doc))}))]))
except DocError as e:
    print(json.dumps(str(e)))
"""
    return run_json(code)


def test_a_job_of_several_files_lists_each_with_its_stream_file():
    f0 = dict(AFR["afr_ota"]["files"][0])
    f1 = dict(f0, fileid=1, filepath="mcu.signed.bin", filesize=24576)
    f2 = dict(f0, fileid=2, filepath="/sd/config.bin", filesize=310)
    doc = {"afr_ota": dict(AFR["afr_ota"], protocols=["MQTT"], files=[f0, f1, f2])}
    assert files(doc) == [[0, 181124, "/fw.bin", ["AFR_OTA-1", 0], None, 4],
                          [1, 24576, "mcu.signed.bin", ["AFR_OTA-1", 1], None, 4],
                          [2, 310, "/sd/config.bin", ["AFR_OTA-1", 2], None, 4]]
    assert plan(doc, running=1, next_slot=0)["ok"] == [0, 181124, None, None, None]  # file 0's slot


def test_a_job_without_file_0_has_no_plan_for_this_processor_but_lists_its_files():
    f1 = dict(AFR["afr_ota"]["files"][0], fileid=1)
    doc = {"afr_ota": dict(AFR["afr_ota"], files=[f1])}
    assert files(doc)[0][:2] == [1, 181124]
    assert plan(doc)["error"] == "afr_ota: no file for this processor (fileid 0)"


def test_a_bad_field_of_a_file_names_the_file():
    f0 = AFR["afr_ota"]["files"][0]
    doc = {"afr_ota": dict(AFR["afr_ota"], files=[f0, dict(f0, fileid=3, **{"sig-sha256-ecdsa": None})])}
    assert files(doc) == "file 3: sig-sha256-ecdsa must be a base64 signature"
    assert files({"operation": "fota"}) == []


@pytest.mark.parametrize("wbits,ok", [(8, False), (9, True), (12, True), (13, False)])
def test_deflate_windows_of_2_9_to_2_12_bytes(wbits, ok):
    r = plan(dict(GOOD, bc_enc="deflate", bc_wbits=wbits, bc_zsize=1000))
    if ok:
        assert r["ok"][1] == GOOD["bc_size"], r
    else:
        assert r["error"] == f"bc_wbits {wbits}: this device inflates windows of 2**9..2**12 bytes"


def test_an_application_is_sent_as_it_is():
    app = dict(GOOD, target="app")
    assert plan(app)["kind"] == "app" and "ok" in plan(app)
    r = plan(dict(app, bc_enc="deflate", bc_wbits=12, bc_zsize=1000))
    assert r["error"] == "bc_enc is for firmware images; an application is sent as it is"

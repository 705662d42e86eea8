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


# --- names a document gives the device: refused unless they are names ----------------------

LONGEST = "n" * 255  # littlefs's LFS2_NAME_MAX, in bytes
FILEPATHS_OK = ["/fw.bin", "fw.bin", "/sd/www/index.html", "./fw.bin", "a..b", "...", "fw 1.bin",
                "\u00e9t\u00e9.bin", "no\u00a0break", LONGEST, "/d/" + LONGEST, "\u00e9" * 127 + "n"]
FILEPATHS_BAD = [
    ("fpga.bit\u0000", "filepath 'fpga.bit\\x00' holds a control character"),
    ("\u0000", "holds a control character"),
    ("fpga\u0001.bit", "holds a control character"),
    ("fpga.bit\n", "holds a control character"),
    ("\u001f.bin", "holds a control character"),
    ("a\u007fb", "holds a control character"),
    ("a\u0080b", "holds a control character"),
    ("a\u009fb", "holds a control character"),
    ("..", "filepath '..': .. is not a name"),
    ("../fw.bin", ".. is not a name"),
    ("/sd/../main.py", ".. is not a name"),
    ("www/..", ".. is not a name"),
    ("..\\main.py", ".. is not a name"),  # FatFs takes "\" as a separator too
    ("a\\..\\b", ".. is not a name"),
    ("n" * 256, "a name of 256 bytes (at most 255)"),
    ("/d/" + "n" * 256 + "/x", "a name of 256 bytes (at most 255)"),
    ("\u00e9" * 128, "a name of 256 bytes (at most 255)"),  # 128 characters, 256 bytes
]


@pytest.mark.parametrize("path", FILEPATHS_OK, ids=[repr(p)[:30] for p in FILEPATHS_OK])
def test_a_filepath_that_is_a_path_is_taken(path):
    assert files(_afr(file_change={"filepath": path}))[0][2] == path


@pytest.mark.parametrize("path,reason", FILEPATHS_BAD, ids=[repr(p)[:30] for p, _ in FILEPATHS_BAD])
def test_a_filepath_that_is_no_path_is_refused(path, reason):
    got = files(_afr(file_change={"filepath": path}))
    assert isinstance(got, str) and got.startswith("file 0: filepath ") and reason in got, got


NAMES = [  # (the document, whether it is taken)
    (_afr({"protocols": ["MQTT"], "streamname": "s" * 128}), True),
    (_afr({"protocols": ["MQTT"], "streamname": "s" * 129}), False),
    (_afr({"protocols": ["MQTT"], "streamname": "AFR_OTA-1\u0000"}), False),
    (_afr({"protocols": ["MQTT"], "streamname": "AFR\nOTA"}), False),
    (_afr({"protocols": ["MQTT"], "streamname": ""}), False),
    (dict(GOOD, bc_idx=-1, version="v" * 31), True),
    (dict(GOOD, bc_idx=-1, version="v" * 32), False),
    (dict(GOOD, bc_idx=-1, version=""), False),
    (dict(GOOD, bc_idx=-1, version="1.0.1\u0000"), False),
    (dict(GOOD, bc_idx=-1, version="1.0\u00851"), False),
    (changed(NORDIC, {"fwversion": "v" * 31}), True),
    (changed(NORDIC, {"fwversion": "v" * 32}), False),
    (changed(NORDIC, {"fwversion": "v1.0.2\u0007"}), False),
]


@pytest.mark.parametrize("doc,taken", NAMES, ids=[f"{i}-{t}" for i, (_, t) in enumerate(NAMES)])
def test_stream_ids_and_versions_are_names(doc, taken):
    r = plan(doc, running=1, next_slot=0)
    if taken:
        assert "ok" in r, r
    else:
        assert ("afr_ota.streamname missing or not a stream id" in r["error"]
                or "1 to 31 characters, none a control character" in r["error"]), r


def test_a_path_of_thousands_of_parts_is_checked_in_little_memory():
    # 4,000 parts in 8,000 characters: the check looks at them in place (a list of 4,000
    # strings would take more heap than this one has).
    from tests.device.mpy import run

    doc = _afr(file_change={"filepath": "a/" * 4000 + "fw.bin"})
    code = f"""
import json
from fota.plan import files
doc = json.loads({json.dumps(json.dumps(doc))})
print(json.dumps([len(f.path) for f in files(doc)]))
"""
    out = run(code, heapsize="96k")
    assert out.stdout.strip().splitlines()[-1] == "[8006]"


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

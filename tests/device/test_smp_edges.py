"""lib/fota/smp.py's reading of an SMP server's error answers, in MicroPython, against the
codes of the `smp` package (Zephyr's MGMT_ERR_* and IMG_MGMT_ERR_*): every code, both ends of
the tables, both answer forms (SMP version 1 "rc", version 2 "err")."""

from __future__ import annotations

import json

from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR

from tests.device.mpy import run_json

# the image management codes an update can meet -> what the device calls them
IMAGE = {IMG_MGMT_ERR.UNKNOWN: "unknown", IMG_MGMT_ERR.NO_IMAGE: "no image", IMG_MGMT_ERR.NO_TLVS: "no TLVs",
         IMG_MGMT_ERR.INVALID_TLV: "invalid TLV", IMG_MGMT_ERR.HASH_NOT_FOUND: "hash not found",
         IMG_MGMT_ERR.NO_FREE_SLOT: "no free slot", IMG_MGMT_ERR.INVALID_SLOT: "invalid slot",
         IMG_MGMT_ERR.INVALID_OFFSET: "invalid offset", IMG_MGMT_ERR.INVALID_LENGTH: "invalid length",
         IMG_MGMT_ERR.INVALID_IMAGE_HEADER: "invalid image header",
         IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC: "bad image header magic",
         IMG_MGMT_ERR.INVALID_HASH: "invalid hash",
         IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER: "current version is newer",
         IMG_MGMT_ERR.IMAGE_ALREADY_PENDING: "image already pending",
         IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE: "image too large for its slot",
         IMG_MGMT_ERR.INVALID_IMAGE_DATA_OVERRUN: "image data overrun",
         IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: "the running image cannot be set for test"}

CHECK = """
import json
from fota import smp
out = []
for a in %s:
    try:
        out.append(["ok", smp._check(a, "upload") == a])
    except smp.SmpError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def check(answers: list[dict]) -> list:
    return run_json(CHECK % repr(answers))


def test_image_management_errors_are_named_as_zephyr_numbers_them():
    codes = list(range(0, 36))
    got = check([{"err": {"group": 1, "rc": rc}} for rc in codes])
    assert got[0] == ["ok", True]
    for rc, text in zip(codes[1:], got[1:]):
        assert text == "upload refused: group 1 rc %d (%s)" % (rc, IMAGE.get(rc, "error")), rc
    # another group's rc is not an image code
    assert check([{"err": {"group": 0, "rc": 4}}, {"err": {"group": 1, "rc": 4}, "rsn": "why"},
                  {"err": {"group": 1, "rc": 4}, "rsn": ""}]) == [
        "upload refused: group 0 rc 4 (error)", "upload refused: group 1 rc 4 (no TLVs) - why",
        "upload refused: group 1 rc 4 (no TLVs)"]


def test_general_errors_are_named_as_zephyr_numbers_them():
    names = {e.value: e.name for e in MGMT_ERR}
    got = check([{"rc": rc} for rc in range(-1, 16)] + [{"rc": True}, {"rc": "1"}, {}, {"rc": 0, "off": 5}])
    for rc, text in zip(range(-1, 16), got):
        if rc == 0:
            assert text == ["ok", True]
        elif 1 <= rc <= 13:
            word = {"EUNKNOWN": "unknown", "ENOMEM": "no memory", "EINVAL": "invalid argument",
                    "ETIMEOUT": "timeout", "ENOENT": "no such entry", "EBADSTATE": "bad state",
                    "EMSGSIZE": "message too large", "ENOTSUP": "not supported", "ECORRUPT": "corrupt",
                    "EBUSY": "busy", "EACCESSDENIED": "access denied", "UNSUPPORTED_TOO_OLD": "protocol too old",
                    "UNSUPPORTED_TOO_NEW": "protocol too new"}[names[rc]]
            assert text == "upload refused: rc %d (%s)" % (rc, word), rc
        else:
            assert text == "upload refused: rc %d (error)" % rc, rc
    assert got[-4:] == [["ok", True]] * 4  # an rc that is no integer, or none, is no error

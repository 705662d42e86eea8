"""Hostile job documents, generated from the schemas of the three dialects the device reads.

Every field of each dialect is taken away, given a value of every wrong type, pushed out of
range and blown up in size; operations are misspelled; documents that are not objects at all
are included. None of them may make the device write a byte to flash: each ends FAILED (a
firmware document it cannot carry out) or REJECTED (not a firmware document).

`documents(url, md5, size)` -> [(name, document, expected status)]. `url` must lead nowhere
(a refused port): a generated document that happens to be valid still cannot write anything.
"""

from __future__ import annotations

from typing import Any

BIG = 8000  # characters of an oversized string: large, yet the whole document stays < 32 KB
SLOT = 0x180000

# a value of every JSON type, for "mistyped"
TYPES: dict[str, Any] = {"null": None, "bool": True, "int": 7, "float": 1.5, "str": "x",
                         "list": [1], "object": {"a": 1}}


def _fota(url: str, md5: str, size: int) -> dict[str, Any]:
    return {"operation": "fota", "bc_idx": -1, "bc_crc": md5, "bc_size": size, "bc_url": url,
            "version": "9.9.9"}


def _aws_fota(url: str, size: int) -> dict[str, Any]:
    host, _, path = url[len("https://"):].partition("/")
    return {"operation": "app_fw_update", "fwversion": "v9.9.9", "size": size,
            "location": {"protocol": "https:", "host": host, "path": path}}


def _afr_ota(url: str, size: int) -> dict[str, Any]:
    return {"afr_ota": {"protocols": ["HTTP"], "streamname": "s-1", "files": [{
        "filepath": "/fw.bin", "filesize": size, "fileid": 0, "certfile": "cert.pem",
        "update_data_url": url, "auth_scheme": "aws.s3.presigned",
        "sig-sha256-ecdsa": "MEUCIQDx"}]}}


# type name -> the types that are right for a field
FOTA_FIELDS = {"bc_idx": ("int",), "bc_crc": ("str",), "bc_size": ("int",), "bc_url": ("str",),
               "version": ("str",), "bc_sig": ("str",)}
FOTA_RANGE = {
    "bc_idx": [-2, 2, 3, 255, 2**31, -2**31, 2**63, 0],  # 0 is the running slot
    "bc_size": [0, -1, SLOT + 1, SLOT + 4096, 2**32, 2**63, -2**63],
    "bc_crc": ["", "0" * 31, "0" * 33, "g" * 32, "0x" + "0" * 30, " " * 32],
    "bc_url": ["", "http://127.0.0.1:1/fw.bin", "ftp://x/y", "https://", "https:///fw.bin",
               "https://:443/fw.bin", "https://host:port/fw", "https://a b/fw",
               "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/no-such-bucket/k}", "file:///etc/passwd",
               "https://127.0.0.1:99999/fw.bin"],
    "bc_sig": ["", "!!!not base64!!!"],
}
# a compressed image (bc_enc deflate): its fields on top of a valid fota document
DEFLATE_FIELDS = {"bc_enc": ("str", "null"), "bc_wbits": ("int",), "bc_zsize": ("int",)}
DEFLATE_RANGE = {
    "bc_enc": ["", "DEFLATE", "deflate ", "gzip", "zlib", "lzma", "none"],
    "bc_wbits": [0, -1, 8, 13, 15, 16, 2**31, 2**63],
    "bc_zsize": [0, -1, SLOT + 1, 2**32, 2**63],
}
# a delta update (bc_enc delta): a patch for a base image, the whole image as bc_full
DELTA_FIELDS = {"bc_base": ("str",), "bc_zsize": ("int",), "bc_full": ("str", "null")}
DELTA_RANGE = {
    "bc_base": ["", "0" * 63, "0" * 65, "g" * 64, "0x" + "0" * 62, " " * 64],
    "bc_zsize": [0, -1, SLOT + 1, 2**32, 2**63],
    "bc_full": ["", "http://h/fw.bin", "https://", "ftp://x/y"],
}
AWS_FIELDS = {"size": ("int",), "fwversion": ("str",), "location": ("object",)}
AWS_RANGE = {"size": [0, -1, SLOT + 1, 2**63]}
LOCATION_BAD = [
    {"protocol": "http:", "host": "h", "path": "p"},
    {"protocol": "https:", "host": "", "path": "p"},
    {"protocol": "https:", "host": "a/b", "path": "p"},
    {"protocol": "https:", "host": "h", "path": ""},
    {"protocol": "https:", "host": 5, "path": "p"},
    {"protocol": "https:", "host": "h", "path": ["p"]},
    {"protocol": "https:", "host": "h"},
    {"protocol": "https:", "path": "p"},
    {"host": "h", "path": "p"},
    {},
]
AFR_FILE_FIELDS = {"filesize": ("int",), "fileid": ("int",), "update_data_url": ("str",),
                   "sig-sha256-ecdsa": ("str",)}
AFR_RANGE = {"filesize": [0, -1, SLOT + 1, 2**63], "fileid": [1, 2, -1, 255],
             "update_data_url": ["", "http://h/p", "https://"], "sig-sha256-ecdsa": ["", "***"]}
WRONG_OPERATIONS = ["FOTA", "fota ", " fota", "Fota", "update", "ota", "reboot", "", None, 1,
                    ["fota"], {"op": "fota"}, "app_fw_update ", "afr_ota",
                    "x" * 3000, "a\nb\u0000c\u007f\u0085\u200b\u00e9"]  # too long / odd to quote
NOT_OBJECTS = [[], [1, 2], ["fota"], "fota", "", 0, 1.5, True, None,
               [{"operation": "fota"}]]


def _variants(base: dict[str, Any], fields: dict[str, tuple[str, ...]],
              ranges: dict[str, list[Any]], optional: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for field, ok_types in fields.items():
        if field not in optional:
            doc = dict(base)
            doc.pop(field, None)
            out.append((f"{field} missing", doc))
        for tname, value in TYPES.items():
            if tname in ok_types:
                continue
            doc = dict(base)
            doc[field] = value
            out.append((f"{field} {tname}", doc))
        for value in ranges.get(field, []):
            doc = dict(base)
            doc[field] = value
            name = f"{field}={value!r}"
            out.append((name if len(name) <= 60 else f"{name[:48]}... ({len(str(value))} chars)", doc))
        if "str" in ok_types:
            doc = dict(base)
            doc[field] = "9" * BIG if field != "bc_url" else base[field] + "?" + "a" * BIG
            out.append((f"{field} oversized", doc))
    return out


def documents(url: str, md5: str, size: int) -> list[tuple[str, Any, str]]:
    """Hostile documents for an image of `size` bytes with MD5 `md5`, downloaded from `url`
    (which must lead nowhere)."""
    out: list[tuple[str, Any, str]] = []
    fota = _fota(url, md5, size)
    # "version" is optional: wrong types are hostile, its absence is not
    for name, doc in _variants(fota, FOTA_FIELDS, FOTA_RANGE, optional=("version", "bc_sig")):
        out.append(("fota: " + name, doc, "FAILED"))
    for op in WRONG_OPERATIONS:
        doc = dict(fota)
        doc["operation"] = op
        out.append((f"operation={op!r}", doc, "REJECTED"))
    out.append(("fota: no fields", {"operation": "fota"}, "FAILED"))
    deflated = dict(fota, bc_enc="deflate", bc_wbits=12, bc_zsize=size // 2)
    # bc_enc missing or null is the image itself: still FAILED (the URL leads nowhere)
    for name, doc in _variants(deflated, DEFLATE_FIELDS, DEFLATE_RANGE):
        out.append(("fota deflate: " + name, doc, "FAILED"))
    delta = dict(fota, bc_enc="delta", bc_base="ab" * 32, bc_zsize=size // 4, bc_full=url)
    # bc_full missing or null: the patch alone, for another base than the running one
    for name, doc in _variants(delta, DELTA_FIELDS, DELTA_RANGE, optional=("bc_full",)):
        out.append(("fota delta: " + name, doc, "FAILED"))
    out.append(("fota: every field null", {k: (None if k != "operation" else "fota") for k in fota}, "FAILED"))

    aws = _aws_fota(url, size)
    for name, doc in _variants(aws, AWS_FIELDS, AWS_RANGE, optional=("fwversion",)):
        out.append(("aws_fota: " + name, doc, "FAILED"))
    for i, loc in enumerate(LOCATION_BAD):
        doc = dict(aws)
        doc["location"] = loc
        out.append((f"aws_fota: location #{i}", doc, "FAILED"))

    afr = _afr_ota(url, size)
    file0 = afr["afr_ota"]["files"][0]
    for name, f in _variants(file0, AFR_FILE_FIELDS, AFR_RANGE, optional=("fileid",)):
        out.append(("afr_ota: " + name, {"afr_ota": dict(afr["afr_ota"], files=[f])}, "FAILED"))
    for name, ota in [("afr_ota null", None), ("afr_ota list", []), ("afr_ota str", "x"),
                      ("files missing", {"protocols": ["HTTP"]}),
                      ("files empty", {"protocols": ["HTTP"], "files": []}),
                      ("files not objects", {"protocols": ["HTTP"], "files": [1]}),
                      ("two files", {"protocols": ["HTTP"], "files": [file0, dict(file0, fileid=1)]}),
                      ("protocols missing", {"files": [file0]}),
                      ("protocols str", {"protocols": "HTTP", "files": [file0]}),
                      ("protocols unknown", {"protocols": ["FTP", "COAP"], "files": [file0]}),
                      ("protocols empty", {"protocols": [], "files": [file0]}),
                      ("MQTT without streamname", {"protocols": ["MQTT"], "files": [file0]}),
                      ("MQTT streamname with /", {"protocols": ["MQTT"], "streamname": "a/b", "files": [file0]}),
                      ("MQTT streamname with #", {"protocols": ["MQTT"], "streamname": "#", "files": [file0]}),
                      ("MQTT streamname oversized", {"protocols": ["MQTT"], "streamname": "s" * BIG,
                                                     "files": [file0]})]:
        out.append(("afr_ota: " + name, {"afr_ota": ota}, "FAILED"))

    # odd shapes: deep nesting, unknown fields, characters a parser may choke on
    deep = 1
    for _ in range(200):
        deep = [deep]
    for name, doc in [("deeply nested extra field", dict(fota, extra=deep)),
                      ("deeply nested bc_idx", dict(fota, bc_idx=deep)),
                      ("oversized unknown field", dict(fota, padding="p" * (3 * BIG))),
                      ("many unknown fields", dict(fota, **{"k%d" % i: i for i in range(500)})),
                      ("bc_crc with NUL", dict(fota, bc_crc="\u0000" * 32)),
                      ("bc_crc non-ASCII", dict(fota, bc_crc="\u00e9" * 32)),
                      ("bc_url non-ASCII host", dict(fota, bc_url="https://\u00e9\u00e9.example/fw.bin")),
                      ("bc_url with NUL", dict(fota, bc_url=url + "\u0000")),
                      ("version non-ASCII", dict(fota, version="\u2603" * 40)),
                      ("bc_sig long base64", dict(fota, bc_sig="A" * (2 * BIG)))]:
        out.append(("fota: " + name, doc, "FAILED"))
    for value in NOT_OBJECTS:
        out.append((f"not an object: {value!r}"[:60], value, "REJECTED"))
    return out

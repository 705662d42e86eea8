# Job document -> update plan: the one place where a document's fields are read.
#
# A Zerynth-style FOTA document:
#   {"operation": "fota", "bc_idx": 1, "bc_crc": "<md5 hex>", "bc_size": 1500000,
#    "bc_url": "https://...", "version": "1.0.1", "bc_sig": "<base64 DER ECDSA P-256>"}
# bc_idx is the OTA slot to write; -1 lets the device take its next update slot (a fleet's
# devices do not all run from the same slot). "version" is optional and only reported.
# bc_sig, optional, signs SHA-256 of the image (`fota build --sign`); a device configured
# with a signer key requires it.
#
# The same document with "target": "app" is an application release (a ROMFS image, see
# apps.py): bc_idx is then the application slot (0 or 1; -1: the one that does not run),
# bc_size must fit that slot. "target" absent or "firmware": a firmware image.
#
# An nRF Connect SDK aws_fota document is carried out too, over HTTPS only:
#   {"operation": "app_fw_update", "fwversion": "v1.0.2", "size": 181124,
#    "location": {"protocol": "https:", "host": "bucket.s3.amazonaws.com", "path": "fw.bin"}}
# It has no hash: the image's own SHA-256 (checked by set_boot) and header stand for it.
#
# A FreeRTOS OTA ("afr_ota") document is carried out when it has one file, for the main
# processor (fileid 0), with its code-signing signature:
#   {"afr_ota": {"protocols": ["MQTT", "HTTP"], "streamname": "...", "files": [{
#     "fileid": 0, "filesize": 181124, "update_data_url": "https://...",
#     "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": "<base64 DER>", ...}]}}
# The first protocol of the list that the document can serve is used: MQTT (the file of the
# stream `streamname`, over AWS IoT MQTT-based file delivery) or HTTP (`update_data_url`).
# Files for other processors are refused for now.

import binascii

HEX = "0123456789abcdef"


class DocError(Exception):
    pass


class Plan:
    def __init__(self, slot, size, md5, url, version, sig=None, kind="fota", stream=None):
        self.kind = kind
        self.stream = stream  # (stream id, file id) to read over MQTT instead of url
        self.slot = slot  # index of the OTA slot to write
        self.size = size
        self.md5 = md5  # hex, or None where the document carries no hash
        self.url = url
        self.version = version
        self.sig = sig  # DER signature bytes, or None


def kind(doc):
    # "fota", "app", "afr_ota", "aws_fota", or None for a job that is not an update.
    if not isinstance(doc, dict):
        return None
    op = doc.get("operation")
    if op == "fota":
        return "app" if doc.get("target") == "app" else "fota"
    if op == "app_fw_update":
        return "aws_fota"
    if "afr_ota" in doc:
        return "afr_ota"
    return None


def plan(doc, nslots, running, next_slot, slot_size):
    # -> Plan, or DocError saying which field is wrong. Touches nothing.
    k = kind(doc)
    if k is None:
        raise DocError("not a firmware update document")
    if k == "aws_fota":
        return _aws_fota(doc, running, next_slot, slot_size)
    if k == "afr_ota":
        return _afr_ota(doc["afr_ota"], next_slot, slot_size)
    if k == "fota" and doc.get("target", "firmware") != "firmware":
        raise DocError("target must be \"firmware\" or \"app\"")
    idx = _int(doc, "bc_idx")
    if idx == -1:
        idx = next_slot
    if not 0 <= idx < nslots:
        raise DocError("bc_idx %d: no such OTA slot (0..%d)" % (idx, nslots - 1))
    if idx == running:
        raise DocError("bc_idx %d is the running slot" % idx)
    size = _int(doc, "bc_size")
    if not 0 < size <= slot_size:
        raise DocError("bc_size %d does not fit the %d-byte slot" % (size, slot_size))
    md5 = doc.get("bc_crc")
    if not isinstance(md5, str) or len(md5) != 32 or any(c not in HEX for c in md5.lower()):
        raise DocError("bc_crc must be the image's MD5 as 32 hex digits")
    url = _url(doc.get("bc_url"), "bc_url")
    version = doc.get("version")
    if version is not None and not isinstance(version, str):
        raise DocError("version must be a string")
    sig = doc.get("bc_sig")
    if sig is not None:
        sig = _b64(sig, "bc_sig")
    return Plan(idx, size, md5.lower(), url, version, sig, k)


def _b64(text, key):
    try:
        raw = binascii.a2b_base64(text)
    except (TypeError, ValueError):
        raw = None
    if not raw:
        raise DocError("%s must be a base64 signature" % key)
    return raw


def _afr_ota(ota, next_slot, slot_size):
    if not isinstance(ota, dict):
        raise DocError("afr_ota must be an object")
    files = ota.get("files")
    if not isinstance(files, list) or not files or not isinstance(files[0], dict):
        raise DocError("afr_ota.files missing")
    f = files[0]
    if len(files) > 1 or f.get("fileid", 0) != 0:
        raise DocError("afr_ota: only one file, for this processor (fileid 0), is supported")
    size = _int(f, "filesize")
    if not 0 < size <= slot_size:
        raise DocError("filesize %d does not fit the %d-byte slot" % (size, slot_size))
    sig = _b64(f.get("sig-sha256-ecdsa"), "sig-sha256-ecdsa")
    protocols = ota.get("protocols")
    if not isinstance(protocols, list):
        raise DocError("afr_ota.protocols missing")
    for proto in protocols:
        if proto == "MQTT":
            stream = ota.get("streamname")
            if not isinstance(stream, str) or not stream or "/" in stream or "+" in stream or "#" in stream:
                raise DocError("afr_ota.streamname missing or not a stream id")
            return Plan(next_slot, size, None, None, None, sig, "afr_ota", (stream, 0))
        if proto == "HTTP":
            url = _url(f.get("update_data_url"), "update_data_url")
            return Plan(next_slot, size, None, url, None, sig, "afr_ota")
    raise DocError("afr_ota: none of the protocols %s is supported (MQTT, HTTP)" % protocols)


def _aws_fota(doc, running, next_slot, slot_size):
    size = _int(doc, "size")
    if not 0 < size <= slot_size:
        raise DocError("size %d does not fit the %d-byte slot" % (size, slot_size))
    loc = doc.get("location")
    if not isinstance(loc, dict):
        raise DocError("location missing")
    host, path = loc.get("host"), loc.get("path")
    if loc.get("protocol") != "https:":
        raise DocError("location.protocol must be https:")
    if not isinstance(host, str) or not host or "/" in host or not isinstance(path, str) or not path:
        raise DocError("location needs a host and a path")
    version = doc.get("fwversion")
    if version is not None and not isinstance(version, str):
        raise DocError("fwversion must be a string")
    url = _url("https://%s/%s" % (host, path.lstrip("/")), "location")
    return Plan(next_slot, size, None, url, version, None, "aws_fota")


def _url(url, key):
    if not isinstance(url, str):
        raise DocError("%s missing" % key)
    if url.startswith("${"):
        raise DocError("%s is an unresolved placeholder" % key)
    if not url.startswith("https://") or len(url) < 9 or url[8] in "/:" or " " in url:
        raise DocError("%s must be an https URL" % key)
    return url


def _int(doc, key):
    v = doc.get(key)
    if v is None:
        raise DocError("%s missing" % key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise DocError("%s must be an integer" % key)
    return v

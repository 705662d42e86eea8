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
# How the transferred file becomes the image (the plan's codec): bc_size, bc_crc and bc_sig
# always speak of the image written to flash; "bc_enc" names what travels instead of it:
#   absent        the image itself
#   "deflate"     the image cut into 64 KB pieces, each its own zlib stream (`fota build
#                 --compress`): "bc_wbits" its window (2**bits bytes of RAM, at most
#                 2**MAX_WBITS here), "bc_zsize" the bytes transferred
#   "delta"       a detools sequential patch (`fota build --from OLD.bin`; none, crle or
#                 heatshrink inside) that makes the image from the running one: "bc_base"
#                 the SHA-256 appended to the base image (64 hex digits, what `esptool
#                 image-info` calls its validation hash), "bc_zsize" the patch's bytes;
#                 optional "bc_full", the URL of the whole image for devices that run
#                 another base. Without it, such a device refuses the job (base(), before
#                 any flash operation) with both hashes in the reason.
# Plan.codec names it (None: the image itself), Plan.args holds its parameters, Plan.xsize
# is the size of the file transferred. install._image turns the transport into image bytes.
#
# An nRF Connect SDK aws_fota document is carried out too, over HTTPS only:
#   {"operation": "app_fw_update", "fwversion": "v1.0.2", "size": 181124,
#    "location": {"protocol": "https:", "host": "bucket.s3.amazonaws.com", "path": "fw.bin"}}
# It has no hash: the image's own SHA-256 (checked by set_boot) and header stand for it.
#
# A FreeRTOS OTA ("afr_ota") document, as AWS IoT's OTA Update Manager makes it, lists files
# by file id, each with its code-signing signature: fileid 0 is this processor's firmware,
# the others go to the targets the application registered (fota.targets):
#   {"afr_ota": {"protocols": ["MQTT", "HTTP"], "streamname": "...", "files": [{
#     "fileid": 0, "filesize": 181124, "update_data_url": "https://...",
#     "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": "<base64 DER>", ...}]}}
# The first protocol of the list that the document can serve is used: MQTT (the file of the
# stream `streamname`, over AWS IoT MQTT-based file delivery) or HTTP (`update_data_url`).
# files(doc) checks and lists them all; plan(doc) is file 0's slot.
#
# Names a document gives the device are names, or the document is refused (DocError):
#   filepath     a path whose last part a file target (fota/target.py) takes as the name of
#                the file it writes: no control character (MicroPython's VFS ends a path at
#                NUL, FatFs at any character below a space), no part "..", no part longer
#                than NAME_MAX bytes. A leading "/" is the device path AWS IoT's OTA Update
#                Manager writes there ("/fw.bin"): the device never follows it, only the last
#                part names a file, within the folder the application gave its target.
#   streamname   one MQTT topic level: 1..STREAM_MAX characters, no "/", "+", "#", no
#                control character (MQTT forbids NUL in a topic)
#   version, fwversion   1..VERSION_MAX characters, no control character: the document's
#                version becomes an application's version where its image has no VERSION

import binascii
import json

HEX = "0123456789abcdef"
MAX_WBITS = 12  # the largest deflate window this device allocates: 2**12 = 4 KB
NAME_MAX = 255  # bytes in one name of a file: littlefs's LFS2_NAME_MAX (lib/littlefs/lfs2.h),
#                 which MicroPython's VfsLfs2 keeps (extmod/vfs_lfsx.c sets no name_max); FatFs
#                 names are 255 UTF-16 units at most (FF_MAX_LFN), never more than their bytes
STREAM_MAX = 128  # characters in a stream id (AWS IoT CreateStream: [a-zA-Z0-9_-]{1,128})
VERSION_MAX = 31  # characters in a version, as esp_app_desc_t's version (char[32]) and an
#                   application's VERSION file hold


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
        self.codec = None  # how the transferred file becomes the image: None (it is the image)
        self.args = None  # or "deflate" ({"wbits": n}); the codec's parameters
        self.xsize = size  # bytes transferred


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
        return _afr_ota(doc, next_slot, slot_size)
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
    version = _version(doc, "version")
    sig = doc.get("bc_sig")
    if sig is not None:
        sig = _b64(sig, "bc_sig")
    p = Plan(idx, size, md5.lower(), url, version, sig, k)
    _codec(doc, p, slot_size)
    if k == "app" and p.codec:
        raise DocError("bc_enc is for firmware images; an application is sent as it is")
    return p


def _codec(doc, p, slot_size):
    enc = doc.get("bc_enc")
    if enc is None:
        return
    if enc == "deflate":
        wbits = _int(doc, "bc_wbits")
        if not 9 <= wbits <= MAX_WBITS:
            raise DocError("bc_wbits %d: this device inflates windows of 2**9..2**%d bytes"
                           % (wbits, MAX_WBITS))
        xsize = _int(doc, "bc_zsize")
        if not 0 < xsize <= slot_size:
            raise DocError("bc_zsize %d does not fit the %d-byte slot" % (xsize, slot_size))
        p.codec, p.args, p.xsize = enc, {"wbits": wbits}, xsize
        return
    if enc == "delta":
        sha = doc.get("bc_base")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in HEX for c in sha.lower()):
            raise DocError("bc_base must be the base image's SHA-256 as 64 hex digits")
        xsize = _int(doc, "bc_zsize")
        if not 0 < xsize <= slot_size:
            raise DocError("bc_zsize %d does not fit the %d-byte slot" % (xsize, slot_size))
        full = doc.get("bc_full")
        full = None if full is None else _url(full, "bc_full")
        p.codec, p.args, p.xsize = enc, {"base": sha.lower(), "full": full}, xsize
        return
    raise DocError("bc_enc %s is not supported (deflate, delta)" % show(enc))


def control(text):
    # True if text holds a control character (C0, DEL or C1): no name or version has one.
    for c in text:
        o = ord(c)
        if o < 32 or 127 <= o < 160:
            return True
    return False


def last(path):
    # A path's last part: after its last "/" or "\\" (FatFs takes both as separators).
    return path[max(path.rfind("/"), path.rfind("\\")) + 1:]


def _filepath(path):
    # The document's filepath (None: it has none), checked as a path; -> path. Its parts are
    # looked at in place: a path of thousands of parts is no list of thousands of strings.
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise DocError("filepath must be a string")
    b = b"/" + path.encode().replace(b"\\", b"/") + b"/"
    if b"/../" in b:
        raise DocError("filepath %s: .. is not a name" % quoted(path))
    i = 0
    while i < len(b) - 1:
        j = b.find(b"/", i + 1)
        if j - i - 1 > NAME_MAX:
            raise DocError("filepath %s: a name of %d bytes (at most %d)" % (quoted(path), j - i - 1, NAME_MAX))
        i = j
    if control(path):
        raise DocError("filepath %s holds a control character" % quoted(path))
    return path


def _version(doc, key):
    v = doc.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise DocError("%s must be a string" % key)
    if not 0 < len(v) <= VERSION_MAX or control(v):
        raise DocError("%s %s: 1 to %d characters, none a control character" % (key, quoted(v), VERSION_MAX))
    return v


def quoted(name):
    # A name in a reason: quoted, anything but printable ASCII escaped, short whatever its size.
    return repr(name[:40]) + ("... (%d characters)" % len(name) if len(name) > 40 else "")


def show(v):
    # A document's value in a reason: short, whatever its size (reasons are built in RAM).
    v = v if isinstance(v, str) else json.dumps(v)
    return v if len(v) <= 40 else v[:40] + "... (%d characters)" % len(v)


def base(p, running_sha):
    # A delta plan against the running image's SHA-256 (hex, or None if it has none): the
    # patch when it is the patch's base, else the whole image (bc_full) if the document has
    # it, else DocError naming both.
    if p.codec != "delta" or p.args["base"] == running_sha:
        return p
    if p.args["full"] is None:
        raise DocError("the patch is for base image %s; this device runs %s"
                       % (p.args["base"], running_sha or "an image without a SHA-256"))
    p.url, p.codec, p.args, p.xsize = p.args["full"], None, None, p.size
    return p


def _b64(text, key):
    try:
        raw = binascii.a2b_base64(text)
    except (TypeError, ValueError):
        raw = None
    if not raw:
        raise DocError("%s must be a base64 signature" % key)
    return raw


def files(doc):
    # The files of an afr_ota document -> [OtaFile], in the document's order; [] for other
    # documents. Each file is checked: a unique fileid 0..255, a size, a signature, and a
    # way to get it (the first protocol of the list that the document can serve).
    if kind(doc) != "afr_ota":
        return []
    ota = doc["afr_ota"]
    if not isinstance(ota, dict):
        raise DocError("afr_ota must be an object")
    fs = ota.get("files")
    if not isinstance(fs, list) or not fs or [f for f in fs if not isinstance(f, dict)]:
        raise DocError("afr_ota.files missing")
    protocols = ota.get("protocols")
    if not isinstance(protocols, list):
        raise DocError("afr_ota.protocols missing")
    out = []
    for f in fs:
        fid = f.get("fileid", 0)
        if not isinstance(fid, int) or isinstance(fid, bool) or not 0 <= fid <= 255:
            raise DocError("fileid must be an integer 0..255")
        if [o for o in out if o.id == fid]:
            raise DocError("file %d is listed twice" % fid)
        out.append(_afr_file(ota, f, fid, protocols))
    return out


class OtaFile:
    def __init__(self, fid, size, sig, path, stream, url):
        self.id = fid  # 0: this processor's firmware; others: the application's targets
        self.size = size
        self.sig = sig  # DER signature bytes (ECDSA P-256 over SHA-256 of the file)
        self.path = path  # the document's filepath, or None
        self.stream = stream  # (stream id, file id) over MQTT, or None
        self.url = url  # https URL, or None


def _afr_file(ota, f, fid, protocols):
    try:
        size = _int(f, "filesize")
        if size <= 0:
            raise DocError("filesize %d is not a size" % size)
        sig = _b64(f.get("sig-sha256-ecdsa"), "sig-sha256-ecdsa")
        path = _filepath(f.get("filepath"))
        for proto in protocols:
            if proto == "MQTT":
                stream = ota.get("streamname")
                if (not isinstance(stream, str) or not 0 < len(stream) <= STREAM_MAX or "/" in stream
                        or "+" in stream or "#" in stream or control(stream)):
                    raise DocError("afr_ota.streamname missing or not a stream id")
                return OtaFile(fid, size, sig, path, (stream, fid), None)
            if proto == "HTTP":
                return OtaFile(fid, size, sig, path, None, _url(f.get("update_data_url"), "update_data_url"))
        raise DocError("afr_ota: none of the protocols %s is supported (MQTT, HTTP)" % show(protocols))
    except DocError as e:
        raise DocError("file %d: %s" % (fid, e))


def _afr_ota(doc, next_slot, slot_size):
    # The plan of file 0, this processor's firmware; the other files are the targets' (files()).
    mine = [f for f in files(doc) if f.id == 0]
    if not mine:
        raise DocError("afr_ota: no file for this processor (fileid 0)")
    f = mine[0]
    if f.size > slot_size:
        raise DocError("filesize %d does not fit the %d-byte slot" % (f.size, slot_size))
    return Plan(next_slot, f.size, None, f.url, None, f.sig, "afr_ota", f.stream)


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
    version = _version(doc, "fwversion")
    url = _url("https://%s/%s" % (host, path.lstrip("/")), "location")
    return Plan(next_slot, size, None, url, version, None, "aws_fota")


def _url(url, key):
    if not isinstance(url, str):
        raise DocError("%s missing" % key)
    if url.startswith("${"):
        raise DocError("%s is an unresolved placeholder" % key)
    # printable ASCII only (a pre-signed URL is percent-encoded): no space, and no CR or LF
    # that would end the request line early and add headers of the document's choosing
    if not url.startswith("https://") or len(url) < 9 or url[8] in "/:" \
            or min(url) <= " " or max(url) > "~":
        raise DocError("%s must be an https URL" % key)
    return url


def _int(doc, key):
    v = doc.get(key)
    if v is None:
        raise DocError("%s missing" % key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise DocError("%s must be an integer" % key)
    return v

"""AWS IoT MQTT-based file delivery ("streams") in the stand-in.

A stream is a numbered list of files of the object store (file ids 0..255, at most 50 files).
The control plane (CreateStream, DescribeStream, UpdateStream, DeleteStream, ListStreams) keeps
streams in the database; the device side answers, on the thing's own topics:

    $aws/things/<thing>/streams/<stream>/describe/<json|cbor>  -> .../description/<fmt>
    $aws/things/<thing>/streams/<stream>/get/<json|cbor>       -> .../data/<fmt>, one message a block
    errors of either                                           -> .../rejected/<fmt>

GetStream asks for blocks of `l` bytes (256..131072) of file `f`: a run of `n` blocks from block
`o`, or the blocks whose bits are set in the bitmap `b` (bit i, least significant bit of byte
i // 8 first, stands for block o + i; `n` then caps how many are sent). One request is answered
with at most 128 KB of blocks; a device asks again for the rest. A request for blocks past the
end of the file is refused as AWS does ("The data requested is out of the range of data
available."). Blocks are read from the object's file on disk, one at a time.

The stream records each file's size and ETag (MD5) when it is created or updated; an object
replaced since then is answered with ETagMismatch until UpdateStream takes the new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import cbor
from .jobs import ARN_PREFIX, ControlError, has_control
from .store import CHUNK, ObjectStore, StoreError

log = logging.getLogger("fotatools.cloud.streams")

STREAM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}\Z")
MAX_FILES = 50
MAX_FILE_ID = 255
MAX_DESCRIPTION = 2028
MIN_ROLE_ARN, MAX_ROLE_ARN = 20, 2048
MAX_VERSION = 65535
MAX_FILE_SIZE = 24 * 1024 * 1024  # the developer guide's stream file limit (98304 blocks of 256 bytes)

# GetStream limits, as the developer guide gives them
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 256, 131072
MAX_OFFSET = 98304
MAX_BLOCKS = 98304
MAX_BITMAP = 12288  # bytes
MAX_REPLY = 131072  # bytes of blocks sent for one request
MAX_CLIENT_TOKEN = 64  # bytes

REQUESTS = ("describe", "get")
REPLIES = ("description", "data", "rejected")
FORMATS = ("json", "cbor")
OUT_OF_RANGE = "The data requested is out of the range of data available."


def stream_arn(stream_id: str) -> str:
    return f"{ARN_PREFIX}:stream/{stream_id}"


class Rejected(Exception):
    """A device request answered on .../rejected/<fmt>."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> ControlError:
    return ControlError("InvalidRequestException", message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class StreamsEngine:
    """Streams: their control plane and the DescribeStream / GetStream device API."""

    def __init__(self, db: Any, store: ObjectStore, publish: Callable[[str, bytes], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.store = store
        self.publish = publish or (lambda topic, payload: None)
        self.clock = clock
        self._etags: dict[Path, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, md5)
        self._etag_lock = threading.Lock()

    # ======================================================================================
    # the object store
    # ======================================================================================
    def _object(self, bucket: str, key: str) -> tuple[Path, int, str] | None:
        """(path, size, ETag) of an object; None when there is no such object."""
        try:
            path = self.store.path(bucket, key)
            st = path.stat()
        except (StoreError, OSError):
            return None
        if not path.is_file():
            return None
        with self._etag_lock:
            cached = self._etags.get(path)
            if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
                return path, st.st_size, cached[2]
        etag = _md5(path)
        with self._etag_lock:
            self._etags[path] = (st.st_size, st.st_mtime_ns, etag)
        return path, st.st_size, etag

    # ======================================================================================
    # control plane
    # ======================================================================================
    @staticmethod
    def _stream_id(params: dict[str, Any]) -> str:
        sid = params.get("streamId")
        if not isinstance(sid, str) or not STREAM_ID_RE.match(sid):
            raise _invalid("streamId must be 1-128 characters of [a-zA-Z0-9_-]")
        return sid

    @staticmethod
    def _description(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            raise _invalid(f"description must be a string of at most {MAX_DESCRIPTION} characters")
        if has_control(value):
            raise _invalid("description must not contain control characters")
        return value

    @staticmethod
    def _role_arn(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not MIN_ROLE_ARN <= len(value) <= MAX_ROLE_ARN:
            raise _invalid(f"roleArn must be a string of {MIN_ROLE_ARN}-{MAX_ROLE_ARN} characters")
        return value

    def _files(self, files: Any) -> list[dict[str, Any]]:
        """Validate a `files` list and read each object's size and ETag from the store."""
        if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
            raise _invalid(f"files must be a list of 1-{MAX_FILES} files")
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, f in enumerate(files):
            if not isinstance(f, dict):
                raise _invalid(f"files[{i}] must be an object with fileId and s3Location")
            fid = f.get("fileId")
            if not _is_int(fid) or not 0 <= fid <= MAX_FILE_ID:
                raise _invalid(f"files[{i}].fileId must be an integer 0-{MAX_FILE_ID}")
            if fid in seen:
                raise _invalid(f"fileId {fid} is given twice")
            seen.add(fid)
            loc = f.get("s3Location")
            if not isinstance(loc, dict):
                raise _invalid(f"files[{i}].s3Location must be an object with bucket and key")
            bucket, key, version = loc.get("bucket"), loc.get("key"), loc.get("version")
            if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
                raise _invalid(f"files[{i}].s3Location needs a bucket and a key (strings)")
            if version is not None and not isinstance(version, str):
                raise _invalid(f"files[{i}].s3Location.version must be a string")
            try:
                self.store.path(bucket, key)
            except StoreError as e:
                raise _invalid(f"files[{i}].s3Location: {e}") from None
            obj = self._object(bucket, key)
            if obj is None:
                raise ControlError("ResourceNotFoundException",
                                   f"the object s3://{bucket}/{key} of file {fid} does not exist")
            _, size, etag = obj
            if size > MAX_FILE_SIZE:
                raise _invalid(f"the object s3://{bucket}/{key} is {size} bytes; "
                               f"a stream file may be at most {MAX_FILE_SIZE}")
            rows.append({"file_id": fid, "bucket": bucket, "key": key, "s3_version": version,
                         "size": size, "etag": etag})
        return rows

    @staticmethod
    def _summary(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"streamId": row["stream_id"], "streamArn": stream_arn(row["stream_id"])}
        if row["description"] is not None:
            out["description"] = row["description"]
        out["streamVersion"] = row["version"]
        return out

    def create_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = self._stream_id(params)
        description = self._description(params.get("description"))
        role = self._role_arn(params.get("roleArn"))
        files = self._files(params.get("files"))
        now = self.clock()
        with self.db.transaction():
            old = self.db.get_stream(sid, deleted=True)
            if old is not None and not old["deleted"]:
                raise ControlError("ResourceAlreadyExistsException", f"Stream {sid} already exists")
            # a stream created again under the id of a deleted one continues its versions
            version = old["version"] + 1 if old is not None else 1
            if version > MAX_VERSION:
                raise ControlError("LimitExceededException", f"Stream {sid} has reached version {MAX_VERSION}")
            row = {"stream_id": sid, "description": description, "role_arn": role, "version": version,
                   "deleted": 0, "created_at": now, "last_updated_at": now}
            self.db.put_stream(row, files)
        return self._summary(row)

    def update_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        """UpdateStream: the given fields replace the stream's; the version goes up by one.
        Files not given are read again from the store (their size and ETag)."""
        sid = self._stream_id(params)
        with self.db.transaction():
            old = self.db.get_stream(sid)
            if old is None:
                raise ControlError("ResourceNotFoundException", f"Stream {sid} does not exist")
            if "files" in params:
                files = self._files(params["files"])
            else:
                files = self._files([{"fileId": f["file_id"], "s3Location": {
                    "bucket": f["bucket"], "key": f["key"], **({"version": f["s3_version"]}
                                                               if f["s3_version"] is not None else {})}}
                    for f in self.db.stream_files(sid)])
            row = dict(old)
            if "description" in params:
                row["description"] = self._description(params["description"])
            if "roleArn" in params:
                row["role_arn"] = self._role_arn(params["roleArn"])
            if old["version"] >= MAX_VERSION:
                raise ControlError("LimitExceededException", f"Stream {sid} has reached version {MAX_VERSION}")
            row["version"] = old["version"] + 1
            row["last_updated_at"] = self.clock()
            self.db.put_stream(row, files)
        return self._summary(row)

    def describe_stream(self, stream_id: str) -> dict[str, Any]:
        row = self.db.get_stream(stream_id)
        if row is None:
            raise ControlError("ResourceNotFoundException", f"Stream {stream_id} does not exist")
        info = self._summary(row)
        files = []
        for f in self.db.stream_files(stream_id):
            loc = {"bucket": f["bucket"], "key": f["key"]}
            if f["s3_version"] is not None:
                loc["version"] = f["s3_version"]
            files.append({"fileId": f["file_id"], "s3Location": loc})
        info.update(files=files, createdAt=row["created_at"], lastUpdatedAt=row["last_updated_at"])
        if row["role_arn"] is not None:
            info["roleArn"] = row["role_arn"]
        return {"streamInfo": info}

    def delete_stream(self, stream_id: str) -> dict[str, Any]:
        with self.db.transaction():
            if self.db.get_stream(stream_id) is None:
                raise ControlError("ResourceNotFoundException", f"Stream {stream_id} does not exist")
            self.db.delete_stream(stream_id, self.clock())
        return {}

    def list_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListStreams: oldest first (newest first with ascendingOrder false); maxResults
        1..250 and nextToken page through them."""
        limit = params.get("maxResults", 250)
        if not _is_int(limit) or not 1 <= limit <= 250:
            raise _invalid("maxResults must be an integer 1-250")
        ascending = params.get("ascendingOrder", True)
        if not isinstance(ascending, bool):
            raise _invalid("ascendingOrder must be a boolean")
        token = params.get("nextToken")
        start = 0
        if token is not None:
            if not isinstance(token, str) or not token.isdigit():
                raise _invalid("nextToken is not one this service gave")
            start = int(token)
        rows = self.db.list_streams()
        if not ascending:
            rows.reverse()
        page = rows[start:start + limit]
        out: dict[str, Any] = {"streams": [self._summary(r) for r in page]}
        if start + limit < len(rows):
            out["nextToken"] = str(start + limit)
        return out

    # ======================================================================================
    # device side
    # ======================================================================================
    def handle(self, topic: str, payload: bytes) -> None:
        """Answer one request a device published under $aws/things/<thing>/streams/."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "streams":
            return
        if len(parts) >= 6 and parts[5] in REPLIES:
            return  # replies (published by this service), not requests
        thing, stream_id = parts[2], parts[4]
        fmt = parts[6] if len(parts) == 7 and parts[6] in FORMATS else "json"
        base = f"$aws/things/{thing}/streams/{stream_id}"
        token: str | None = None
        try:
            try:
                if len(parts) != 7 or parts[5] not in REQUESTS or parts[6] not in FORMATS \
                        or not STREAM_ID_RE.match(stream_id):
                    try:  # the token, if the payload has a good one, lets the device match the error
                        token = _token(self._decode(payload, fmt))
                    except Rejected:
                        pass
                    raise Rejected("InvalidTopic", f"The topic {topic} is not a stream request topic")
                req = self._decode(payload, fmt)
                token = _token(req)
                if parts[5] == "describe":
                    self._send(f"{base}/description/{fmt}", self._describe(stream_id, token), fmt)
                else:
                    self._get(base, fmt, stream_id, req, token)
            except Rejected:
                raise
            except Exception:
                log.exception("stream request on %s failed", topic)
                raise Rejected("InternalError", "An internal error occurred") from None
        except Rejected as r:
            body: dict[str, Any] = {}
            if token is not None:
                body.update(clientToken=token, c=token)
            # both spellings, as AWS IoT answers (the short ones are the documented ones)
            body.update(code=r.code, o=r.code, message=r.message, m=r.message)
            self._send(f"{base}/rejected/{fmt}", body, fmt)

    def _send(self, topic: str, body: dict[str, Any], fmt: str) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode() if fmt == "json" else cbor.dumps(body)
        try:
            self.publish(topic, payload)
        except Exception:  # a closed connection: the device asks again
            log.exception("publish to %s failed", topic)

    @staticmethod
    def _decode(payload: bytes, fmt: str) -> dict[str, Any]:
        if not payload or (fmt == "json" and not payload.strip()):
            return {}  # an empty request is taken as an empty object, as the jobs API does
        if fmt == "json":
            try:
                req = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise Rejected("InvalidJson", "The Stream request is not a valid JSON document") from None
        else:
            try:
                req = cbor.loads(payload)
            except cbor.CborError as e:
                raise Rejected("InvalidCbor", f"Invalid CBOR message: {e}") from None
        if not isinstance(req, dict):
            raise Rejected("InvalidRequest", "The Stream request must be a map")
        return req

    def _describe(self, stream_id: str, token: str | None) -> dict[str, Any]:
        row = self.db.get_stream(stream_id)
        if row is None:
            raise Rejected("ResourceNotFound", f"The stream {stream_id} does not exist")
        body: dict[str, Any] = {}
        if token is not None:
            body["c"] = token
        body["s"] = row["version"]
        if row["description"] is not None:
            body["d"] = row["description"]
        body["r"] = [{"f": f["file_id"], "z": f["size"]} for f in self.db.stream_files(stream_id)]
        return body

    @staticmethod
    def _int_field(req: dict[str, Any], name: str, what: str, fmt: str) -> int | None:
        v = req.get(name)
        if v is None:
            return None
        if not _is_int(v):
            raise Rejected(_type_error(fmt), f'"{name}" ({what}) must be an integer')
        return v

    def _bitmap(self, value: Any, fmt: str) -> bytes:
        if fmt == "json":
            if not isinstance(value, str):
                raise Rejected(_type_error(fmt), '"b" (block bitmap) must be a base64 string')
            try:
                bitmap = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise Rejected("InvalidRequest", '"b" (block bitmap) is not valid base64') from None
        else:
            if not isinstance(value, bytes):
                raise Rejected(_type_error(fmt), '"b" (block bitmap) must be a byte string')
            bitmap = value
        if len(bitmap) > MAX_BITMAP:
            raise Rejected("BlockBitmapLimitExceeded",
                           f"The block bitmap is {len(bitmap)} bytes; at most {MAX_BITMAP} are allowed")
        return bitmap

    def _get(self, base: str, fmt: str, stream_id: str, req: dict[str, Any], token: str | None) -> None:
        version = self._int_field(req, "s", "stream version", fmt)
        file_id = self._int_field(req, "f", "file id", fmt)
        if file_id is None:
            raise Rejected("InvalidRequest", '"f" (file id) is required')
        if not 0 <= file_id <= MAX_FILE_ID:
            raise Rejected("InvalidRequest", f'"f" (file id) must be 0-{MAX_FILE_ID}')
        size = self._int_field(req, "l", "block size", fmt)
        if size is None:
            raise Rejected("InvalidRequest", '"l" (block size) is required')
        if not MIN_BLOCK_SIZE <= size <= MAX_BLOCK_SIZE:
            raise Rejected("BlockSizeOutOfBounds",
                           f"The block size {size} is out of bounds ({MIN_BLOCK_SIZE}-{MAX_BLOCK_SIZE})")
        offset = self._int_field(req, "o", "block offset", fmt) or 0
        if not 0 <= offset <= MAX_OFFSET:
            raise Rejected("OffsetOutOfBounds", f"The block offset {offset} is out of bounds (0-{MAX_OFFSET})")
        count = self._int_field(req, "n", "number of blocks", fmt)
        if count is not None and not 0 <= count <= MAX_BLOCKS:
            raise Rejected("BlockCountLimitExceeded",
                           f"The number of blocks {count} is out of bounds (0-{MAX_BLOCKS})")
        bitmap = self._bitmap(req["b"], fmt) if req.get("b") is not None else None

        row = self.db.get_stream(stream_id)
        if row is None:
            raise Rejected("ResourceNotFound", f"The stream {stream_id} does not exist")
        if version is not None and version != row["version"]:
            raise Rejected("VersionMismatch", f"The stream version {version} does not match "
                                              f"the stream's version {row['version']}")
        f = self.db.stream_file(stream_id, file_id)
        if f is None:
            raise Rejected("ResourceNotFound", f"The file {file_id} is not in the stream {stream_id}")
        obj = self._object(f["bucket"], f["key"])
        if obj is None:
            raise Rejected("ResourceNotFound", f"The object of file {file_id} was not found")
        path, fsize, etag = obj
        if etag != f["etag"]:
            raise Rejected("ETagMismatch", f"The object of file {file_id} has changed since the stream "
                                           "was last created or updated")
        total = -(-fsize // size)  # blocks in the file
        per_reply = MAX_REPLY // size
        limit = min(count or per_reply, per_reply)
        if bitmap is None:
            # a run of `n` blocks (default: 128 KB of them), all of which must exist
            want = count or per_reply
            if offset + want > total:
                raise Rejected("InvalidRequest", OUT_OF_RANGE)
            blocks = list(range(offset, offset + min(want, limit)))
        else:
            last = _last_bit(bitmap)
            if last is None:
                raise Rejected("InvalidRequest", "The block bitmap selects no block")
            if offset + last >= total:
                raise Rejected("InvalidRequest", OUT_OF_RANGE)
            blocks = _set_bits(bitmap, offset, limit)
        with open(path, "rb") as fh:
            for i in blocks:
                fh.seek(i * size)
                data = fh.read(size)
                body: dict[str, Any] = {}
                if token is not None:
                    body["c"] = token
                body.update(f=file_id, l=len(data), i=i,
                            p=base64.b64encode(data).decode() if fmt == "json" else data)
                self._send(f"{base}/data/{fmt}", body, fmt)


def _token(req: dict[str, Any]) -> str | None:
    """The request's client token ("c", optional, at most 64 bytes)."""
    if "c" not in req:
        return None
    c = req["c"]
    if not isinstance(c, str) or len(c.encode()) > MAX_CLIENT_TOKEN:
        raise Rejected("InvalidRequest", f"The client token must be a string of at most {MAX_CLIENT_TOKEN} bytes")
    return c


def _type_error(fmt: str) -> str:
    """The code of a field of the wrong type: AWS IoT's CBOR decoder refuses such a request as
    InvalidCbor (a text bitmap, for one); in JSON it is an InvalidRequest."""
    return "InvalidCbor" if fmt == "cbor" else "InvalidRequest"


def _last_bit(bitmap: bytes) -> int | None:
    """Index of the highest set bit (bit i is bit i % 8 of byte i // 8), None if none is."""
    for pos in range(len(bitmap) - 1, -1, -1):
        if bitmap[pos]:
            return pos * 8 + bitmap[pos].bit_length() - 1
    return None


def _set_bits(bitmap: bytes, offset: int, limit: int) -> list[int]:
    """The first `limit` blocks whose bits are set, as block numbers (offset + bit index)."""
    out: list[int] = []
    for pos, byte in enumerate(bitmap):
        while byte and len(out) < limit:
            low = byte & -byte
            out.append(offset + pos * 8 + low.bit_length() - 1)
            byte ^= low
        if len(out) >= limit:
            break
    return out


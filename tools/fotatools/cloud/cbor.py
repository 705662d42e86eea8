"""CBOR (RFC 8949) for MQTT-based file delivery, on the cbor2 library.

What this adds to cbor2: `loads` takes exactly one item and refuses bytes after it (cbor2 stops
after the first item and ignores the rest), and every way a payload can fail to decode is one
exception, CborError, which the streams answer as InvalidCbor. `dumps` writes definite lengths
and the shortest argument encodings (cbor2's default), as AWS IoT's replies are encoded.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2


class CborError(ValueError):
    """Not one well-formed CBOR item."""


def dumps(value: Any) -> bytes:
    try:
        return cbor2.dumps(value)
    except cbor2.CBOREncodeError as e:
        raise CborError(f"cannot encode as CBOR: {e}") from None


def loads(data: bytes) -> Any:
    """Decode exactly one CBOR item; raise CborError if `data` is anything else."""
    fp = io.BytesIO(bytes(data))
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except cbor2.CBORDecodeError as e:  # truncated, bad UTF-8, a break out of place, nested too deeply...
        raise CborError(str(e)) from None
    if fp.tell() != len(fp.getbuffer()):
        raise CborError("bytes after the CBOR item")
    return value

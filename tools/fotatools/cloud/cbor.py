"""The part of CBOR (RFC 8949) that AWS IoT MQTT-based file delivery speaks.

`loads` decodes any well-formed item (integers, byte and text strings, arrays, maps, tags,
simple values and floats, definite or indefinite length) so that a request of the wrong shape
is told apart from one that is not CBOR at all; `dumps` encodes what the replies need:
integers, byte and text strings, lists, dicts, booleans and None.
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 16


class CborError(ValueError):
    """Not one well-formed CBOR item."""


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise CborError(f"integer too large for CBOR: {n}")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(v: Any, out: bytearray) -> None:
    if v is False or v is True or v is None:
        out.append({False: 0xF4, True: 0xF5, None: 0xF6}[v])
    elif isinstance(v, int):
        out += _head(0, v) if v >= 0 else _head(1, -1 - v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out += _head(2, len(v))
        out += v
    elif isinstance(v, str):
        b = v.encode()
        out += _head(3, len(b))
        out += b
    elif isinstance(v, (list, tuple)):
        out += _head(4, len(v))
        for x in v:
            _encode(x, out)
    elif isinstance(v, dict):
        out += _head(5, len(v))
        for k, x in v.items():
            _encode(k, out)
            _encode(x, out)
    else:
        raise CborError(f"cannot encode {type(v).__name__} as CBOR")


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CborError("truncated CBOR item")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def arg(self, info: int) -> int | None:
        """The head's argument; None for an indefinite length (info 31)."""
        if info < 24:
            return info
        if info == 31:
            return None
        if info > 27:
            raise CborError(f"reserved CBOR additional information {info}")
        size = 1 << (info - 24)
        return int.from_bytes(self.take(size), "big")

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CborError("CBOR nested too deeply")
        ib = self.take(1)[0]
        major, info = ib >> 5, ib & 31
        if major == 7:
            return self.simple(info)
        n = self.arg(info)
        if major == 0:
            if n is None:
                raise CborError("indefinite-length integer")
            return n
        if major == 1:
            if n is None:
                raise CborError("indefinite-length integer")
            return -1 - n
        if major in (2, 3):
            raw = self.string(major, n)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise CborError("text string is not UTF-8") from None
        if major == 4:
            out: list[Any] = []
            while n is None or len(out) < n:
                if n is None and self.peek_break():
                    break
                out.append(self.item(depth + 1))
            return out
        if major == 5:
            m: dict[Any, Any] = {}
            count = 0
            while n is None or count < n:
                if n is None and self.peek_break():
                    break
                k = self.item(depth + 1)
                if isinstance(k, (list, dict)):
                    raise CborError("a map key must not be an array or a map")
                m[k] = self.item(depth + 1)
                count += 1
            return m
        # major 6: a tag; the tagged item stands for itself here
        if n is None:
            raise CborError("indefinite-length tag")
        return self.item(depth + 1)

    def peek_break(self) -> bool:
        if self.pos >= len(self.data):
            raise CborError("truncated CBOR item")
        if self.data[self.pos] == 0xFF:
            self.pos += 1
            return True
        return False

    def string(self, major: int, n: int | None) -> bytes:
        if n is not None:
            return self.take(n)
        chunks = []
        while not self.peek_break():
            ib = self.take(1)[0]
            if ib >> 5 != major or (ib & 31) == 31:
                raise CborError("bad chunk in an indefinite-length string")
            size = self.arg(ib & 31)
            assert size is not None
            chunks.append(self.take(size))
        return b"".join(chunks)

    def simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None  # null, undefined
        if info < 24:
            return ("simple", info)
        if info == 24:
            v = self.take(1)[0]
            if v < 32:
                raise CborError("badly encoded simple value")
            return ("simple", v)
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        raise CborError("unexpected break or reserved simple value")


def loads(data: bytes) -> Any:
    """Decode exactly one CBOR item; raise CborError if `data` is anything else."""
    r = _Reader(bytes(data))
    value = r.item()
    if r.pos != len(r.data):
        raise CborError("bytes after the CBOR item")
    return value

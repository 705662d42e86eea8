# CBOR (RFC 8949), the part SMP's management groups use: maps with text keys whose values are
# integers, text, byte strings, booleans, arrays and maps. Encoding writes into a buffer the
# caller owns; decoding reads a whole message (definite or indefinite lengths, as zcbor
# writes them) and raises CborError on anything else.

import struct

MAX_DEPTH = 8  # nesting a reply may have: SMP's deepest is a map in an array in a map


class CborError(Exception):
    pass


def encode(buf, i, obj):
    # obj into buf from index i -> the index after it. Byte strings are copied in place.
    if obj is True or obj is False:
        buf[i] = 0xF5 if obj else 0xF4
        return i + 1
    if obj is None:
        buf[i] = 0xF6
        return i + 1
    if isinstance(obj, int):
        return _head(buf, i, 0, obj) if obj >= 0 else _head(buf, i, 1, -1 - obj)
    if isinstance(obj, str):
        obj = obj.encode()
        i = _head(buf, i, 3, len(obj))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        i = _head(buf, i, 2, len(obj))
    elif isinstance(obj, dict):
        i = _head(buf, i, 5, len(obj))
        for k in obj:
            i = encode(buf, encode(buf, i, k), obj[k])
        return i
    elif isinstance(obj, (list, tuple)):
        i = _head(buf, i, 4, len(obj))
        for x in obj:
            i = encode(buf, i, x)
        return i
    else:
        raise CborError("cannot encode %s" % type(obj).__name__)
    if i + len(obj) > len(buf):
        raise CborError("message does not fit its buffer")
    buf[i:i + len(obj)] = obj
    return i + len(obj)


def _head(buf, i, major, v):
    if v < 24:
        buf[i] = major << 5 | v
        return i + 1
    for n, code, fmt in ((0x100, 24, ">B"), (0x10000, 25, ">H"), (0x100000000, 26, ">I")):
        if v < n:
            buf[i] = major << 5 | code
            struct.pack_into(fmt, buf, i + 1, v)
            return i + 1 + struct.calcsize(fmt)
    raise CborError("integer too large")


def decode(mv):
    # One whole item from a bytes-like object -> Python value. Nothing may follow it.
    mv = memoryview(mv)
    try:
        obj, i = _item(mv, 0, 0)
    except IndexError:
        raise CborError("message ends inside an item")
    if i != len(mv):
        raise CborError("bytes after the message")
    return obj


BREAK = object()  # the end of an indefinite-length array or map


def _item(mv, i, depth):
    b = mv[i]
    major, v = b >> 5, b & 31
    i += 1
    if b == 0xFF:
        return BREAK, i
    if major == 7:
        if v in (20, 21):
            return v == 21, i
        if v == 22:
            return None, i
        raise CborError("unsupported simple value or float")
    if v == 31 and major in (4, 5):
        v = -1  # indefinite length
    elif v >= 24:
        if v > 27:
            raise CborError("unsupported CBOR length")
        n = 1 << (v - 24)
        if i + n > len(mv):
            raise IndexError
        v = int.from_bytes(bytes(mv[i:i + n]), "big")
        i += n
    if major == 0:
        return v, i
    if major == 1:
        return -1 - v, i
    if major in (2, 3):
        if i + v > len(mv):
            raise IndexError
        s = bytes(mv[i:i + v])
        if major == 3:
            try:
                s = s.decode()
            except UnicodeError:
                raise CborError("text is not UTF-8")
        return s, i + v
    if major == 6:
        raise CborError("CBOR tags are not used here")
    if depth >= MAX_DEPTH:
        raise CborError("nested too deeply")
    out = {} if major == 5 else []
    n = 0
    while v < 0 or n < v:
        x, i = _item(mv, i, depth + 1)
        if x is BREAK:
            if v >= 0:
                raise CborError("break inside a definite-length item")
            return out, i
        if major == 4:
            out.append(x)
        else:
            y, i = _item(mv, i, depth + 1)
            if y is BREAK or isinstance(x, (dict, list)):
                raise CborError("bad map entry")
            out[x] = y
        n += 1
    return out, i

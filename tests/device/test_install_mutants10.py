"""lib/fota/install.py, _image: a compressed image ("bc_enc": "deflate") is inflated on its way to
the slot: the stream the download reads has the image's size and gives the image's bytes, not
the transferred file's."""

from __future__ import annotations

import hashlib
import zlib

from tests.device.test_bounds import mp

IMAGE = bytes(range(256)) * 8 + b"\xe9" * 1000  # 3048 bytes


def test_a_deflate_plan_streams_the_inflated_image():
    c = zlib.compressobj(9, zlib.DEFLATED, 12)
    z = c.compress(IMAGE) + c.flush()
    got = mp(f"""
import io, binascii, hashlib
from fota import install
install.log = lambda step, msg: None
Z = binascii.unhexlify({z.hex()!r})
class Stream:
    total = len(Z)
    def __init__(self, start):
        self.f = io.BytesIO(Z[start:])
    def readinto(self, buf):
        return self.f.readinto(buf)
    def close(self):
        pass
class P:
    codec, size, xsize, args = "deflate", {len(IMAGE)}, len(Z), {{"wbits": 12}}
r = install._image(P(), Stream, None).open(0)
buf = bytearray(512)
h = hashlib.sha256()
n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    h.update(buf[:k])
    n += k
r.close()
out([r.total, n, binascii.hexlify(h.digest()).decode()])
""")
    assert got == [len(IMAGE), len(IMAGE), hashlib.sha256(IMAGE).hexdigest()]

"""lib/fota/smp.py: a line of an answer that is not base64 ends the packet it started, so the
lines that follow it are skipped (the request fails as a line that is not base64, not as some
later fault of the broken packet); the first request of an upload names image 0 and the image's
length, as MCUmgr's image upload asks, and the later ones carry neither."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json
from tests.device.test_bounds import SMP, cases, mp

BROKEN = SMP + """
class Broken(Uart):
    # a START line that is not base64, then a well-formed continuation line of 4 bytes
    def any(self):
        if self.sent:
            self.sent = False
            self.n += 1
            self.rx = b"\\x06\\x09" + FIRST + b"\\n\\x04\\x14" + binascii.b2a_base64(b"\\x00\\x01\\x02\\x03", newline=False) + b"\\n"
        return len(self.rx)
u = Broken(None)
s = smp.Smp(u)
out([error(s.request, 0, 1, 0, {}, 1), u.n])
"""


@pytest.mark.parametrize("first,want", cases([
    ("not-base64", b"ab!", "SmpError: garbled answer to image state: line is not base64"),
    # a START line that is base64 but too short for a length field: its continuation is skipped too
    ("base64-of-1-byte", b"AA==", "SmpError: garbled answer to image state: length field -2")]))
def test_the_lines_after_a_broken_start_line_are_skipped(first, want):
    assert mp(BROKEN.replace("FIRST", repr(first))) == [want, 1]


UPLOAD = """
import json
from fota import smp
s = smp.Smp(None)
sent = []
def request(op, group, cmd, fields, **kw):
    sent.append([op, group, cmd, sorted(fields.items())])
    return {"off": fields["off"] + len(fields["data"])}
s.request = request
s.upload(0, "ab", 4)
s.upload(2, "cd", 4)
print(json.dumps(sent))
"""


def test_the_first_upload_request_names_image_0_and_the_length():
    assert run_json(UPLOAD) == [
        [2, 1, 1, [["data", "ab"], ["image", 0], ["len", 4], ["off", 0]]],
        [2, 1, 1, [["data", "cd"], ["off", 2]]]]

"""lib/fota/smp.py, Smp.request: an error names the request it answers; a request that the
module has no name for (a group and command an application sends through Smp.request itself)
is named by its group and command numbers, never "None"."""

from __future__ import annotations

from tests.device.test_bounds import SMP, mp


def test_an_unnamed_request_is_named_by_its_group_and_command():
    got = mp(SMP + """
s = smp.Smp(Uart(lambda n: None))
g = smp.Smp(Uart(lambda n: {"rc": 8}, hdr=(3, 9, 3)))
out([error(s.request, 0, 9, 3, {}, 1), error(g.request, 2, 9, 3, {}, 1),
     error(s.request, 0, 1, 0, {}, 1)])
""")
    assert got[0].startswith("SmpError: no answer to group 9 command 3 in ")
    assert got[1].startswith("SmpError: group 9 command 3 refused: rc 8")
    assert got[2].startswith("SmpError: no answer to image state in ")

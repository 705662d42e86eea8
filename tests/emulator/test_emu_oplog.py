"""The flash operation log: every erase and write the firmware makes, with its address."""

from __future__ import annotations

from tests.emulator.emuhelpers import EMIT


def test_every_erase_and_write_is_logged_with_its_address(board, tmp_path):
    log = tmp_path / "ops.log"
    board.write("main.py", EMIT + """
import esp32
p = esp32.Partition("ota_1")
p.writeblocks(2, b"\\x00" * 4096)           # an erase and a write of sector 2
p.ioctl(6, 5)                               # an erase of sector 5
p.writeblocks(5, b"\\x01" * 16, 32)          # a write without erase
""")
    from emulator.device import Device

    dev = Device(board.flash, board.fs, state_dir=board.state, echo=None,
                 env={"ESP32_OPLOG": str(log)})
    result = dev.run(timeout=60)
    assert result.exit_reason == "main-returned", result.console
    base = 0x190000
    ops = [line.split() for line in log.read_text().splitlines()]
    ops = [(k, int(a, 16), int(n, 16)) for k, a, n in ops if int(a, 16) >= base]
    assert ops == [("E", base + 0x2000, 0x1000), ("W", base + 0x2000, 0x1000),
                   ("E", base + 0x5000, 0x1000), ("W", base + 0x5020, 16)]

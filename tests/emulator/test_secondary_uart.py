"""The emulated board's machine.UART talking to the simulated secondary MCU."""

from __future__ import annotations

import pytest

from emulator.device import Device
from emulator.flash import create_flash
from emulator.secondary import Secondary
from emulator.secondary.serial import encode_packet
from tests.emulator.emuhelpers import EMIT, records

import cbor2


def echo_packet(text: str, seq: int = 7) -> bytes:
    body = cbor2.dumps({"d": text})
    header = bytes([(1 << 3) | 2, 0, 0, len(body), 0, 0, seq, 0])  # v2 write, group 0, echo
    return encode_packet(header + body)


@pytest.fixture
def mcu(tmp_path):
    with Secondary(tmp_path / "mcu") as mcu:
        yield mcu


def test_board_uart_talks_smp_to_the_secondary(tmp_path, v1_image, mcu):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text(EMIT + f"""
from machine import UART, Pin
import time
u = UART(1, 115200, tx=Pin(17), rx=Pin(16), timeout=2000, timeout_char=100)
emit(repr(u))
emit(u.read(5))                  # nothing sent yet: None after the timeout
u.write({echo_packet("ping")!r})
line = u.readline()
emit(line[:2] == b"\\x06\\x09" and line[-1:] == b"\\n")
u.write({echo_packet("pong", 8)!r})
time.sleep_ms(300)
n = u.any()
emit(n > 10)
data = u.read()
emit(len(data) == n)
emit(UART(1).read(1))
u.deinit()
""")
    result = Device(flash, fs, echo=None, uarts={1: mcu.port}).run(timeout=60)
    out = records(result)
    assert result.exit_reason == "main-returned", result.console
    assert out[0].startswith("UART(1, baudrate=115200, bits=8, parity=None, stop=1, tx=17, rx=16")
    assert out[1:] == [None, True, True, True, None]


def test_uart_api_without_a_wire(board):
    """UART ids, argument checks and an unconnected UART2 (no ESP32_UART2): writes are
    counted, reads time out with None, as on a board with nothing on the pins."""
    result = board.run(EMIT + """
from machine import UART
emit(err(UART, 3))
emit(err(UART, 2, bits=9))
emit(err(UART, 2, stop=3))
emit(err(UART, 2, rxbuf=128))
u = UART(2, 9600, timeout=50)
emit(u.write(b"hello"))
emit([u.read(4), u.read(), u.readline(), u.readinto(bytearray(4)), u.any(), u.txdone()])
u.init(timeout_char=5)
emit(repr(UART(2)))
u.deinit()
emit([u.read(1), u.write(b"x"), u.txdone(), err(u.any), err(u.flush)])
""")
    out = records(result)
    assert out[:3] == [["ValueError", "UART(3) does not exist"], ["ValueError", "invalid data bits"],
                       ["ValueError", "invalid stop bits"]]
    assert out.pop(3) == ["OSError", 1, "ESP_FAIL"]  # rxbuf not over the 128-byte FIFO
    assert out[3:5] == [5, [None, None, None, None, 0, True]]
    assert out[5].startswith("UART(2, baudrate=9600, bits=8, parity=None, stop=1, tx=17, rx=16, "
                             "rts=-1, cts=-1, txbuf=256, rxbuf=256, timeout=50, timeout_char=5")
    # after deinit() the driver is gone: reads and writes give None (EAGAIN), any() ESP_FAIL
    assert out[6] == [None, None, False, ["OSError", 1, "ESP_FAIL"], ["OSError", 110]]


def test_a_board_uart_at_another_speed_gets_no_answer(tmp_path, v1_image, mcu):
    """The MCU listens at 115200 baud: the board's UART at 9600 or 74880 sends garbage it
    never answers; at 115200 the same kind of packet is answered."""
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text(EMIT + f"""
from machine import UART
u = UART(1, 9600, tx=17, rx=16, timeout=500)
u.write({echo_packet("slow")!r})
emit(u.readline())
u.init(74880)
u.write({echo_packet("odd rate")!r})
emit(u.readline())
u.init(115200)
u.write({echo_packet("right")!r})
emit(u.readline() is not None)
""")
    result = Device(flash, fs, echo=None, uarts={1: mcu.port}).run(timeout=60)
    assert records(result) == [None, None, True], result.console
    assert "line: garbage: the other end is not at 115200 baud" in mcu.log()
    assert "line: back at 115200 baud" in mcu.log()

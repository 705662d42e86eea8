"""What a stock ESP32 MicroPython firmware has and the unix port lacks: the port's frozen
_boot.py, flashbdev and inisetup, ntptime, and the built-in esp module, io.BufferedWriter and
the board's sys. Each test runs code written for a real board."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import uuid

import pytest

from emulator.device import Device
from emulator.flash import Flash, create_flash
from emulator.image import build_app_image
from tests.emulator.emuhelpers import EMIT, records


# ---------------------------------------------------------------- esp
def test_esp_flash_functions_over_the_emulated_flash(board):
    result = board.run(EMIT + """
import esp, esp32
emit([esp.flash_size(), esp.flash_user_start()])
buf = bytearray(2)
esp.flash_read(0x8000, buf)                 # the partition table's first entry magic
emit(list(buf))
sector = 0x190000 // 4096                   # ota_1: not the running app
esp.flash_erase(sector)
esp.flash_write(sector * 4096, b"\\xf0\\xf0\\xff\\xff")
esp.flash_write(sector * 4096, b"\\x0f\\xff\\x0f\\xff")  # NOR: bits only go from 1 to 0
out = bytearray(4)
esp.flash_read(sector * 4096, out)
emit(list(out))
emit(err(esp.flash_read, esp.flash_size() - 2, bytearray(4)))
emit(err(esp.flash_erase, esp.flash_size() // 4096))
esp.osdebug(None)
esp.osdebug(0, esp.LOG_INFO)
esp.flash_write(0x10000, b"\\x00")           # the running app: ESP-IDF aborts
emit("not reached")
""", max_boots=1)
    r = records(result)
    assert r[0] == [4 * 1024 * 1024, 0x200000]
    assert r[1] == [0xAA, 0x50]
    assert r[2] == [0x00, 0xF0, 0x0F, 0xFF]
    assert r[3] == ["OSError", 5] and r[4] == ["OSError", 5]  # EIO, as for every IDF error
    assert "not reached" not in result.console
    assert "touches the running app" in result.console
    assert result.boots[0].end == "reset"
    # the erase and the three writes are counted flash operations (after the bootloader's 2)
    assert result.flash_stats["sector_erases"] >= 2 and result.flash_stats["writes"] >= 3


def test_esp_flash_write_over_unerased_flash_in_strict_mode(board):
    result = board.run(EMIT + """
import esp
s = 0x190000
esp.flash_erase(s // 4096)
esp.flash_write(s, b"\\x0f")
emit(err(esp.flash_write, s, b"\\xf0"))
""", strict=True)
    assert records(result) == [["OSError", 5, "write to unerased flash at 0x190000 (strict mode)"]]


# ---------------------------------------------------------------- io and sys
def test_io_buffered_writer_writes_whole_buffers(board):
    result = board.run(EMIT + """
import io
class Sink:
    def __init__(self):
        self.calls = []
    def write(self, b):
        self.calls.append(bytes(b))
        return len(b)
sink = Sink()
w = io.BufferedWriter(sink, 8)
emit(w.write(b"abc"))
emit(w.write(b"defghijklmnopqrs"))      # 19 bytes: two whole buffers go out
emit([c.decode() for c in sink.calls])
w.flush()
emit([c.decode() for c in sink.calls])
# on a file of the flash filesystem, as board code streams a download to a file
with open("data.bin", "wb") as f:
    bw = io.BufferedWriter(f, 512)
    for i in range(100):
        bw.write(bytes([i]) * 37)
    bw.flush()
emit([io.BytesIO(b"x").read().decode(), hasattr(io, "StringIO"), io.BufferedWriter.__name__])
""")
    r = records(result)
    assert r[:4] == [3, 16, ["abcdefgh", "ijklmnop"], ["abcdefgh", "ijklmnop", "qrs"]]
    assert r[4] == ["x", True, "BufferedWriter"]
    assert Flash(board.flash).read_file("data.bin") == b"".join(bytes([i]) * 37 for i in range(100))


def test_sys_reports_an_esp32(board):
    board.write("extra/found.py", "X = 'found'\n")
    result = board.run(EMIT + """
import sys
impl = sys.implementation
emit([sys.platform, impl.name, impl._machine, impl._build, impl._mpy, impl._thread,
      list(impl.version[:2]), impl[0], len(impl)])
emit(sys.version.startswith("3.4.0; MicroPython"))
sys.path.append("/extra")        # the importer's own list
import found
emit([found.X, sys.path[-1], sys.modules["found"] is found, type(sys.maxsize).__name__])
import usys, uio
emit([usys.platform, hasattr(uio, "BufferedWriter")])
""")
    r = records(result)
    assert r[0] == ["esp32", "micropython", "Generic ESP32 module with ESP32",
                    "ESP32_GENERIC-OTA", 6 | (3 | 10 << 2) << 8, "GIL", [1, 29], "micropython", 6]
    assert r[1] is True
    assert r[2] == ["found", "/extra", True, "int"]
    assert r[3] == ["esp32", True]  # the u-names still import, as the same modules


# ---------------------------------------------------------------- flashbdev, inisetup, _boot
def test_a_blank_board_formats_its_filesystem_on_the_first_boot(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    first = Device(flash, echo=None).run(timeout=30)  # no device folder: a board fresh from esptool
    assert first.exit_reason == "main-returned", first.console
    assert "Performing initial setup" in first.console
    fs = Flash(flash).filesystem()
    assert fs.files() == ["boot.py"]
    assert fs.read_file("boot.py").startswith(b"# This file is executed on every boot")
    again = Device(flash, echo=None).run(timeout=30)
    assert "Performing initial setup" not in again.console


def test_a_corrupted_filesystem_stops_the_board_as_inisetup_does(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    data = bytearray(flash.read_bytes())
    data[0x310000:0x310010] = b"not a filesystem"
    flash.write_bytes(bytes(data))
    result = Device(flash, echo=None).run(timeout=4)
    assert "The filesystem appears to be corrupted" in result.console
    assert result.exit_reason == "timeout"
    assert Flash(flash).read(0x310000, 16) == b"not a filesystem"  # nothing was formatted
    from emulator.flashfs import FlashFSError

    (tmp_path / "fs").mkdir()
    with pytest.raises(FlashFSError, match="not a littlefs filesystem"):
        Device(flash, tmp_path / "fs", echo=None)


def test_board_code_that_reformats_the_filesystem(board):
    board.write("keep.txt", "old")
    result = board.run(EMIT + """
import os, vfs
from flashbdev import bdev
st = os.statvfs("/")
emit([st[0], st[2], bdev.ioctl(4, 0), bdev.ioctl(5, 0)])
vfs.umount("/")
vfs.VfsLfs2.mkfs(bdev)
vfs.mount(bdev, "/")                  # detected as littlefs, as _boot.py mounts it
with open("fresh.txt", "w") as f:
    f.write("new")
emit(sorted(os.listdir("/")))
""")
    r = records(result)
    assert r[0] == [4096, 0xF0000 // 4096, 0xF0000 // 4096, 4096]
    assert r[1] == [".frozen", "fresh.txt"]  # .frozen: the emulator's mount point
    assert Flash(board.flash).files() == ["fresh.txt"]


# ---------------------------------------------------------------- both ways
BLOBS = {"empty.bin": b"", "one.bin": b"\x01", "inline.txt": b"x" * 100,
         "lib/pkg/mid.bin": bytes(range(256)) * 20, "big.bin": os.urandom(70_000)}


def test_files_written_on_the_host_read_on_the_board(board):
    for name, data in BLOBS.items():
        path = board.fs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    before = time.time()
    result = board.run(EMIT + """
import os, hashlib, binascii
def sha(name):
    h = hashlib.sha256()
    with open(name, "rb") as f:
        while True:
            b = f.read(1000)
            if not b:
                break
            h.update(b)
    return binascii.hexlify(h.digest()).decode()
emit({n: [os.stat(n)[6], sha(n)] for n in %r})
emit(os.stat("big.bin")[8])
""" % sorted(BLOBS))
    import hashlib

    r = records(result)
    assert r[0] == {n: [len(d), hashlib.sha256(d).hexdigest()] for n, d in BLOBS.items()}
    # the copy carries the host's modification time, as a write on the board would
    assert abs(r[1] - before) < 3600


def test_files_written_on_the_board_read_on_the_host(board):
    result = board.run(EMIT + """
import os
os.mkdir("logs")
os.mkdir("logs/old")
def make(name, n, seed):
    with open(name, "wb") as f:
        for i in range(n):
            f.write(bytes([(seed + i) & 0xFF]) * 97)
make("logs/a.bin", 0, 1)
make("logs/old/b.bin", 1, 2)
make("c.bin", 700, 3)                  # 67,900 bytes: a file over many blocks
make("d.bin", 3, 4)
os.rename("d.bin", "logs/d.bin")
make("gone.bin", 5, 5)
os.remove("gone.bin")
with open("c.bin", "ab") as f:
    f.write(b"end")
emit("ok")
""")
    assert records(result) == ["ok"]

    def make(n, seed):
        return b"".join(bytes([(seed + i) & 0xFF]) * 97 for i in range(n))

    f = Flash(board.flash)
    assert f.files() == ["boot.py", "c.bin", "logs/a.bin", "logs/d.bin", "logs/old/b.bin",
                         "main.py"]
    assert f.read_file("logs/a.bin") == b""
    assert f.read_file("logs/old/b.bin") == make(1, 2)
    assert f.read_file("c.bin") == make(700, 3) + b"end"
    assert f.read_file("logs/d.bin") == make(3, 4)
    assert f.filesystem().mtime_ns("c.bin") is not None  # VfsLfs2's mtime attribute


def test_a_dropped_open_file_is_committed_by_its_finaliser(board):
    # on a board the garbage collector's finaliser closes a file left open, and littlefs
    # commits it there, with the heap locked; a soft reset sweeps the whole heap the same way
    result = board.run(EMIT + """
import gc, micropython, sys, os
if "left.txt" not in os.listdir():
    def leak():
        open("dropped.txt", "w").write("kept by the finaliser")
    leak()
    gc.collect()
    f = open("locked.txt", "w")
    f.write("y" * 300)
    micropython.heap_lock()
    f.close()
    micropython.heap_unlock()
    open("left.txt", "w").write("open at the soft reset")
    sys.exit()
emit(open("left.txt").read())
""")
    assert records(result) == ["open at the soft reset"]
    f = Flash(board.flash)
    assert f.read_file("dropped.txt") == b"kept by the finaliser"
    assert f.read_file("locked.txt") == b"y" * 300


# ---------------------------------------------------------------- ntptime
NTP_1970 = 2208988800


class SntpServer:
    """A one-shot SNTP server on a loopback address of its own (port 123, as ntptime uses)."""

    def __init__(self, transmit: int | None) -> None:
        self.transmit = transmit  # NTP seconds to answer with; None: never answer
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        last = uuid.uuid4().int
        self.host = f"127.{(last >> 16) % 200 + 20}.{(last >> 8) % 250 + 1}.{last % 250 + 1}"
        try:
            self.sock.bind((self.host, 123))
        except PermissionError:
            self.sock.close()
            pytest.skip("binding UDP port 123 needs root")
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            self.requests.append(data)
            if self.transmit is not None:
                reply = bytearray(48)
                reply[0] = 0x24  # version 4, mode 4 (server)
                struct.pack_into("!II", reply, 40, self.transmit & 0xFFFFFFFF, 0)
                self.sock.sendto(bytes(reply), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def sntp():
    servers: list[SntpServer] = []

    def make(transmit: int | None) -> SntpServer:
        servers.append(SntpServer(transmit))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_ntptime_sets_the_board_clock(board, sntp):
    when = 1_900_000_000  # 2030-03-17 17:46:40 UTC
    server = sntp(when + NTP_1970)
    result = board.run(EMIT + """
import ntptime, time
ntptime.host = %r
emit([ntptime.timeout, ntptime.time()])
emit(list(time.gmtime()[:2]))
ntptime.settime()
emit(list(time.gmtime()[:5]))
""" % server.host)
    r = records(result)
    assert r[0] == [1, when]
    assert r[1] == [2000, 1]  # the board's clock after power-up
    assert r[2] == [2030, 3, 17, 17, 46]
    assert len(server.requests[0]) == 48 and server.requests[0][0] == 0x23  # v4, client


def test_ntptime_after_the_2036_wrap_and_without_an_answer(board, sntp):
    wrapped = sntp(0x100)  # 2036-02-07 06:30:32: the 32-bit NTP seconds started again
    silent = sntp(None)
    result = board.run(EMIT + """
import ntptime
ntptime.host = %r
emit(ntptime.time())
ntptime.host = %r
ntptime.timeout = 0.3
emit(err(ntptime.time))
""" % (wrapped.host, silent.host))
    r = records(result)
    assert r[0] == 0x100000000 + 0x100 - NTP_1970
    assert r[1][0] == "OSError"  # ETIMEDOUT from the socket
    assert silent.requests


# A fresh board's first boot: the bootloader's otadata (2 operations), then inisetup: mkfs
# and the default boot.py (9).
FIRST_BOOT_OPS = 11


def test_first_boot_of_a_blank_board_takes_known_operations(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    assert Device(flash, echo=None).run(timeout=30).flash_stats["ops"] == FIRST_BOOT_OPS


@pytest.mark.parametrize("cut", range(3, FIRST_BOOT_OPS + 1))
def test_a_power_cut_while_the_first_boot_formats(tmp_path, v1_image, cut):
    # mkfs erases block 0 (operation 3, already blank), then programs its first commit
    # (operation 4): cut there, block 0 is neither blank nor littlefs, and inisetup reports
    # a corrupted filesystem for ever, as on a board (recover by erasing the vfs partition).
    # A cut anywhere else leaves a blank block 0 (formatted again) or a filesystem that
    # mounts, where the default boot.py is whole, empty or not there (inisetup does not run
    # again on a filesystem that mounts).
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    result = Device(flash, echo=None).run(timeout=4, cut_at=cut, max_boots=3)
    assert result.flash_stats["cuts"] == 1
    if cut == 4:
        assert result.exit_reason == "timeout"
        assert "The filesystem appears to be corrupted" in result.console
        assert Flash(flash).filesystem_summary()["state"] == "unknown"
    else:
        from emulator.flashfs import DEFAULT_BOOT_PY

        assert result.exit_reason == "main-returned", result.console
        f = Flash(flash)
        assert f.filesystem_summary()["state"] == "littlefs"
        boot = f.read_file("boot.py") if f.has_file("boot.py") else None
        assert boot in (None, b"", DEFAULT_BOOT_PY.encode()), boot

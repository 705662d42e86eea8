"""The simulated secondary MCU driven by a third-party SMP client (PyPI smpclient, serial
transport) with images signed by MCUboot's imgtool: upload, test, reset, confirm, revert,
refusals and faults."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from smp import packet as smppacket
from smp.exceptions import SMPBadCRC
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error, success
from smpclient.requests.image_management import (ImageErase, ImageStatesRead, ImageStatesWrite,
                                                 ImageUploadWrite)
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, ResetWrite
from smpclient.transport.serial import SMPSerialTransport

from emulator.secondary import Secondary
from emulator.secondary import mcuimage as mi
from emulator.secondary.serial import MAX_LINE, Receiver, crc16, encode_packet

IMGTOOL = str(Path(sys.executable).parent / "imgtool")
SLOT = 0x40000


def imgtool(*args: str) -> None:
    subprocess.run([IMGTOOL, *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("good", "other"):
        out[name] = folder / f"{name}.pem"
        imgtool("keygen", "-k", str(out[name]), "-t", "ecdsa-p256")
    return out


@pytest.fixture(scope="session")
def sign(tmp_path_factory, keys):
    """sign(version, key=..., size=..., self_confirm=...) -> an imgtool-signed image."""
    folder = tmp_path_factory.mktemp("images")

    def make(version: str, *, key: str = "good", size: int = 20_000, self_confirm: bool = False,
             crash: bool = False, hang: bool = False, slot_size: int = SLOT) -> bytes:
        body = hashlib.sha256(version.encode()).digest() * (size // 32)
        if self_confirm:
            body += mi.SELF_CONFIRM
        if crash:
            body += mi.CRASH
        if hang:
            body += mi.HANG
        name = f"{version}-{key}-{size}-{self_confirm}-{crash}-{hang}"
        src, dst = folder / f"{name}.in", folder / f"{name}.bin"
        src.write_bytes(body)
        imgtool("sign", "--key", str(keys[key]), "--version", version, "--header-size", "0x200",
                "--align", "4", "--slot-size", hex(slot_size), "--pad-header", str(src), str(dst))
        return dst.read_bytes()
    return make


def image_hash(image: bytes) -> bytes:
    """What the SHA-256 TLV holds: the hash of header and body (imgtool adds no protected TLVs
    here)."""
    hdr_size, = struct.unpack_from("<H", image, 8)
    img_size, = struct.unpack_from("<I", image, 12)
    return hashlib.sha256(image[:hdr_size + img_size]).digest()


class SMP:
    """smpclient over its serial transport (pyserial on the MCU's pseudo-terminal), driven
    from synchronous tests."""

    def __init__(self, mcu: Secondary, timeout: float = 3.0):
        self.mcu = mcu
        self.loop = asyncio.new_event_loop()
        self.client = SMPClient(SMPSerialTransport(), mcu.port, timeout_s=timeout)
        self.run(self.client.connect())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def request(self, req: Any, timeout: float | None = None) -> Any:
        return self.run(self.client.request(req, timeout_s=timeout))

    def upload(self, image: bytes) -> list[int]:
        async def go() -> list[int]:
            return [off async for off in self.client.upload(image, first_timeout_s=1.0,
                                                            subsequent_timeout_s=1.0)]
        return self.run(go())

    def images(self) -> dict[int, dict[str, Any]]:
        rsp = self.request(ImageStatesRead())
        assert success(rsp), rsp
        return {i.slot: {k: v for k, v in i.model_dump().items() if v is not None}
                for i in rsp.images}

    def set_state(self, hash: bytes | None, confirm: bool) -> Any:
        return self.request(ImageStatesWrite(hash=hash, confirm=confirm))

    def reset(self) -> dict[str, Any]:
        """os reset; returns once the MCU has booted again (its last boot)."""
        boots = self.mcu.status()["boots"]
        assert success(self.request(ResetWrite()))
        deadline = time.monotonic() + 10
        while self.mcu.status()["boots"] == boots:
            assert time.monotonic() < deadline, "no reboot"
            time.sleep(0.02)
        return self.mcu.status()["last_boot"]

    def close(self) -> None:
        if not self.loop.is_closed():
            self.run(self.client.disconnect())
            self.loop.close()


@pytest.fixture
def mcu(tmp_path, keys):
    with Secondary(tmp_path / "mcu", key=keys["good"]) as mcu:
        yield mcu


@pytest.fixture
def smp(mcu):
    client = SMP(mcu)
    yield client
    client.close()


def flags(entry: dict[str, Any]) -> set[str]:
    return {k for k in ("pending", "confirmed", "active", "permanent") if entry.get(k)}


# ---- the update cycle

def test_upload_test_reset_confirm(smp, mcu, sign):
    assert smp.images()[0]["version"] == "0.1.0"  # the factory image
    params = smp.request(MCUMgrParametersRead())
    assert (params.buf_size, params.buf_count) == (1024, 4)
    image = sign("1.2.3")
    offsets = smp.upload(image)
    assert offsets[-1] == len(image) and len(offsets) > 10  # many chunks of at most 1 KB
    state = smp.images()
    assert state[1]["version"] == "1.2.3" and state[1]["hash"] == image_hash(image)
    assert flags(state[1]) == set() and flags(state[0]) == {"active", "confirmed"}

    state = smp.set_state(image_hash(image), confirm=False)
    assert success(state)
    assert flags(smp.images()[1]) == {"pending"}

    boot = smp.reset()
    assert (boot["swap"], boot["version"]) == ("test", "1.2.3")
    state = smp.images()
    assert state[0]["version"] == "1.2.3" and flags(state[0]) == {"active"}  # runs unconfirmed
    assert state[1]["version"] == "0.1.0" and flags(state[1]) == {"confirmed"}  # would return

    assert success(smp.set_state(None, confirm=True))
    assert flags(smp.images()[0]) == {"active", "confirmed"}
    boot = smp.reset()
    assert (boot["swap"], boot["version"]) == ("none", "1.2.3")
    assert mcu.slot("primary")[:len(image)] == image


def test_unconfirmed_test_image_is_reverted(smp, sign):
    image = sign("1.3.0")
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=False))
    assert smp.reset()["version"] == "1.3.0"
    boot = smp.reset()  # not confirmed: MCUboot swaps back
    assert (boot["swap"], boot["version"]) == ("revert", "0.1.0")
    state = smp.images()
    assert state[0]["version"] == "0.1.0" and flags(state[0]) == {"active", "confirmed"}
    assert state[1]["version"] == "1.3.0" and flags(state[1]) == set()
    assert smp.reset()["version"] == "0.1.0"  # and stays


def test_self_confirming_application_stays(smp, sign):
    image = sign("1.4.0", self_confirm=True)
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=False))
    assert smp.reset()["version"] == "1.4.0"
    assert flags(smp.images()[0]) == {"active", "confirmed"}
    assert smp.reset()["version"] == "1.4.0"


def test_permanent_request_swaps_for_good(smp, sign):
    image = sign("2.0.0")
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=True))
    assert flags(smp.images()[1]) == {"pending", "permanent"}
    boot = smp.reset()
    assert (boot["swap"], boot["version"]) == ("perm", "2.0.0")
    assert flags(smp.images()[0]) == {"active", "confirmed"}
    assert smp.reset()["version"] == "2.0.0"


def test_pending_image_survives_a_power_cycle(smp, mcu, sign):
    image = sign("1.5.0")
    smp.upload(image)
    smp.set_state(image_hash(image), confirm=False)
    smp.close()
    mcu.power_cycle()
    assert mcu.status()["last_boot"]["version"] == "1.5.0"
    mcu.power_cycle()
    assert mcu.status()["last_boot"]["swap"] == "revert"


# ---- refused images: an SMP error, never booted

REFUSALS = {
    "other key": (dict(key="other"), mi.IMG_ERR_INVALID_TLV),
    "too large for the slot": (dict(size=SLOT - 0x800, slot_size=2 * SLOT), mi.IMG_ERR_INVALID_IMAGE_TOO_LARGE),
    "corrupted body": (dict(), mi.IMG_ERR_INVALID_HASH),
    "upload check fault": (dict(), mi.IMG_ERR_UNKNOWN),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_image(smp, mcu, sign, case):
    kw, rc = REFUSALS[case]
    image = sign("3.0.0", **kw)
    if case == "corrupted body":
        image = image[:0x300] + bytes([image[0x300] ^ 1]) + image[0x301:]
    if case == "upload check fault":
        mcu.faults(refuse="policy says no")
    with pytest.raises(SMPUploadError) as e:
        smp.upload(image)
    assert e.value.args[0].err.rc == rc
    assert 1 not in smp.images()
    rsp = smp.set_state(image_hash(image), confirm=False)
    assert error(rsp) and rsp.err.rc == mi.IMG_ERR_HASH_NOT_FOUND
    assert smp.reset()["version"] == "0.1.0"


def test_upload_larger_than_the_slot_is_refused_at_once(smp, sign):
    image = sign("3.1.0", size=SLOT + 0x1000, slot_size=4 * SLOT)
    with pytest.raises(SMPUploadError) as e:
        smp.upload(image)
    assert e.value.args[0].err.rc == mi.IMG_ERR_INVALID_IMAGE_TOO_LARGE


def test_unsigned_image_refused_by_a_keyed_mcu_and_taken_by_an_open_one(tmp_path, smp):
    image = mi.make_image(b"unsigned" * 100, (1, 0, 0, 0))
    with pytest.raises(SMPUploadError):
        smp.upload(image)
    with Secondary(tmp_path / "open") as open_mcu:
        client = SMP(open_mcu)
        client.upload(image)
        assert client.images()[1]["version"] == "1.0.0"
        client.close()


# ---- upload sessions (Zephyr img_mgmt)

def chunk(data: bytes, off: int, n: int, **first: Any) -> Any:
    return ImageUploadWrite(off=off, data=data[off:off + n], **first)


def test_upload_offsets_resume_and_restart(smp, sign):
    image = sign("1.6.0")
    sha = hashlib.sha256(image).digest()
    first = dict(len=len(image), sha=sha, image=0)
    assert smp.request(chunk(image, 0, 512, **first)).off == 512
    assert smp.request(chunk(image, 512, 512)).off == 1024
    assert smp.request(chunk(image, 4096, 512)).off == 1024  # a wrong offset: the one held
    assert smp.request(chunk(image, 0, 512, **first)).off == 1024  # same sha: goes on
    other = dict(len=len(image), sha=b"\x00" * 32, image=0)
    assert smp.request(chunk(image, 0, 300, **other)).off == 300  # another upload: over
    rsp = smp.request(ImageErase(slot=1))
    assert success(rsp)
    assert smp.request(chunk(image, 300, 300)).off == 0  # nothing held after the erase
    smp.upload(image)
    assert smp.images()[1]["version"] == "1.6.0"


def test_erase_of_a_pending_image_is_refused(smp, sign):
    image = sign("1.7.0")
    smp.upload(image)
    smp.set_state(image_hash(image), confirm=False)
    rsp = smp.request(ImageErase(slot=1))
    assert error(rsp) and rsp.rc == 6  # MGMT_ERR_EBADSTATE


def test_upload_while_the_secondary_slot_is_in_use_is_refused(smp, sign):
    image = sign("1.8.0")
    smp.upload(image)
    smp.set_state(image_hash(image), confirm=False)
    with pytest.raises(SMPUploadError) as e:  # pending
        smp.upload(sign("1.9.0"))
    assert e.value.args[0].err.rc == mi.IMG_ERR_NO_FREE_SLOT
    smp.reset()
    with pytest.raises(SMPUploadError) as e:  # holds the image to go back to
        smp.upload(sign("1.9.0"))
    assert e.value.args[0].err.rc == mi.IMG_ERR_NO_FREE_SLOT
    smp.set_state(None, confirm=True)
    smp.upload(sign("1.9.0"))
    assert smp.images()[1]["version"] == "1.9.0"


# ---- faults

def test_silence(smp, mcu):
    mcu.faults(silent=True)
    with pytest.raises(TimeoutError):
        smp.request(EchoWrite(d="anyone?"), timeout=0.5)
    mcu.clear_faults()
    assert smp.request(EchoWrite(d="back")).r == "back"


def test_corrupted_frames(smp, mcu):
    mcu.faults(corrupt=1)
    with pytest.raises(SMPBadCRC):
        smp.request(EchoWrite(d="one"))
    assert smp.request(EchoWrite(d="two")).r == "two"  # only the next answer was hit


def test_reset_at_upload_byte(smp, mcu, sign):
    """The MCU resets mid-upload: what reached flash stays, the upload state (RAM) is gone,
    so the next chunk is answered with offset 0 and the upload starts over."""
    image = sign("1.10.0")
    boots = mcu.status()["boots"]
    mcu.faults(reset_at=5000)
    with pytest.raises(TimeoutError):
        smp.upload(image)
    assert mcu.status()["boots"] == boots + 1 and mcu.status()["last_boot"]["cause"] == "reset"
    assert mcu.slot("secondary")[:5000] == image[:5000]
    assert mcu.slot("secondary")[5000:5010] != image[5000:5010]
    assert smp.request(chunk(image, 5000, 500)).off == 0
    offsets = smp.upload(image)  # fires once
    assert offsets[-1] == len(image) and smp.images()[1]["version"] == "1.10.0"


def test_slow_upload_takes_part_of_each_chunk_and_answers_late(smp, mcu, sign):
    """slow [bytes, ms(, n)]: each chunk is taken only up to `bytes` and answered `ms` later
    (the next n chunks only); the client goes on from the offset it is given."""
    image = sign("1.10.1")
    first = dict(len=len(image), sha=hashlib.sha256(image).digest(), image=0)
    mcu.faults(slow=[100, 0])
    assert smp.request(chunk(image, 0, 512, **first)).off == 100
    assert smp.request(chunk(image, 100, 512)).off == 200
    mcu.faults(slow=[0, 300])  # whole chunks, late
    assert smp.request(chunk(image, 200, 512), timeout=5).off == 712
    mcu.faults(slow=[1, 0, 2])
    assert smp.request(chunk(image, 712, 512)).off == 713
    assert smp.request(chunk(image, 713, 512)).off == 714
    assert smp.request(chunk(image, 714, 512)).off == 1226  # two chunks only
    assert mcu.faults().slow is None
    offsets = smp.upload(image)
    assert offsets[-1] == len(image) and smp.images()[1]["version"] == "1.10.1"
    assert mcu.slot("secondary")[:len(image)] == image


def test_stall_at_upload_byte(smp, mcu, sign):
    """stall [byte, seconds]: the chunk holding that byte is written and answered that much
    later, once; what comes meanwhile waits in the line. Below 0 seconds: it never answers
    again (silent)."""
    image = sign("1.10.2")
    first = dict(len=len(image), sha=hashlib.sha256(image).digest(), image=0)
    mcu.faults(stall=[700, 1.5])
    assert smp.request(chunk(image, 0, 512, **first)).off == 512
    assert smp.request(chunk(image, 512, 512), timeout=5).off == 1024
    assert "fault: stall at upload byte 700 for 1.5 s" in mcu.log()
    assert mcu.faults().stall is None  # once
    assert smp.request(chunk(image, 1024, 512)).off == 1536
    mcu.faults(stall=[2000, -1])
    with pytest.raises(TimeoutError):
        smp.request(chunk(image, 1536, 512), timeout=0.5)
    with pytest.raises(TimeoutError):
        smp.request(EchoWrite(d="anyone?"), timeout=0.5)
    assert mcu.faults().silent and "fault: stalled for good" in mcu.log()


# ---- the serial framing

def test_framing_matches_a_third_party_codec():
    message = bytes(range(256)) * 3
    ours = encode_packet(message)
    assert all(len(line) + 1 <= MAX_LINE for line in ours.split(b"\n")[:-1])
    decoder = smppacket.decode()
    next(decoder)
    with pytest.raises(StopIteration) as done:
        for line in ours.split(b"\n")[:-1]:
            decoder.send(line + b"\n")
    assert done.value.value == message
    theirs = b"".join(smppacket.encode(message, line_length=127))
    assert Receiver(buf_size=2048).feed(b"console text\r\n" + theirs) == [message]
    assert crc16(b"123456789") == 0x31C3  # CRC-16/XMODEM check value


@pytest.mark.parametrize("damage", ["bad crc", "long line", "not base64", "over buf_size"])
def test_receiver_drops_bad_packets(damage):
    message = b"\x01" * 200
    wire = b"".join(smppacket.encode(message, line_length=127))
    receiver = Receiver(buf_size=1024)
    if damage == "bad crc":
        wire = encode_packet(message, bad_crc=True)
    elif damage == "long line":
        wire = b"".join(smppacket.encode(message, line_length=160))
    elif damage == "not base64":
        wire = wire[:10] + b"*" + wire[11:]
    else:
        receiver = Receiver(buf_size=200)
    assert receiver.feed(wire) == [] and receiver.dropped == 1
    assert Receiver().feed(b"".join(smppacket.encode(message))) == [message]


def test_cli_serves_on_a_pty(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "emulator.secondary", "--state", str(tmp_path),
                             "--link", str(tmp_path / "tty"), "--no-banner"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        port = proc.stdout.readline().strip()
        assert os.path.realpath(tmp_path / "tty") == port
        loop = asyncio.new_event_loop()
        client = SMPClient(SMPSerialTransport(), str(tmp_path / "tty"))
        loop.run_until_complete(client.connect())
        assert loop.run_until_complete(client.request(EchoWrite(d="cli"))).r == "cli"
        loop.run_until_complete(client.disconnect())
        loop.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_invalid_secondary_image_is_erased_at_boot(smp, mcu, sign):
    """MCUboot validates the secondary image before it swaps: flash damaged after the upload
    is caught at the reset, the slot erased, the old image kept and marked ok."""
    image = sign("1.11.0")
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=False))
    slot = mcu.state / "secondary.bin"
    data = bytearray(slot.read_bytes())
    data[0x400] ^= 0xFF
    slot.write_bytes(bytes(data))
    boot = smp.reset()
    assert (boot["swap"], boot["version"]) == ("erased-invalid", "0.1.0")
    assert 1 not in smp.images() and mcu.status()["trailers"]["primary"]["image_ok"]
    assert mcu.slot("secondary") == b"\xff" * SLOT


def test_upgrade_only_upload_refuses_an_older_version(smp, sign):
    older = sign("0.0.9")
    with pytest.raises(SMPUploadError) as e:
        smp.run(_drain(smp.client.upload(older, upgrade=True)))
    assert e.value.args[0].err.rc == mi.IMG_ERR_CURRENT_VERSION_IS_NEWER
    smp.run(_drain(smp.client.upload(sign("0.2.0"), upgrade=True)))
    assert smp.images()[1]["version"] == "0.2.0"


async def _drain(offsets: Any) -> None:
    async for _ in offsets:
        pass


def test_unsupported_command_and_smp_v1_errors(smp):
    from smp.header import Version
    from smpclient.requests.os_management import TaskStatisticsRead

    rsp = smp.request(TaskStatisticsRead())
    assert error(rsp) and rsp.rc == 8  # MGMT_ERR_ENOTSUP
    rsp = smp.request(ImageStatesWrite(hash=b"\x01" * 32, confirm=False, version=Version.V1))
    # version 1 gets the general code (img_mgmt_translate_error_code: hash not found -> unknown)
    assert error(rsp) and rsp.rc == 1 and rsp.header.version == Version.V1


@pytest.mark.parametrize("where", ["first byte", "in the header", "after the header", "middle",
                                   "last byte"])
def test_reset_anywhere_in_an_upload_never_boots_a_partial_image(smp, mcu, sign, where):
    """A sweep over where the MCU resets during an upload: the partial image is never set
    for test nor booted, and the upload done again from the start completes."""
    image = sign("1.12.0")
    at = {"first byte": 0, "in the header": 16, "after the header": 0x200,
          "middle": len(image) // 2, "last byte": len(image) - 1}[where]
    mcu.faults(reset_at=at)
    with pytest.raises(TimeoutError):
        smp.upload(image)
    assert mcu.status()["last_boot"]["cause"] == "reset"
    rsp = smp.set_state(image_hash(image), confirm=False)
    assert error(rsp)  # not found, or refused when validated
    assert smp.reset()["version"] == "0.1.0"
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=False))
    assert smp.reset()["version"] == "1.12.0"


def test_a_test_image_that_crashes_is_reverted_at_once(smp, mcu, sign):
    """An application that faults as it starts: the MCU resets, MCUboot goes back to the
    image before, which answers; the same image made permanent leaves nothing that answers."""
    image = sign("1.13.0", crash=True)
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=False))
    boot = smp.reset()
    assert (boot["cause"], boot["swap"], boot["version"]) == ("crash", "revert", "0.1.0")
    assert "app: crashed as it started: the MCU resets" in mcu.log()
    state = smp.images()
    assert state[0]["version"] == "0.1.0" and state[1]["version"] == "1.13.0"
    smp.request(ImageErase(slot=1))
    smp.upload(image)
    assert success(smp.set_state(image_hash(image), confirm=True))
    boots = mcu.status()["boots"]
    smp.request(ResetWrite())
    deadline = time.monotonic() + 10
    while mcu.status()["boots"] == boots:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(TimeoutError):
        smp.request(EchoWrite(d="anyone?"), timeout=0.5)


def test_erase_time_holds_back_the_first_answer(tmp_path, sign):
    """With a modelled erase time the first upload request (img_mgmt erases `len` bytes
    before it answers) outlasts a client's short timeout, as smpclient's first_timeout_s
    warns; with room for it the upload goes through."""
    image = sign("1.14.0")  # 5 sectors of 4 KB: 1.5 s to erase at 300 ms each
    with Secondary(tmp_path / "slow", erase_ms=300) as slow:
        client = SMP(slow)
        with pytest.raises(TimeoutError):
            client.run(_drain(client.client.upload(image, first_timeout_s=0.3)))
        client.close()
        slow.power_cycle()  # forget the upload that was going on
        client = SMP(slow)
        client.run(_drain(client.client.upload(image, first_timeout_s=10)))
        assert client.images()[1]["version"] == "1.14.0"
        client.close()


def test_a_test_image_that_hangs_is_reset_by_its_watchdog_and_reverted(tmp_path, keys, sign):
    """An application that hangs as it starts answers nothing; the MCU's watchdog resets it
    and MCUboot goes back to the image before, which answers again."""
    image = sign("1.15.0", hang=True)
    with Secondary(tmp_path / "mcu", key=keys["good"], watchdog_ms=500) as mcu:
        smp = SMP(mcu)
        smp.upload(image)
        assert success(smp.set_state(image_hash(image), confirm=False))
        assert smp.reset()["version"] == "1.15.0"
        with pytest.raises(TimeoutError):
            smp.request(EchoWrite(d="hello?"), timeout=0.2)
        deadline = time.monotonic() + 10
        while mcu.status()["last_boot"]["cause"] != "watchdog":
            assert time.monotonic() < deadline, mcu.log()
            time.sleep(0.05)
        assert mcu.status()["last_boot"]["swap"] == "revert"
        state = smp.images()
        assert state[0]["version"] == "0.1.0" and flags(state[0]) == {"active", "confirmed"}
        smp.close()

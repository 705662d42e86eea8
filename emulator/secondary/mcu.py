"""The secondary MCU: MCUboot with two slots, and an application whose SMP server answers the
OS group (echo, reset, MCUmgr parameters) and the image-management group (state read/write,
upload, erase) as Zephyr's MCUmgr does.

Everything the MCU keeps over a reset or a restart of its process is in its state folder:
`primary.bin` and `secondary.bin` (the slots, 0xFF when erased), `mcu.json` (the image
trailers of both slots as MCUboot keeps them: magic, image_ok, copy_done; the boot count and
the last boot), `config.json` (slot size, key, buffer size, chosen when the folder was made).
The upload in progress is RAM: a reset loses it, as in Zephyr's img_mgmt.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.secondary import mcuimage as mi
from emulator.secondary.mcuimage import Refused

GROUP_OS = 0
GROUP_IMAGE = 1
OS_ECHO, OS_RESET, OS_PARAMS = 0, 5, 6
IMG_STATE, IMG_UPLOAD, IMG_ERASE, IMG_SLOT_INFO = 0, 1, 5, 6
OP_READ, OP_READ_RSP, OP_WRITE, OP_WRITE_RSP = 0, 1, 2, 3

# MCUmgr's general error codes (enum mcumgr_err_t)
MGMT_ERR_EUNKNOWN = 1
MGMT_ERR_EINVAL = 3
MGMT_ERR_ENOENT = 5
MGMT_ERR_EBADSTATE = 6
MGMT_ERR_ENOTSUP = 8
MGMT_ERR_EACCESSDENIED = 11

HEADER = struct.Struct(">BBHHBB")
SLOTS = ("primary", "secondary")
SECTOR = 0x1000
TRAILER_SIZE = SECTOR  # the slot's last sector holds the image trailer
DEFAULT_SLOT_SIZE = 0x40000
DEFAULT_BUF_SIZE = 1024
BUF_COUNT = 4

BLANK_TRAILER = {"magic": False, "image_ok": False, "copy_done": False}


def v1_rc(img_err: int) -> int:
    """An image-management error as an SMP version 1 client gets it: Zephyr's
    img_mgmt_translate_error_code (CONFIG_MCUMGR_SMP_SUPPORT_ORIGINAL_PROTOCOL)."""
    if img_err in (mi.IMG_ERR_NO_IMAGE, mi.IMG_ERR_NO_TLVS):
        return MGMT_ERR_ENOENT
    if img_err in (mi.IMG_ERR_NO_FREE_SLOT, mi.IMG_ERR_CURRENT_VERSION_IS_NEWER,
                   mi.IMG_ERR_IMAGE_ALREADY_PENDING):
        return MGMT_ERR_EBADSTATE
    if img_err in (mi.IMG_ERR_INVALID_SLOT, mi.IMG_ERR_INVALID_OFFSET, mi.IMG_ERR_INVALID_LENGTH,
                   mi.IMG_ERR_INVALID_IMAGE_HEADER, mi.IMG_ERR_INVALID_HASH):
        return MGMT_ERR_EINVAL
    return MGMT_ERR_EUNKNOWN


class Reset(Exception):
    """The MCU resets now (a fault, or after answering os reset)."""


@dataclass
class Upload:
    """img_mgmt's upload state (RAM): where the next chunk goes, the image length and the
    SHA-256 the client gave for the whole upload."""

    size: int
    sha: bytes | None
    off: int = 0


@dataclass
class Faults:
    """Faults on demand, read from `faults.json` in the state folder before each packet.

    silent: the MCU reads but never answers. corrupt: corrupt the CRC of the next N answers
    (-1: every one). reset_at: reset when an upload reaches this byte of the image (the bytes
    before it are in flash, the upload state is lost; fires once). refuse: refuse every
    completed upload with this reason (the application's upload check says no). slow:
    [bytes, ms] or [bytes, ms, n]: each upload chunk (the next n of them) is taken only up to
    that many bytes (0: all of it) and answered after ms milliseconds. stall: [byte, seconds]: when an upload reaches this byte
    of the image the MCU goes quiet for that long before it answers (it reads nothing
    meanwhile; what comes waits in the line), once; seconds below 0: for good (then silent).
    late: [ms, n]: the next n answers (-1: every one), to any request, go out ms milliseconds
    late (the MCU reads nothing meanwhile). twice: the next n answers go out twice. stale: the
    next n answers carry the sequence number of the request before. reset_late: seconds: a
    reset request is answered and the MCU goes on running (and answering) for that long
    before it resets; once. only: [group, command]: late, twice and stale apply to the answers
    to that request alone (OS reset: [0, 5]; image state: [1, 0]; upload: [1, 1])."""

    silent: bool = False
    corrupt: int = 0
    reset_at: int | None = None
    refuse: str | None = None
    slow: list[float] | None = None
    stall: list[float] | None = None
    late: list[float] | None = None
    twice: int = 0
    stale: int = 0
    reset_late: float | None = None
    only: list[int] | None = None

    @classmethod
    def load(cls, path: Path) -> "Faults":
        try:
            data = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        return cls(**{k: data[k] for k in ("silent", "corrupt", "reset_at", "refuse", "slow", "stall",
                                           "late", "twice", "stale", "reset_late", "only")
                      if k in data})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".%d.tmp" % os.getpid())  # the MCU and a test may both write
        tmp.write_text(json.dumps(self.__dict__))
        os.replace(tmp, path)


@dataclass
class MCU:
    state: Path
    slot_size: int = DEFAULT_SLOT_SIZE
    key: ec.EllipticCurvePublicKey | None = None
    buf_size: int = DEFAULT_BUF_SIZE
    log: Callable[[str], None] = print
    erase_ms: float = 0.0  # modelled time to erase one 4 KB sector (0: at once)
    trailers: dict[str, dict[str, bool]] = field(default_factory=dict)
    boots: int = 0
    upload: Upload | None = None
    running: mi.ImageInfo | None = None
    dead: bool = False  # the application crashes at every start: nothing answers
    hung: bool = False  # the application hangs: nothing answers until the watchdog resets it
    hold: float = 0.0  # seconds to wait before the answer to the message just handled
    slowed: bool = False  # the message just handled was slowed down by the slow fault
    stalled: bool = False  # the message just handled set off the stall fault

    # ---- persistent state
    def slot_path(self, slot: str) -> Path:
        return self.state / f"{slot}.bin"

    def read_slot(self, slot: str) -> bytes:
        return self.slot_path(slot).read_bytes()

    def erase_slot(self, slot: str, size: int | None = None) -> None:
        """Erase a slot (its sectors up to `size` bytes take the modelled erase time; the
        rest of the slot is taken as blank already)."""
        self.busy(size if size is not None else self.slot_size)
        self.slot_path(slot).write_bytes(b"\xff" * self.slot_size)
        self.trailers[slot] = dict(BLANK_TRAILER)

    def busy(self, erased: int) -> None:
        """The MCU is busy erasing `erased` bytes of flash (nothing answers meanwhile)."""
        if self.erase_ms > 0 and erased > 0:
            time.sleep(-(-erased // SECTOR) * self.erase_ms / 1000)

    def write_slot(self, slot: str, offset: int, data: bytes) -> None:
        with open(self.slot_path(slot), "r+b") as f:
            f.seek(offset)
            f.write(data)

    def load(self) -> None:
        try:
            saved = json.loads((self.state / "mcu.json").read_text())
        except (OSError, ValueError):
            saved = {}
        self.trailers = {s: dict(BLANK_TRAILER, **saved.get("trailers", {}).get(s, {})) for s in SLOTS}
        self.boots = saved.get("boots", 0)
        for slot in SLOTS:
            if not self.slot_path(slot).exists():
                self.erase_slot(slot, 0)  # blank from the factory

    def save(self, **extra: Any) -> None:
        data = {"trailers": self.trailers, "boots": self.boots}
        data.update(extra)
        tmp = self.state / "mcu.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state / "mcu.json")

    def image(self, slot: str) -> mi.ImageInfo | None:
        """The valid image in a slot (header and hash), or None."""
        try:
            return mi.parse(self.read_slot(slot))[0]
        except Refused:
            return None

    # ---- MCUboot
    def swap_type(self) -> str:
        """MCUboot's choice from the trailers (docs/design.md, "Swap states"): the secondary
        slot's magic set -> test (image_ok unset) or perm (image_ok set); else the primary's
        magic and copy_done set with image_ok unset -> revert (a test image that was not
        confirmed); else none."""
        sec, pri = self.trailers["secondary"], self.trailers["primary"]
        if sec["magic"]:
            return "perm" if sec["image_ok"] else "test"
        if pri["magic"] and pri["copy_done"] and not pri["image_ok"]:
            return "revert"
        return "none"

    def _swap_slots(self) -> None:
        primary, secondary = self.read_slot("primary"), self.read_slot("secondary")
        # a swap using scratch erases each used sector three times (scratch, secondary,
        # primary; design.md, "Image Swapping")
        used = max((info.total for info in (self.image("primary"), self.image("secondary"))
                    if info is not None), default=0)
        self.busy(3 * used)
        self.slot_path("primary").write_bytes(secondary)
        self.slot_path("secondary").write_bytes(primary)

    def boot(self, cause: str) -> None:
        """A reset: MCUboot's step, then the application starts (and confirms itself if its
        image says so)."""
        self.upload = None
        self.boots += 1
        swap = self.swap_type()
        action = "none"
        if swap in ("test", "perm"):
            try:
                mi.validate(self.read_slot("secondary"), self.slot_size, TRAILER_SIZE, self.key)
            except Refused as e:
                # an invalid image in the secondary slot is erased and the primary's image_ok
                # written, so that no further swap is tried (design.md, "Image Swapping")
                self.log(f"mcuboot: secondary slot invalid ({e.reason}): erased")
                self.erase_slot("secondary")
                self.trailers["primary"]["image_ok"] = True
                action = "erased-invalid"
            else:
                self._swap_slots()
                self.trailers["primary"] = {"magic": True, "copy_done": True, "image_ok": swap == "perm"}
                self.trailers["secondary"] = dict(BLANK_TRAILER)
                action = swap
        elif swap == "revert":
            # (MCUboot validates the image it goes back to as well; here it ran before, and a
            # factory image is not signed, so it is taken as it is)
            self._swap_slots()
            # a revert writes copy_done and image_ok to the primary slot: no second revert
            self.trailers["primary"] = {"magic": True, "copy_done": True, "image_ok": True}
            self.trailers["secondary"] = dict(BLANK_TRAILER)
            action = "revert"
        self.running = self.image("primary")
        version = self.running.version_str if self.running else None
        self.log(f"mcuboot: boot {self.boots} ({cause}): swap {action}, running {version}")
        self.dead = False
        if self.running and self.running.crashes:
            if self.swap_type() == "revert":
                self.log("app: crashed as it started: the MCU resets")
                self.boot("crash")  # MCUboot goes back to the image before (saves the state)
                return
            self.log("app: crashed as it started, and it is confirmed: nothing to go back to")
            self.dead = True
            self.save(last_boot={"cause": cause, "swap": action, "version": version,
                                 "time": time.time(), "crashed": True})
            return
        self.hung = bool(self.running and self.running.hangs)
        if self.hung:
            self.log("app: hangs as it starts; its watchdog will reset the MCU")
        elif self.running and self.running.self_confirms:
            self.confirm_running()
        self.save(last_boot={"cause": cause, "swap": action, "version": version,
                             "time": time.time()})

    def confirm_running(self) -> None:
        """boot_write_img_confirmed(): set image_ok in the primary slot's trailer."""
        pri = self.trailers["primary"]
        if pri["magic"] and not pri["image_ok"]:
            pri["image_ok"] = True
            self.log("app: running image confirmed")

    # ---- SMP
    def handle(self, message: bytes, faults: Faults) -> tuple[bytes | None, bool]:
        """The answer to one SMP message (None: no answer) and whether the MCU resets after
        sending it. Raises Reset when the MCU resets before answering."""
        if len(message) < HEADER.size:
            return None, False
        verop, flags, length, group, seq, cmd = HEADER.unpack_from(message)
        version, op = (verop >> 3) & 3, verop & 7
        try:
            body = cbor2.loads(message[HEADER.size:HEADER.size + length]) if length else {}
        except Exception:
            body = None
        if not isinstance(body, dict):
            answer: dict[str, Any] = {"rc": MGMT_ERR_EINVAL}
        else:
            answer = self.dispatch(group, cmd, op, body, faults)
        reset_after = bool(answer.pop("_reset", False))
        if "_group_rc" in answer:
            rc = answer.pop("_group_rc")
            reason = answer.pop("_rsn", "")
            if version >= 1:
                answer = {"err": {"group": group, "rc": rc}}
            else:
                answer = {"rc": v1_rc(rc), "rsn": reason}
        data = cbor2.dumps(answer)
        return HEADER.pack((version << 3) | (op + 1), 0, len(data), group, seq, cmd) + data, reset_after

    def dispatch(self, group: int, cmd: int, op: int, body: dict[str, Any], faults: Faults) -> dict[str, Any]:
        if group == GROUP_OS:
            if cmd == OS_ECHO and op == OP_WRITE:
                return {"r": str(body.get("d", ""))}
            if cmd == OS_RESET and op == OP_WRITE:
                return {"_reset": True}  # answered, then the MCU resets
            if cmd == OS_PARAMS and op == OP_READ:
                return {"buf_size": self.buf_size, "buf_count": BUF_COUNT}
        elif group == GROUP_IMAGE:
            if cmd == IMG_STATE and op == OP_READ:
                return self.state_read()
            if cmd == IMG_STATE and op == OP_WRITE:
                return self.state_write(body)
            if cmd == IMG_UPLOAD and op == OP_WRITE:
                return self.upload_chunk(body, faults)
            if cmd == IMG_ERASE and op == OP_WRITE:
                return self.erase(body)
            if cmd == IMG_SLOT_INFO and op == OP_READ:
                return {"images": [{"image": 0, "slots": [{"slot": 0, "size": self.slot_size},
                                                          {"slot": 1, "size": self.slot_size}],
                                    "max_image_size": self.slot_size - TRAILER_SIZE}]}
        return {"rc": MGMT_ERR_ENOTSUP}

    @staticmethod
    def refused(rc: int, reason: str) -> dict[str, Any]:
        return {"_group_rc": rc, "_rsn": reason}

    def state_read(self) -> dict[str, Any]:
        """Zephyr's img_mgmt state read: the valid images of both slots with their flags
        (img_mgmt_state_flags)."""
        swap = self.swap_type()
        images = []
        for number, slot in enumerate(SLOTS):
            info = self.image(slot)
            if info is None:
                continue
            entry: dict[str, Any] = {"slot": number, "version": info.version_str, "hash": info.hash}
            if info.bootable:
                entry["bootable"] = True
            if number == 0:
                entry["active"] = True
                if swap != "revert":  # a test image that runs unconfirmed is not
                    entry["confirmed"] = True
            else:
                if swap in ("test", "perm"):
                    entry["pending"] = True
                if swap == "perm":
                    entry["permanent"] = True
                if swap == "revert":
                    entry["confirmed"] = True
            images.append(entry)
        return {"images": images, "splitStatus": 0}

    def state_write(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the secondary image for test (confirm false) or for good (confirm true), or
        confirm the running image (confirm true, no hash or the running image's hash)."""
        confirm = bool(body.get("confirm", False))
        want = body.get("hash")
        primary, secondary = self.image("primary"), self.image("secondary")
        if want is None or (primary is not None and want == primary.hash):
            if not confirm:
                return self.refused(mi.IMG_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED,
                                    "the running image cannot be set for test")
            self.confirm_running()
        elif secondary is not None and want == secondary.hash:
            if self.swap_type() == "revert":
                return {"rc": MGMT_ERR_EBADSTATE, "rsn": "confirm the running test image first"}
            try:
                mi.validate(self.read_slot("secondary"), self.slot_size, TRAILER_SIZE, self.key)
            except Refused as e:
                return self.refused(e.rc, e.reason)
            self.trailers["secondary"] = {"magic": True, "image_ok": confirm, "copy_done": False}
            self.log(f"img: {secondary.version_str} set {'permanent' if confirm else 'for test'}")
        else:
            return self.refused(mi.IMG_ERR_HASH_NOT_FOUND, "no image with that hash")
        self.save()
        return self.state_read()

    def erase(self, body: dict[str, Any]) -> dict[str, Any]:
        slot = body.get("slot", 1)
        if slot != 1:
            return {"rc": MGMT_ERR_EINVAL, "rsn": "only the secondary slot can be erased"}
        if self.swap_type() in ("test", "perm"):
            return {"rc": MGMT_ERR_EBADSTATE, "rsn": "the secondary image is pending"}
        self.erase_slot("secondary")
        self.upload = None
        self.save()
        self.log("img: secondary slot erased")
        return {}

    def upload_chunk(self, body: dict[str, Any], faults: Faults) -> dict[str, Any]:
        """One upload request, as Zephyr's img_mgmt_upload: off 0 starts an upload (or
        resumes the one in progress with the same sha and len); a chunk at the offset held
        is written; any other offset is answered with the offset held."""
        off, data = body.get("off"), body.get("data", b"")
        if not isinstance(off, int) or not isinstance(data, bytes):
            return {"rc": MGMT_ERR_EINVAL}
        if body.get("image", 0) != 0:
            return self.refused(mi.IMG_ERR_INVALID_SLOT, "one image only")
        if off == 0:
            size, sha = body.get("len"), body.get("sha")
            if not isinstance(size, int):
                return {"rc": MGMT_ERR_EINVAL, "rsn": "len missing"}
            if len(data) < mi.HEADER.size:
                return {"rc": MGMT_ERR_EINVAL, "rsn": "the first chunk must hold the image header"}
            up = self.upload
            if up is not None and sha and up.sha == sha:
                return {"off": up.off}  # the same upload goes on where it was
            if self.swap_type() != "none":
                # img_mgmt_get_unused_slot_area_id: the secondary slot is in use while its
                # image is pending, or confirmed (the image to go back to after a test)
                return self.refused(mi.IMG_ERR_NO_FREE_SLOT, "the secondary slot is in use")
            if size > self.slot_size:
                return self.refused(mi.IMG_ERR_INVALID_IMAGE_TOO_LARGE, "larger than the slot")
            try:
                fields = mi.read_header(data)
            except Refused as e:
                return self.refused(e.rc, e.reason)
            if body.get("upgrade") and self.running is not None:
                new = fields[6:10]
                if tuple(new[:3]) <= self.running.version[:3]:
                    return self.refused(mi.IMG_ERR_CURRENT_VERSION_IS_NEWER, "not newer")
            self.erase_slot("secondary", size)  # img_mgmt erases the `len` bytes at the start
            self.save()
            self.upload = Upload(size, sha if isinstance(sha, bytes) else None)
            self.log(f"img: upload of {size} bytes started")
        up = self.upload
        if up is None or off != up.off:
            return {"off": up.off if up else 0}
        if faults.slow:
            take, ms = int(faults.slow[0]), float(faults.slow[1])
            if take > 0:
                data = data[:take]
            self.hold = ms / 1000
            self.slowed = True
        if faults.stall and off <= faults.stall[0] < off + len(data):
            self.stalled = True
            self.hold = max(self.hold, float(faults.stall[1]))
            self.log(f"fault: stall at upload byte {int(faults.stall[0])} for {faults.stall[1]} s")
        if off + len(data) > up.size:
            self.upload = None
            return self.refused(mi.IMG_ERR_INVALID_IMAGE_DATA_OVERRUN, "data past len")
        if faults.reset_at is not None and off <= faults.reset_at < off + len(data):
            self.write_slot("secondary", off, data[:faults.reset_at - off])
            self.log(f"fault: reset at upload byte {faults.reset_at}")
            raise Reset("reset at upload byte %d" % faults.reset_at)
        self.write_slot("secondary", off, data)
        up.off += len(data)
        if up.off < up.size:
            return {"off": up.off}
        return self.finish_upload(up, faults)

    def finish_upload(self, up: Upload, faults: Faults) -> dict[str, Any]:
        self.upload = None
        image = self.read_slot("secondary")[:up.size]
        match = None if up.sha is None else hashlib.sha256(image).digest() == up.sha
        try:
            if faults.refuse:
                raise Refused(mi.IMG_ERR_UNKNOWN, faults.refuse)
            info = mi.validate(self.read_slot("secondary"), self.slot_size, TRAILER_SIZE, self.key)
            if match is False:
                raise Refused(mi.IMG_ERR_INVALID_HASH, "data does not match the upload's sha")
        except Refused as e:
            self.log(f"img: upload refused: {e.reason}")
            self.erase_slot("secondary")
            self.save()
            return self.refused(e.rc, e.reason)
        self.log(f"img: upload complete, {info.version_str}")
        answer: dict[str, Any] = {"off": up.off}
        if match is not None:
            answer["match"] = match
        return answer

"""esp32 module of the emulated board: MicroPython 1.29's ports/esp32 API over a flash file.

Partition follows esp32_partition.c and the ESP-IDF calls behind it (esp_partition_read /
write / erase_range with their bounds checks, esp_ota_set_boot_partition,
esp_ota_get_next_update_partition, esp_ota_mark_app_valid_cancel_rollback), including the
errors they raise: OSError(-0x1503, 'ESP_ERR_OTA_VALIDATE_FAILED') from set_boot() on an
image that does not verify, OSError(-0x104, 'ESP_ERR_INVALID_SIZE') beyond a partition, and
so on. Like the real type, Partition has no __eq__: compare info() tuples.

See _esp32emu for the environment variables that connect it to the runner.
"""

import _esp32emu as _emu
import flashfmt as _ff

_NATIVE = 4096


class _Found:
    """A partition table row handed to Partition() by find() and get_next_update()."""

    def __init__(self, part):
        self.part = part


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = _ff.TYPE_APP
    TYPE_DATA = _ff.TYPE_DATA

    def __init__(self, *args, **kw):
        if kw:
            raise TypeError("function doesn't take keyword arguments")
        if not 1 <= len(args) <= 2:
            raise TypeError("function takes 2 positional arguments")
        ident = args[0]
        if isinstance(ident, _Found):
            part = ident.part
        elif isinstance(ident, int):
            if ident == Partition.BOOT:
                part = _emu.boot_partition()
            elif ident == Partition.RUNNING:
                part = _emu.running_partition()
            else:
                raise ValueError
        else:
            if not isinstance(ident, str):
                raise TypeError("can't convert %s to str" % type(ident).__name__)
            part = _emu.find_first(_ff.TYPE_APP, 0xFF, ident)
            if part is None:
                part = _emu.find_first(_ff.TYPE_DATA, 0xFF, ident)
        self._init(part, args[1] if len(args) == 2 else _NATIVE)

    def _init(self, part, block_size):
        if part is None:
            raise OSError(2)  # MP_ENOENT
        self._p = part
        self._bs = int(block_size) & 0xFFFF
        if self._bs == 0:
            raise ZeroDivisionError
        self._cache = bytearray(_NATIVE) if self._bs < _NATIVE else None

    @staticmethod
    def _wrap(part, block_size=_NATIVE):
        return Partition(_Found(part), block_size)

    def __repr__(self):
        p = self._p
        return "<Partition type=%u, subtype=%u, address=%u, size=%u, label=%s, encrypted=%u>" % (
            p.type, p.subtype, p.offset, p.size, p.label, 1 if p.encrypted else 0)

    @staticmethod
    def find(type=_ff.TYPE_APP, subtype=0xFF, label=None, block_size=_NATIVE):
        if label is not None and not isinstance(label, str):
            raise TypeError("can't convert %s to str" % _type_name(label))
        return [Partition._wrap(p, block_size) for p in _emu.find(type, subtype, label)]

    def info(self):
        p = self._p
        return (p.type, p.subtype, p.offset, p.size, p.label, p.encrypted)

    # ---- esp_partition_* with their checks
    def _range(self, offset, size):
        if offset < 0 or offset > self._p.size:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_ARG)
        if size > self._p.size - offset:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_SIZE)

    def _read(self, offset, buf):
        self._range(offset, len(buf))
        _emu.flash.readinto(self._p.offset + offset, buf)

    def _write(self, offset, data):
        self._range(offset, len(data))
        _emu.flash_write(self._p.offset + offset, data)

    def _erase(self, offset, size):
        self._range(offset, size)
        if size % _NATIVE:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_SIZE)
        if offset % _NATIVE:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_ARG)
        _emu.flash_erase(self._p.offset + offset, size)

    # readblocks, writeblocks with an offset and ioctl 6 allocate nothing (littlefs calls them
    # from a file's finaliser, with the heap locked; on a board they are C)
    def readblocks(self, block_num, buf, offset=None):
        addr = block_num * self._bs
        if offset is not None:
            addr += offset
        self._read(addr, buf)

    def writeblocks(self, block_num, buf, offset=None):
        addr = block_num * self._bs
        if offset is not None:
            self._write(addr + offset, buf)
            return
        # a simple write: erase the covered sectors first
        data = memoryview(buf)
        if self._bs >= _NATIVE:
            self._erase(addr, len(data))
        else:
            sector = (addr // _NATIVE) * _NATIVE
            o = addr % _NATIVE
            top = addr + len(data)
            cache = self._cache
            while sector < top:
                if o > 0 or top < sector + _NATIVE:
                    self._read(sector, cache)
                self._erase(sector, _NATIVE)
                if o > 0:
                    self._write(sector, memoryview(cache)[:o])
                if top < sector + _NATIVE:
                    self._write(top, memoryview(cache)[top - sector:])
                o = 0
                sector += _NATIVE
        self._write(addr, data)

    def ioctl(self, cmd, arg):
        if cmd in (1, 2, 3):  # init, deinit, sync
            return 0
        if cmd == 4:  # block count
            return self._p.size // self._bs
        if cmd == 5:  # block size
            return self._bs
        if cmd == 6:  # erase block
            if self._bs != _NATIVE:
                return -22  # -MP_EINVAL
            self._erase(arg * _NATIVE, _NATIVE)
            return 0
        return None

    # ---- OTA
    def set_boot(self):
        """esp_ota_set_boot_partition: verify the image, then select this slot with a new
        otadata entry in state NEW (rollback is enabled in this build)."""
        p = self._p
        try:
            if _emu.CHIP.key == "esp32":
                _ff.verify_image(_slot_reader(p), p.size, chip_rev_full=301,
                                 chunk=len(_VERIFY_BUF))
            else:  # the chip's id and revision (bootloader_common_check_chip_validity)
                _ff.verify_image(_slot_reader(p), p.size, chip_id=_emu.CHIP.chip_id,
                                 chip_rev_full=_emu.CHIP.rev_full, chunk=len(_VERIFY_BUF),
                                 memmap=(_emu.CHIP.irom, _emu.CHIP.drom, _emu.CHIP.load_regions))
        except _ff.ImageError:
            raise _emu.esp_error(_emu.ESP_ERR_OTA_VALIDATE_FAILED)
        if p.type != _ff.TYPE_APP:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_ARG)
        part, entries = _emu.read_otadata()
        if p.subtype == _ff.SUBTYPE_FACTORY:
            if part is None:
                raise _emu.esp_error(_emu.ESP_ERR_NOT_FOUND)
            _emu.flash_erase(part.offset, part.size)
            return
        if part is None:
            raise _emu.esp_error(_emu.ESP_ERR_NOT_FOUND)
        count = len(_emu.ota_slots())
        slot = p.subtype & 0x0F
        if not p.is_ota_app() or slot >= count:
            raise _emu.esp_error(_emu.ESP_ERR_INVALID_ARG)
        active = _ff.active_otadata(entries)
        if active != -1:
            cur = entries[active].seq
            if (cur - 1) % count == slot:
                nxt, seq = active, cur
            else:
                nxt, seq = (~active) & 1, _ff.seq_for_slot(cur, slot, count)
        else:
            nxt, seq = 0, slot + 1
        entries[nxt].state = _ff.OTA_IMG_NEW
        _emu.rewrite_ota_seq(part, entries, seq, nxt)

    def get_next_update(self):
        """esp_ota_get_next_update_partition(self)."""
        default = None
        next_is_result = False
        for sub in range(_ff.SUBTYPE_OTA_0, _ff.SUBTYPE_OTA_MAX):
            p = _emu.find_first(_ff.TYPE_APP, sub)
            if p is None:
                continue
            if default is None:
                default = p
            if p is self._p:
                next_is_result = True
            elif next_is_result:
                return Partition._wrap(p)
        return Partition._wrap(default)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        """esp_ota_mark_app_valid_cancel_rollback: the current otadata entry becomes VALID."""
        part, entries = _emu.read_otadata()
        if part is None:
            raise _emu.esp_error(_emu.ESP_ERR_NOT_FOUND)
        active = _ff.active_otadata(entries)
        if active == -1 or not _emu.ota_slots():
            raise _emu.esp_error(_emu.ESP_FAIL)  # "Running firmware is factory"
        if entries[active].state != _ff.OTA_IMG_VALID:
            entries[active].state = _ff.OTA_IMG_VALID
            _emu.rewrite_ota_seq(part, entries, entries[active].seq, active)


class _RomSegment(bytearray, Partition):
    """What vfs.rom_ioctl(2, ...) returns on a board built with ROMFS: the Partition of the
    "romfs" partition (esp32_partition_romfs_obj in esp32_partition.c) that also gives the
    whole partition, memory-mapped, as a buffer (esp32_partition_get_buffer): vfs.VfsRom(seg),
    memoryview(seg)[a:b]. Made once, at boot (see _esp32emu: the map)."""

    def __init__(self, size):
        pass

    # printed as the Partition it is on the board, not as 256 KB of bytes
    def __repr__(self):
        return Partition.__repr__(self)

    def __str__(self):
        return Partition.__repr__(self)

    # a board's Partition has no len() and no items: only its buffer (memoryview, VfsRom)
    def __len__(self):
        raise TypeError("object of type 'Partition' has no len()")

    def __getitem__(self, index):
        raise TypeError("'Partition' object isn't subscriptable")

    def __setitem__(self, index, value):
        raise TypeError("'Partition' object doesn't support item assignment")

    @staticmethod
    def _map():
        if not _emu.romfs_map:
            p = _emu.romfs_part
            seg = _RomSegment(p.size)
            Partition._init(seg, p, _NATIVE)
            _emu.romfs_load(seg)
            _emu.romfs_map.append(seg)
        return _emu.romfs_map[0]


def _type_name(obj):
    return type(obj).__name__


# set_boot() reads the image through this buffer, made before the firmware's heap is set
# aside: on a board esp_image_verify is C and takes nothing from the MicroPython heap
_VERIFY_BUF = bytearray(512)


def _slot_reader(p):
    view = memoryview(_VERIFY_BUF)

    def read(off, n):
        if n > len(view):
            return _emu.flash.read(p.offset + off, n)
        _emu.flash.readinto(p.offset + off, view[:n])
        return view[:n]
    return read

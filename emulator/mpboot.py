# MicroPython side of one boot of the emulated board: what ports/esp32/main.c does after the
# bootloader hands over. Run by the runner (emulator/device.py) as
#   micropython -X heapsize=N mpboot.py EMULATOR_DIR PORT_DIR FROZEN_DIR HEAP_BYTES
# 1. import the emulated built-in modules (esp32, machine, esp, network, and the board's io
#    and sys): they open the flash and state files now, then are left in sys.modules as if
#    built in;
# 2. unmount the host's / (the board starts with no filesystem), mount the firmware's frozen
#    modules (the port's stock ones plus the image's payload) at /.frozen, cd /,
#    sys.path = ['', '.frozen', '/.frozen', '/lib'];
# 3. run frozen _boot.py (the stock one mounts the vfs partition's littlefs at /, or formats
#    it through inisetup), then boot.py, then main.py (only if boot.py did not raise), like
#    pyexec: an uncaught exception prints a traceback and the board sits at the REPL.
# Exit status for the runner: 0 main.py ended, 1 an exception reached the REPL,
# 2 soft reset (SystemExit, machine.soft_reset()).
import gc
import io
import os
import sys

_ME = "mpboot.py"
_emu_dir, _port_dir, _frozen_dir, _heap = sys.argv[1:5]
_baseline = gc.mem_alloc()

sys.path[:] = [_port_dir, _emu_dir]
import esp32  # noqa: E402
import machine  # noqa: E402
import esp  # noqa: E402,F401
import _boardio  # noqa: E402
import _boardsys  # noqa: E402
import _boardvfs  # noqa: E402 - maps the "romfs" partition now, outside the firmware's heap
import _boardos  # noqa: E402
import _boardplatform  # noqa: E402
import _boardtime  # noqa: E402
import mpqstr  # noqa: E402

try:
    import network  # noqa: F401
except ImportError:
    pass
_emu = sys.modules["_esp32emu"]
for _name in ("_esp32emu", "chips", "flashfmt", "norflash", "_boardio", "_boardsys",
              "_boardvfs", "_boardos", "_boardplatform", "_boardtime", "mpqstr"):
    if _name in sys.modules:
        del sys.modules[_name]

_frozen = os.VfsPosix(_frozen_dir)  # made while host paths still resolve
try:
    os.umount("/")
except OSError:
    pass
os.mount(_frozen, "/.frozen")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/.frozen", "/lib"]
sys.argv[:] = []
# io with BufferedWriter, sys as the board's: found before the unix port's built-ins
sys.modules["io"] = sys.modules["uio"] = _boardio
sys.modules["sys"] = sys.modules["usys"] = _boardsys
sys.modules["vfs"] = _boardvfs
sys.modules["os"] = sys.modules["uos"] = _boardos
sys.modules["platform"] = _boardplatform
sys.modules["time"] = sys.modules["utime"] = _boardtime  # the board's ticks: 30 bits
# mp_init on a board with ROMFS (py/runtime.c, mp_vfs_mount_romfs_protected in extmod/vfs.c):
# mount segment 0 at /rom and append "/rom" and "/rom/lib" to sys.path; any error is ignored
if hasattr(_boardvfs, "rom_ioctl"):
    try:
        _boardvfs.mount(_boardvfs.VfsRom(_boardvfs.rom_ioctl(2, 0)), "/rom")
        sys.path.append("/rom")
        sys.path.append("/rom/lib")
    except Exception:
        pass

# Make the heap the firmware sees about the size asked for, in one free block as on a board
# that has just booted: the emulation modules above live in the same heap here, while on a
# board they are C code in flash. The firmware's block is taken first, everything else is
# pinned down by ballast, then the block is given back.
def _pin_heap():
    gc.collect()
    target = int(_heap) - _baseline
    pinned = [None] * 128
    n = 0
    try:
        keep = bytearray(target)
    except MemoryError:  # no free block that large: pin only the excess
        keep = None
    piece = 32768
    while piece >= 16 and n < len(pinned):
        if keep is None and gc.mem_free() - target < piece + 64:
            piece //= 2
            continue
        try:
            pinned[n] = bytearray(piece)
            n += 1
        except MemoryError:
            piece //= 2
    keep = None
    gc.collect()
    extra = gc.mem_free() - target  # holes too small to pin: take as much from the block
    if extra > 256:
        pinned.append(bytearray(extra - 64))
    return pinned


# the emulation's names above have filled part of MicroPython's qstr pools: the firmware's
# names start in a new pool, allocated now outside its heap (see mpqstr.py)
_qstr_pads = mpqstr.fresh_pool()
_ballast = _pin_heap()

_FORCED_EXIT = 0x100
_g = {"__name__": "__main__"}


def _print_exception(e):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    for line in buf.getvalue().split("\n"):
        # frames of this launcher and of the emulated built-in modules are not the
        # firmware's: a board shows none for them
        if line and _ME not in line and _emu_dir not in line:
            print(line)


def _exists(path):
    try:
        return os.stat(path)[0] & 0x8000 != 0
    except OSError:
        return False


def _pyexec(path, name, glob):
    """pyexec_file: 1 on success, 0 after an uncaught exception, _FORCED_EXIT on SystemExit."""
    try:
        with open(path) as f:
            src = f.read()
        exec(compile(src, name, "exec"), glob)
        return 1
    except SystemExit:
        return _FORCED_EXIT
    except BaseException as e:  # noqa: B036 - the REPL prints every exception
        _print_exception(e)
        return 0


def _main():
    if _exists("/.frozen/_boot.py"):
        _pyexec("/.frozen/_boot.py", "_boot.py", _g)  # its result is ignored, as in main.c
    ret = _pyexec("boot.py", "boot.py", _g) if _exists("boot.py") else 1
    if ret & _FORCED_EXIT:
        return 2
    if ret == 0:
        return 1
    ret = _pyexec("main.py", "main.py", _g) if _exists("main.py") else 1
    if ret & _FORCED_EXIT:
        return 2
    return 0 if ret else 1


def _soft_reset():
    """A soft reset frees the whole heap, and the finaliser of each file still open closes
    it (gc_sweep_all in main.c): littlefs commits what was written to such files."""
    _g.clear()
    gc.collect()


_status = _main()
if _status == 2:
    _soft_reset()
_emu.flash._save()
sys.exit(_status)

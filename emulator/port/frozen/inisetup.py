# Frozen inisetup of the ESP32 port (ports/esp32/modules/inisetup.py): on a first boot, make
# the filesystem (littlefs v2 in "vfs", FAT in "ffat") and write a default boot.py; refuse
# (and say so forever) when the partition is neither blank nor mountable.
import vfs

from flashbdev import bdev

BOOT_PY = """\
# This file is executed on every boot (including wake-boot from deepsleep)
#import esp
#esp.osdebug(None)
#import webrepl
#webrepl.start()
"""


def check_bootsec():
    buf = bytearray(bdev.ioctl(5, 0))  # the block size
    bdev.readblocks(0, buf)
    if buf.count(b"\xff") == len(buf):
        return True
    fs_corrupted()


def fs_corrupted():
    import micropython
    import time

    micropython.kbd_intr(3)
    while True:
        print(
            "The filesystem appears to be corrupted. If you had important data there, you\n"
            "may want to make a flash snapshot to try to recover it. Otherwise, perform\n"
            "factory reprogramming of MicroPython firmware (completely erase flash, followed\n"
            "by firmware programming).\n"
        )
        time.sleep(3)


def setup():
    check_bootsec()
    print("Performing initial setup")
    if bdev.info()[4] == "vfs":
        vfs.VfsLfs2.mkfs(bdev)
        fs = vfs.VfsLfs2(bdev)
    elif bdev.info()[4] == "ffat":
        vfs.VfsFat.mkfs(bdev)
        fs = vfs.VfsFat(bdev)
    vfs.mount(fs, "/")
    with open("boot.py", "w") as f:
        f.write(BOOT_PY)
    return fs

# Frozen _boot.py of the ESP32 port (ports/esp32/modules/_boot.py): mount the filesystem in
# the vfs partition at /, or make one on a first boot.
import gc
import vfs

from flashbdev import bdev

try:
    if bdev:
        vfs.mount(bdev, "/")
except OSError:
    import inisetup

    inisetup.setup()

gc.collect()

# Frozen flashbdev of the ESP32 port (ports/esp32/modules/flashbdev.py): the block device
# under the filesystem, the "vfs" data partition (or TinyUF2's "ffat", in 512-byte blocks).
from esp32 import Partition

bdev = Partition.find(Partition.TYPE_DATA, label="vfs") or Partition.find(
    Partition.TYPE_DATA, label="ffat", block_size=512
)
bdev = bdev[0] if bdev else None

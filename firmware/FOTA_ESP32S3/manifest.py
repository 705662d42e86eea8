# Everything the ESP32 port freezes (asyncio, umqtt.simple, requests, ...), plus the FOTA
# library. Frozen modules come before /lib on sys.path, so an update replaces them too.
include("$(PORT_DIR)/boards/manifest.py")
freeze("../../lib")

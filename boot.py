# Runs first at every boot: bring up Wi-Fi from config.json where the board has a network
# module ({"wifi": {"ssid": "...", "password": "..."}}); a no-op elsewhere. Then choose the
# application slot (fota.apps.boot: the one on trial, or the confirmed one after a failed
# trial); the loop imports the application from it (fota.apps.start), after the library.
import json
import time

try:
    import network
except ImportError:
    network = None


def wifi(timeout_ms=20000):
    try:
        with open("config.json") as f:
            w = json.load(f).get("wifi")
    except (OSError, ValueError):
        w = None
    if network is None or not w:
        return
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(w["ssid"], w.get("password", ""))
        t0 = time.ticks_ms()
        while not sta.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
            time.sleep_ms(100)
    print("boot: wifi", sta.ifconfig()[0] if sta.isconnected() else "not connected")


def application():
    try:
        from fota import apps
    except ImportError:
        return  # a library without application slots
    try:
        apps.boot()
    except Exception as e:  # an exception here would skip main.py: never let it out
        print("boot: application slots:", repr(e))


wifi()
application()

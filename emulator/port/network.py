"""network module of the emulated ESP32: a WLAN that joins at once.

The emulated board reaches the network through the host, so there is no radio to drive:
WLAN(STA_IF).connect() succeeds immediately and ifconfig() reports the loopback address.
This lets boot.py's usual Wi-Fi code run unchanged.
"""

import _esp32emu as _emu

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_WRONG_PASSWORD = 202
STAT_NO_AP_FOUND = 201
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3

_state = [{"active": False, "ssid": None, "status": STAT_IDLE, "hostname": "esp32"},
          {"active": False, "ssid": "ESP_EMU", "status": STAT_IDLE, "hostname": "esp32"}]


def hostname(name=None):
    if name is None:
        return _state[0]["hostname"]
    _state[0]["hostname"] = _state[1]["hostname"] = name


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._s = _state[interface_id]
        self._if = interface_id

    def active(self, is_active=None):
        if is_active is None:
            return self._s["active"]
        self._s["active"] = bool(is_active)
        if not is_active:
            self._s["status"] = STAT_IDLE
        return None

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._s["active"]:
            raise OSError("Wifi Not Started")
        self._s["ssid"] = ssid
        self._s["status"] = STAT_GOT_IP

    def disconnect(self):
        self._s["status"] = STAT_IDLE

    def isconnected(self):
        if self._if == AP_IF:
            return self._s["active"]
        return self._s["status"] == STAT_GOT_IP

    def status(self, param=None):
        if param == "rssi":
            return -50
        return self._s["status"]

    def scan(self):
        return []

    def ifconfig(self, config=None):
        if config is not None:
            return None
        if self._if == STA_IF and self._s["status"] != STAT_GOT_IP:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kw):
        if kw:
            if "hostname" in kw:
                hostname(kw["hostname"])
            return None
        if len(args) != 1:
            raise TypeError("can query only one param")
        name = args[0]
        if name == "mac":
            mac = bytearray(_emu.UNIQUE_ID)
            if self._if == AP_IF:
                mac[5] = (mac[5] + 1) & 0xFF
            return bytes(mac)
        if name in ("ssid", "essid"):
            return self._s["ssid"] or ""
        if name in ("hostname", "dhcp_hostname"):
            return self._s["hostname"]
        if name == "channel":
            return 1
        if name == "txpower":
            return 20
        raise ValueError("unknown config param")

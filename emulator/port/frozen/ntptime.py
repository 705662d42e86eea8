# ntptime as the ESP32 firmware freezes it (micropython-lib net/ntptime): one SNTP request
# over UDP port 123 to `host`, waiting `timeout` seconds. time() is the server's transmit
# time in this port's epoch; settime() sets the RTC (UTC) from it.
import socket
import struct
from time import gmtime

host = "pool.ntp.org"
timeout = 1

_NTP_1970 = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_NTP_2000 = 3155673600  # ... to 2000-01-01
_NTP_2024 = 3913056000  # 2024-01-01: a smaller value means the 32-bit count wrapped (2036)


def time():
    query = bytearray(48)
    query[0] = 0x23  # leap indicator 0, version 4, mode 3 (client)
    addr = socket.getaddrinfo(host, 123)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(query, addr)
        reply = s.recv(48)
    finally:
        s.close()
    seconds = struct.unpack("!I", reply[40:44])[0]  # transmit timestamp, whole seconds
    if seconds < _NTP_2024:
        seconds += 0x100000000
    epoch = gmtime(0)[0]
    if epoch == 2000:
        return seconds - _NTP_2000
    if epoch == 1970:
        return seconds - _NTP_1970
    raise Exception("Unsupported epoch: {}".format(epoch))


def settime():
    t = time()
    import machine

    tm = gmtime(t)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], 0))

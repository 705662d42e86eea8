"""The demo's application: reads a (simulated) temperature sensor at each turn of the device's
loop, keeps a moving average, and publishes it every few turns on the thing's telemetry topic
(the only one besides the Jobs topics that its policy lets it use). main.py imports it as
`app`; selftest() runs on its trial boot."""

import json

import sensor
from filters import MovingAverage

EVERY = 3  # publish every third turn

_avg = MovingAverage(8)
_turns = 0


def selftest(jobs):
    value = sensor.read()
    if not sensor.plausible(value):
        return False, "sensor reads %r" % value
    return True, ""


def step(conn):
    global _turns
    _turns += 1
    value = _avg.add(sensor.read())
    if _turns == 1:
        print("demo app: first reading %.2f C" % value)
    if _turns % EVERY == 0:
        conn.publish("things/%s/telemetry" % conn.thing,
                     json.dumps({"app": "demo", "turn": _turns, "celsius": round(value, 2)}))

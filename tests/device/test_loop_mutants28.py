"""lib/fota/loop.py, run: what the application set on the package (fota.run hands it down with
its settings callable) is handed down at start, before the watchdog is made and the application
imported, and again before every look at the job list, so that what the application sets later
(on import, or in its step) counts for the next job too."""

from __future__ import annotations

from tests.device.test_bounds import loop


def test_settings_are_handed_down_at_start_and_before_each_look_at_the_jobs():
    got = loop("""
Conn.publishes = 1
apps.start = lambda reject: events.append(["start"])
flow.handle_fota_jobs = lambda jobs, force=False, job_cbk=None: events.append(["look"])
def settings():
    events.append(["settings"])
try:
    loop.run(None, None, settings)
except KeyboardInterrupt:
    pass
out([e[0] for e in events if e[0] in ("settings", "wdt", "start", "look")])
""")
    assert got[:3] == ["settings", "wdt", "start"]
    # each look at the jobs (two on a connect: the forced one, then the turn's) follows a
    # handing down since the look before it, at every turn of the loop
    assert got[3:] == ["settings", "look", "look", "settings", "look"]

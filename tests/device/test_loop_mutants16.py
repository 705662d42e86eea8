"""lib/fota/loop.py, run: with no job notification the job list is looked at once every
jobs_s, each forced look starting the period again: not at every turn once the first period
has passed (a request to the Jobs API every second, for ever)."""

from __future__ import annotations

from tests.device.test_bounds import loop


def test_forced_looks_at_the_job_list_come_once_a_period():
    got = loop("""
cfg["telemetry_s"] = 1  # a turn of the loop a second
cfg["jobs_s"] = 3
Conn.publishes = 10
looks = []
flow.handle_fota_jobs = lambda jobs, force=False, job_cbk=None: looks.append([lt.t, force])
run()
out(looks)
""")
    # after connecting: a forced look, then one at every turn, forced every third second
    assert got == [[0, True]] + [[t * 1000, t > 0 and t % 3 == 0] for t in range(11)]

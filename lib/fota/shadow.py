# The board's report to its classic device shadow ($aws/things/<thing>/shadow/update, as AWS
# IoT's "Device Shadow MQTT topics" name it): what it runs and how its last job ended, at boot
# and after every job it ends (fota/loop.py). One short JSON message, QoS 1 (the broker's
# PUBACK says it arrived); no subscription, and the shadow service's answer is not awaited: a
# report lost with its connection is sent again once the loop has connected again.
#
#   {"state": {"reported": {"firmware": "1.0.1", "app": "none", "chip": 9,
#    "files": {"file_1": "2.0.0"},
#    "job": {"id": "...", "status": "FAILED", "reason": "...", "step": "download"}}}}
#
# "chip" is the chip id of the running image's header (esp_app_format.h: 0 ESP32, 9 ESP32-S3,
# 5 ESP32-C3; fota/otaslot.py chip_id): `fota publish` refuses an image for another chip.
#
# The shadow keeps a field a report leaves out: "files" and "job" come only once known (a
# job's file versions, as the job's status reported them; the last job this boot ended), and
# "reason" and "step" are sent as null when they have none, so that an older one goes.

import json

from fota import core, otaslot

REASON_MAX = 256  # characters of a reason in the report (the shadow takes 8 KB in all)


def document(jobs):
    # The report: jobs.last is (job id, status, statusDetails) of the last job this boot ended,
    # jobs.files the file versions its jobs reported (fota/jobs.py).
    rep = {"firmware": core.version(), "app": core.apps().version(), "chip": otaslot.chip_id()}
    if jobs.files:
        rep["files"] = jobs.files
    if jobs.last:
        job_id, status, details = jobs.last
        job = rep["job"] = {"id": job_id, "status": status, "reason": None, "step": details.get("step")}
        if details.get("reason"):
            job["reason"] = details["reason"][:REASON_MAX]
    return json.dumps({"state": {"reported": rep}})


def report(jobs):
    jobs.conn.publish("$aws/things/%s/shadow/update" % jobs.thing, document(jobs), 1)

# What every step of a job shares: the settings the application gave the package, the record
# of the update in flight, how a job's outcome is reported, and what runs (versions, trial,
# confirm, reject). It imports only the layers below it (otaslot, apps), never the package.

import json
import os

import machine
from esp32 import Partition
from fota import otaslot

RECORD = "fota.json"  # the update in flight, kept across the reset
MAX_TRIES = 3
CHUNK_LOG = 10  # log the download every 10 %
PROGRESS_EVERY = 65536  # record how far the download got, to resume after a power cut
FILE_PROGRESS_EVERY = 16384  # record how far a target's upload got, to resume after a power cut

# Set by the package (fota/__init__.py) from what the application set there, at every call:
targets = {}  # file id (1..255) -> the application's target for it (fota.target)
on_progress = None  # on_progress(file_id, step, done, size)
watchdog = None  # a machine.WDT, fed during long steps
signer = None  # P-256 public key (DER) every image must be signed with; None: config's "signer"
https_ca = None  # CA (DER) for downloads; None: the config's CA


class FotaError(Exception):
    def __init__(self, step, reason):
        super().__init__("%s: %s" % (step, reason))
        self.step = step
        self.reason = reason


def log(step, msg):
    print("fota: [%s] %s" % (step, msg))


def why(e):
    return str(e) or e.__class__.__name__


def feed():
    if watchdog:
        watchdog.feed()


def progress(fid, step, done, size):
    if on_progress:
        try:
            on_progress(fid, step, done, size)
        except Exception as e:  # the application's callback never stops an update
            log("download", "on_progress failed: %s" % why(e))


# --- what runs -------------------------------------------------------------------------

def version():
    # The running firmware's version, from its app descriptor (esp_app_desc_t).
    d = otaslot.app_desc(otaslot.running())
    return d[0] if d and d[0] else "unknown"  # stock MicroPython builds leave it empty


def apps():
    from fota import apps  # application slots: loaded when first needed (a device may have none)

    return apps


def firmware_testing():
    return otaslot.ota_state(otaslot.running()) == otaslot.OTA_PENDING_VERIFY


def testing():
    return firmware_testing() or apps().testing()


def confirm():
    if apps().testing():
        apps().confirm()
        if not firmware_testing():
            return
    Partition.mark_app_valid_cancel_rollback()


def reject(reason):
    rec = load()
    if rec:
        rec["reason"] = reason
        save(rec)
    log("rollback", reason)
    if apps().testing():
        apps().reject(reason)  # the confirmed application runs again after the reset
    elif hasattr(Partition, "mark_app_invalid_rollback_and_reboot"):
        Partition.mark_app_invalid_rollback_and_reboot()
    machine.reset()


# --- reports ---------------------------------------------------------------------------

def fail(job, step, reason):
    finish(job, "FAILED", step, {"reason": reason})
    return False


def finish(job, status, step, details):
    end(job, status, step, details)
    clear()


def end(job, status, step, details):
    details["step"] = step
    log(step, "job %s %s %s" % (job.id, status, details))
    try:
        job.update(status, details)
    except Exception as e:
        code = getattr(e, "code", None)
        if code not in ("TerminalStateReached", "InvalidStateTransition", "ResourceNotFound"):
            raise  # keep the record: the outcome is reported next time
        log(step, "job %s already ended (%s)" % (job.id, code))


def reconnect(jobs):
    if not jobs.conn.connected():
        jobs.conn.connect()


# --- the record of the update in flight ----------------------------------------------------

def load():
    try:
        with open(RECORD) as f:
            rec = json.load(f)
        return rec if isinstance(rec, dict) and "job" in rec else None
    except (OSError, ValueError):
        return None


def save(rec):
    with open(RECORD + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(RECORD + ".tmp", RECORD)


def clear():
    try:
        os.remove(RECORD)
    except OSError:
        pass


def setting(key, default=None):
    # config.json's value under key, or default.
    from fota.awsiot import CONFIG

    try:
        with open(CONFIG) as f:
            return json.load(f).get(key, default)
    except (OSError, ValueError, AttributeError):
        return default


def config_file(key):
    # The contents of the file config.json names under key, or None.
    from fota.awsiot import read

    path = setting(key)
    return read(path) if path else None


# --- the CPU clock -------------------------------------------------------------------------
# An update's inflating, patching, hashing and signature check are CPU work, and a stock
# ESP32_GENERIC runs at 160 MHz: the update runs at FAST_HZ (1.5x the clock) and puts the clock
# back after, unless config.json says "cpu_boost": false. A chip that stops lower (ESP32-C3,
# -C6: 160 MHz) refuses FAST_HZ with ValueError (ports/esp32/modmachine.c) and is left alone.

FAST_HZ = 240000000


def cpu_fast():
    # -> the clock to go back to, or None if it was left alone.
    if setting("cpu_boost", True) is False:
        return None
    old = machine.freq()
    if old >= FAST_HZ:
        return None
    try:
        machine.freq(FAST_HZ)
    except ValueError:
        return None
    log("download", "CPU clock %d MHz, from %d" % (FAST_HZ // 1000000, old // 1000000))
    return old


def cpu_back(old):
    if old:
        try:
            machine.freq(old)
        except ValueError as e:  # never: it ran at that clock before
            log("download", "CPU clock not set back to %d MHz: %s" % (old // 1000000, why(e)))

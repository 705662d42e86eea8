"""Application updates on the emulated board: a ROMFS release installed into the other
application slot, one trial boot, confirmed or rolled back, the job ending with the reason;
bad releases refused before the running application is touched."""

from __future__ import annotations

import json

import pytest

from tests.device import appimage
from tests.device.rig import ROOT, ONCE
from tests.device.test_main import run_until

MAIN = (ROOT / "main.py").read_text()
GOOD = "def step(conn):\n    print('app: step', VERSION)\n"
CONFIRMED = {"slot": 0, "trial": None, "left": 0, "versions": ["2.0.0", None], "failed": None}


def seeded(rig, app: str = MAIN, **cfg_changes):
    """A board whose application 2.0.0 is confirmed in slot 0 (/app0)."""
    r = rig(app=app)
    (r.fs / "app0").mkdir()
    (r.fs / "app0" / "app.py").write_text("VERSION = '2.0.0'\n" + GOOD)
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg.update(cfg_changes)
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def publish_app(r, image: bytes, **doc):
    return r.publish(image, target="app", **doc)


def record(r) -> dict:
    return json.loads(r.file("apps.json"))


def test_first_application_installs_confirms_and_reports_both_versions(rig):
    r = rig(app=MAIN)
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["telemetry_s"] = 1
    (r.fs / "config.json").write_text(json.dumps(cfg))
    job = publish_app(r, appimage.app("2.0.0", GOOD, **{"lib/helper.py": "X = 1\n"}))
    result, console = run_until(r, job, "SUCCEEDED")
    details = r.execution(job).status_details
    assert details["version"] == "2.0.0" and details["from_version"] == "none", details
    assert details["target"] == "app" and details["firmware"] == "1.0.0", details
    assert "apps: [confirm] application 2.0.0 confirmed" in console
    assert record(r)["slot"] == 0 and record(r)["trial"] is None
    assert r.file("app0/app.mpy")[:2] == b"M\x06" and r.file("app0/lib/helper.mpy")
    assert r.version() == "1.0.0" and r.boot_slot() == "ota_0"  # the firmware is not touched


def test_new_application_replaces_the_confirmed_one(rig):
    r = seeded(rig, telemetry_s=1)
    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result, console = run_until(r, job, "SUCCEEDED")
    assert "app: step 2.1.0" not in console.split("confirmed")[0]  # runs once confirmed
    rec = record(r)
    assert rec["slot"] == 1 and rec["versions"] == ["2.0.0", "2.1.0"], rec
    assert r.file("app0/app.py")  # the previous one stays for the next update to replace
    assert r.execution(job).status_details["from_version"] == "2.0.0"


@pytest.mark.parametrize("body, why", [
    ("raise ImportError('no module named sensors')\n",
     "rolled back: import of application 2.1.0 failed: ImportError('no module named sensors',)"),
    ("def selftest(jobs):\n    return False, 'sensor silent'\n",
     "rolled back: self-test failed: sensor silent"),
], ids=["import-error", "self-test"])
def test_application_that_fails_its_trial_is_rolled_back(rig, body, why):
    r = seeded(rig, telemetry_s=1)
    job = publish_app(r, appimage.app("2.1.0", body))
    again = "app: step 2.0.0"  # the confirmed application, printed after the job has ended

    result, console = run_until(r, job, "FAILED", seen=lambda c: again in c.split("apps: [rollback]")[-1])
    details = r.execution(job).status_details
    assert details["reason"] == why
    assert details["version"] == "2.0.0" and details["firmware"] == "1.0.0"  # what runs now
    rec = record(r)
    assert rec["slot"] == 0 and rec["trial"] is None, rec
    assert rec["failed"] == why[len("rolled back: "):]  # ended by reject(), not by a reset
    assert again in console.split("apps: [rollback]")[-1]  # the confirmed one runs again


@pytest.mark.parametrize("body, cause", [
    ("import machine\nmachine.reset()\n", "hard reset"),  # a reset loop from its import
    ("def selftest(jobs):\n    while True:\n        pass\n", "watchdog reset"),  # a hang
], ids=["reset-loop", "hang"])
def test_application_that_resets_before_confirming_is_rolled_back(rig, body, cause):
    r = seeded(rig, telemetry_s=1, watchdog_s=3)
    job = publish_app(r, appimage.app("2.1.0", body))
    result, console = run_until(r, job, "FAILED")
    assert r.execution(job).status_details["reason"] == (
        "rolled back: application 2.1.0 did not confirm (%s on its trial boot)" % cause)
    assert record(r)["slot"] == 0 and record(r)["trial"] is None


def mpy(version_byte: int = 6, feature: int = 0) -> bytes:
    return bytes([77, version_byte, feature, 31]) + b"\x00" * 12


@pytest.mark.parametrize("image, doc, reason", [
    (appimage.app("2.1.0"), {"bc_idx": 2}, "bad fota data: bc_idx 2: no such OTA slot (0..1)"),
    (appimage.app("2.1.0"), {"bc_idx": 0}, "bad fota data: bc_idx 0 is the running slot"),
    (b"\xe9" + bytes(999), {}, "not a ROMFS image"),
    (appimage.raw([("app.mpy", mpy(5))]), {}, "app.mpy: bytecode version 5, this firmware runs 6"),
    (appimage.raw([("app.mpy", mpy(6, 5 << 2 | 3))]), {},
     "app.mpy: native code for armv7m.3, this firmware runs xtensawin.3"),
    (appimage.raw([("main.mpy", mpy())]), {}, "no app.mpy or app.py at the top of the image"),
    (appimage.app("2.1.0"), {"bc_size": 4_000_000}, "bad fota data: bc_size 4000000 does not fit"),
    (appimage.app("2.1.0"), {"version": "2.2.0"}, "the image is version 2.1.0, the document says 2.2.0"),
    (appimage.app("2.1.0"), {"bc_crc": "0" * 32}, "MD5 mismatch"),
])
def test_bad_release_fails_before_the_running_application_is_touched(rig, image, doc, reason):
    r = seeded(rig, app=ONCE)
    before = (r.fs / "app0" / "app.py").read_bytes()
    job = publish_app(r, image, **doc)
    result = r.run(max_boots=3)
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "FAILED" and reason in ex.status_details["reason"], (ex, result.console)
    assert r.file("app0/app.py") == before and record(r) == CONFIRMED
    assert not has_folder(r, "app1")  # what was unpacked is gone
    assert result.boot_count == 1


def has_folder(r, name: str) -> bool:
    from emulator.flash import Flash

    return any(p.lstrip("/").startswith(name + "/") for p in Flash(r.flash).files())


# --- the ROMFS route: this project's firmware (a "romfs" partition, two 128 KB slots) ------

SLOT0 = appimage.app("2.0.0", GOOD)


def romfs_seeded(rig, app: str = MAIN, **cfg_changes):
    """A board with ROMFS whose application 2.0.0 is confirmed in ROMFS slot 0."""
    from emulator.flash import create_flash
    from tests.device.rig import firmware

    r = rig(app=app)
    create_flash(r.flash, firmware("1.0.0"), romfs=True, romfs_slots={0: SLOT0})
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg.update(cfg_changes)
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def romfs_slot(r, i: int) -> bytes:
    from emulator.flash import Flash

    return Flash(r.flash).romfs_slot(i)


def test_romfs_application_is_written_to_the_other_half_and_confirmed(rig):
    r = romfs_seeded(rig, telemetry_s=1)
    new = appimage.app("2.1.0", GOOD, **{"lib/helper.py": "X = 1\n"})
    job = publish_app(r, new)
    result, console = run_until(r, job, "SUCCEEDED", seen=lambda c: "app: step 2.1.0" in c)
    assert "apps: [boot] application 2.1.0 from ROMFS slot 1" in console
    assert "app: step 2.1.0" in console
    assert romfs_slot(r, 1)[:len(new)] == new
    assert romfs_slot(r, 0)[:len(SLOT0)] == SLOT0
    assert record(r)["slot"] == 1 and record(r)["versions"] == ["2.0.0", "2.1.0"]
    assert not has_folder(r, "app0") and not has_folder(r, "app1")  # no folders on this route


def test_romfs_application_whose_import_fails_is_rolled_back(rig):
    r = romfs_seeded(rig, telemetry_s=1)
    job = publish_app(r, appimage.app("2.1.0", "import sensors\n"))
    result, console = run_until(r, job, "FAILED")
    reason = r.execution(job).status_details["reason"]
    assert reason.startswith("rolled back: import of application 2.1.0 failed: ImportError"), reason
    assert "apps: [boot] application 2.0.0 from ROMFS slot 0" in console.split("apps: [rollback]")[-1]
    assert romfs_slot(r, 0)[:len(SLOT0)] == SLOT0 and record(r)["slot"] == 0


@pytest.mark.parametrize("image, doc, reason", [
    (b"\xe9" + bytes(999), {}, "not a ROMFS image"),
    (appimage.raw([("app.mpy", mpy(6, 5 << 2 | 3))]), {},
     "app.mpy: native code for armv7m.3, this firmware runs xtensawin.3"),
    (appimage.app("2.1.0", "X = %r\n" % ("x" * 140_000)), {},
     "bad fota data: bc_size"),  # larger than the 128 KB slot
    (appimage.app("2.1.0"), {"bc_idx": 0}, "bad fota data: bc_idx 0 is the running slot"),
])
def test_romfs_bad_release_leaves_the_running_slot_alone(rig, image, doc, reason):
    r = romfs_seeded(rig, app=ONCE)
    job = publish_app(r, image, **doc)
    result = r.run(max_boots=3)
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "FAILED" and reason in ex.status_details["reason"], (ex, result.console)
    assert romfs_slot(r, 0)[:len(SLOT0)] == SLOT0 and record(r) == CONFIRMED
    assert romfs_slot(r, 1)[:3] != b"\xd2\xcd\x31"  # nothing there mounts


def test_unknown_target_is_refused():
    from tests.device.mpy import run_json

    out = run_json("""
import json
from fota.plan import plan, DocError
doc = {"operation": "fota", "target": "apps", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 10,
       "bc_url": "https://h/x"}
try:
    plan(doc, 2, 0, 1, 100)
    print(json.dumps("accepted"))
except DocError as e:
    print(json.dumps(str(e)))
""")
    assert out == 'target must be "firmware" or "app"'


def test_firmware_update_keeps_the_application_and_reports_both_versions(rig):
    from tests.device.rig import firmware

    r = seeded(rig, app=ONCE)
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details["version"] == "1.0.1" and ex.status_details["app_version"] == "2.0.0"
    assert r.version() == "1.0.1" and record(r) == CONFIRMED
    assert result.console.count("apps: [boot] application 2.0.0 from /app0") == 2  # both boots


def test_romfs_slot_0_deployed_without_a_record_is_adopted_then_updated(rig):
    # As `mpremote romfs deploy` leaves a board: slot 0 holds an application, no apps.json.
    r = romfs_seeded(rig, app=ONCE)
    (r.fs / "apps.json").unlink()
    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result = r.run()
    assert "apps: [boot] ROMFS slot 0 holds application 2.0.0: confirmed" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert record(r)["slot"] == 1 and record(r)["versions"] == ["2.0.0", "2.1.0"]
    assert romfs_slot(r, 0)[:len(SLOT0)] == SLOT0


def test_application_job_cycle_fits_the_heap_budget_the_readme_gives(rig):
    # An application job (download and unpack, trial boot with the application imported,
    # confirm) with the library in flash and no more heap than a firmware job may take.
    from tests.device import romlib
    from tests.device.test_heap import readme_budget_kb

    r = seeded(rig)
    # boot.py cannot see the library before main.py mounts it here: choose the slot after
    app = ("from fota import apps\napps.boot()\n" + ONCE
           + "app = apps.start(fota.reject)\nprint('app: runs', app.VERSION)\n")
    image_kb = -(-romlib.install(r.fs, app) // 1024) + 1  # the image's bytes: a board has them in flash
    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result = r.run(heapsize=f"{readme_budget_kb() + image_kb}k")
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert "app: runs 2.1.0" in result.console


def test_application_that_never_gets_to_confirm_is_rolled_back_after_the_trial_time(rig):
    # The new application breaks the connection (its import patches it): the trial boot never
    # reaches the job flow that would confirm it; after trial_s it ends.
    r = seeded(rig, telemetry_s=1, trial_s=5)
    breaks = ("from fota import awsiot\n"
              "def connect(self):\n"
              "    raise OSError(113)\n"
              "awsiot.Connection.connect = connect\n")
    job = publish_app(r, appimage.app("2.1.0", breaks + GOOD))
    result, console = run_until(r, job, "FAILED", timeout=120,
                                seen=lambda c: "app: step 2.0.0" in c.split("apps: [rollback]")[-1])
    reason = r.execution(job).status_details["reason"]
    assert reason.startswith("rolled back: no connection to AWS IoT on the trial boot"), reason
    assert record(r)["slot"] == 0 and "app: step 2.0.0" in console.split("apps: [rollback]")[-1]


# --- ROMFS slot 0 deployed by hand: `mpremote romfs deploy` checks the whole partition -------

HALF = 0x20000  # a ROMFS slot: half of FOTA_ESP32's 256 KB romfs partition


def image_of(size: int) -> bytes:
    """Application 2.0.0 (GOOD) with a padding file that makes the image `size` bytes.
    mpremote's writer makes images of even length (a 0x80 byte, a zero digit, leads the
    length's varuint when it would be odd); without that byte the image is one shorter and
    the same to extmod/vfs_rom.c."""
    base = size - len(appimage.app("2.0.0", GOOD, **{"pad.bin": ""}))
    for pad in range(base - 4, base + 4):
        image = appimage.app("2.0.0", GOOD, **{"pad.bin": "x" * pad})
        if len(image) == size:
            return image
        if len(image) == size + 1 and image[3] == 0x80:
            return image[:3] + image[4:]
    raise AssertionError(f"no image of {size} bytes")


def deployed(rig, image: bytes, app: str):
    """A board with ROMFS onto which `mpremote romfs deploy` put `image`: no apps.json."""
    from emulator.flash import create_flash, deploy_romfs
    from tests.device.rig import firmware

    r = rig(app=app)
    create_flash(r.flash, firmware("1.0.0"), romfs=True)
    deploy_romfs(r.flash, image)
    return r


RUNS = ONCE + "from fota import apps\napp = apps.start(fota.reject)\nprint('app: runs', app and app.VERSION)\n"


def test_romfs_image_of_exactly_a_slot_deployed_by_hand_is_adopted(rig):
    r = deployed(rig, image_of(HALF), RUNS)
    result = r.run(max_boots=2)
    assert result.exit_reason == "main-returned", result.console
    assert "apps: [boot] ROMFS slot 0 holds application 2.0.0: confirmed" in result.console
    assert "apps: [boot] application 2.0.0 from ROMFS slot 0" in result.console
    assert "app: runs 2.0.0" in result.console
    assert record(r)["slot"] == 0


def test_romfs_image_one_byte_over_a_slot_deployed_by_hand_is_refused(rig):
    r = deployed(rig, image_of(HALF + 1), RUNS)
    result = r.run(max_boots=1)
    assert result.exit_reason == "main-returned", result.console
    assert (f"apps: [boot] ROMFS slot 0 holds an image of {HALF + 1} bytes, more than the "
            f"slot's {HALF}: not adopted, no application runs (deploy one of at most {HALF} "
            "bytes)") in result.console
    assert "app: runs None" in result.console  # nothing mounted from it; the board works on
    assert "Traceback" not in result.console and "boot: application slots" not in result.console
    assert r.file("apps.json") is None
    # and an application job installs into slot 0 over it
    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result = r.run(max_boots=3)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert "apps: [boot] application 2.1.0 from ROMFS slot 0" in result.console
    assert record(r)["slot"] == 0 and record(r)["versions"][0] == "2.1.0"


def test_romfs_slot_over_its_size_in_the_record_is_refused_not_mounted(rig):
    # a record that already names slot 0 (an older library adopted it): the mount is refused
    # with the sizes, and the loop runs without an application
    r = deployed(rig, image_of(HALF + 1), RUNS)
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    result = r.run(max_boots=2)
    assert result.exit_reason == "main-returned", result.console
    assert (f"boot: application slots: OSError(19, \"ROMFS slot 0 holds an image of {HALF + 1} "
            f"bytes, more than the slot's {HALF}\")") in result.console
    assert "app: runs None" in result.console and "app: done" in result.console

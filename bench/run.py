"""`make bench`: every benchmark of the project, one after the other, on this machine.

Runs bench/device_bench.py (device-side update throughput and heap), bench/jobs_bench.py
(the local stand-in's Jobs API under 100 things, and a job for a group of 1,000) and
bench/air_bench.py (bytes on the air, compressed and delta, and the modelled on-board time of
an update, on real MicroPython ESP32 firmware fetched from PyPI or taken from FIRMWARE_DIR),
bench/app_bench.py (an application update against a firmware update of the same change, and
the heap an application takes run in place from ROMFS against from the filesystem),
bench/cpu_bench.py (the board's CPU: calibration against MicroPython's perf_bench results for an
ESP32, and each update's modelled on-board time with its CPU part, at 160 and 240 MHz),
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
    if sys.argv[1:] == ["cpu"]:  # only the board's CPU in the model, into build/bench-cpu.json
        results = {"cpu": run("cpu_bench.py")}
        results["ratios"] = cpu_ratios(results["cpu"])
        return write(results, "bench-cpu.json")
    results = {"device": run("device_bench.py"), "apps": run("app_bench.py"),
               "jobs": run("jobs_bench.py"),
               "jobs_baseline": run("jobs_bench.py", "--things", "1", "--requests", "500", "--group", "1"),
               "air": run("air_bench.py"), "cpu": run("cpu_bench.py"), "mip": run("mip_bench.py")}
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
        **cpu_ratios(results["cpu"]),
        # the same change as a firmware update against as an application update
        "firmware_vs_app_update_bytes": results["apps"]["update"]["ratios"]["bytes"],
        "firmware_vs_app_update_seconds": results["apps"]["update"]["ratios"]["seconds"],
        # the library as mip installs it: .py source against .mpy
        **{f"mip_{k}": v for k, v in results["mip"]["ratios"].items()},
    }
    return write(results)


def cpu_ratios(cpu: dict) -> dict:
    """The board's CPU: the factors in force (board time / this machine's, by kind of work,
    at 160 and 240 MHz), the modelled on-board time of each way at 1 Mbit/s and 240 MHz
    against the full image's, and the goals."""
    out: dict = {}
    for mhz, kinds in cpu["calibration"]["factors_now"].items():
        for kind, f in kinds.items():
            out[f"cpu_factor_{kind}_{mhz}mhz"] = f"{f['nominal']} ({f['low']}-{f['high']})"
    m = cpu["model"]
    full = m["full https 1Mbit 240MHz"]["total_s"]
    for way in ("compressed", "delta"):
        out[f"board_{way}_vs_full_1mbit_240mhz"] = round(m[f"{way} https 1Mbit 240MHz"]["total_s"] / full, 2)
    out["board_full_cpu_vs_flash_240mhz"] = cpu["goals_240MHz_1Mbit_https"]["full_cpu_at_most_10pc_of_flash"]["share"]
    return out


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

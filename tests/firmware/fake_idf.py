"""A stand-in for `idf.py build` in a fake MicroPython ports/esp32, for the firmware tests.

It does what matters for the app version, as ESP-IDF and MicroPython do it: the configuration
`<build>/sdkconfig` is made from the board's SDKCONFIG_DEFAULTS (mpconfigboard.cmake, later
files winning) only when it does not exist; an existing one is kept, and only options it lacks
are added from the defaults. The "app" is then an ESP32 app image whose esp_app_desc_t carries
CONFIG_APP_PROJECT_VER, cut to 31 characters as components/esp_app_format/CMakeLists.txt does
(or empty with CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=y).

    python fake_idf.py BOARD_DIR BUILD_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from images import raw_app_image


def defaults_files(board: Path, port: Path) -> list[Path]:
    text = (board / "mpconfigboard.cmake").read_text()
    block = re.search(r"set\(SDKCONFIG_DEFAULTS\s+(.*?)\)", text, re.S)
    if block is None:
        raise SystemExit("mpconfigboard.cmake sets no SDKCONFIG_DEFAULTS")
    files = []
    for item in block.group(1).split():
        item = item.replace("${MICROPY_BOARD_DIR}", str(board))
        path = Path(item) if Path(item).is_absolute() else port / item
        files.append(path)
    return files


def options(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def main(board_dir: str, build_dir: str) -> int:
    port = Path.cwd()
    board, build = Path(board_dir), port / build_dir
    build.mkdir(parents=True, exist_ok=True)
    defaults: dict[str, str] = {}
    for f in defaults_files(board, port):
        defaults.update(options(f.read_text()))
    sdkconfig = build / "sdkconfig"
    config = options(sdkconfig.read_text()) if sdkconfig.exists() else {}
    for k, v in defaults.items():
        config.setdefault(k, v)
    sdkconfig.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    csv = config.get("CONFIG_PARTITION_TABLE_CUSTOM_FILENAME", '""').strip('"')
    if config.get("CONFIG_PARTITION_TABLE_CUSTOM") == "y":
        # partition_table/project_include.cmake: relative to the project (ports/esp32)
        if not (port / csv).is_file():
            raise SystemExit(f"fake idf.py: partition table {csv} not found")
    (build / "CMakeCache.txt").write_text("MICROPY_BOARD:STRING=FOTA_ESP32\n")
    version = config.get("CONFIG_APP_PROJECT_VER", '"1"').strip('"')
    if config.get("CONFIG_APP_EXCLUDE_PROJECT_VER_VAR") == "y":
        version = ""
    (build / "micropython.bin").write_bytes(raw_app_image(version[:31]))
    print(f"fake idf.py: app version {version!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

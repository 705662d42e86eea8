# Two commands set up a fresh machine: `make demo` and `make test`.
# Everything they need is installed here, never by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := .deps
UMQTT  := $(DEPS)/umqtt/simple.py
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test docs bench reliability mutants mutants-sample clean system-packages firmware mip

setup: $(VENV)/.installed $(UMQTT) system-packages

# Debian packages: mosquitto is the broker of the local AWS IoT stand-in; faketime (libfaketime)
# gives the emulated ESP32 its own clock; chromium and chromium-driver (headless, driven by
# Selenium) let the tests look at `fota dashboard` as a person would.
system-packages:
	@{ command -v mosquitto >/dev/null 2>&1 && ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 && \
	   command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  echo "installing mosquitto, faketime, chromium and chromium-driver (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    mosquitto faketime chromium chromium-driver >/dev/null; }

$(VENV)/.installed: tools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e 'tools[dev]'
	touch $@

# umqtt.simple for the device: fetched from PyPI as the sdist that pip cannot install.
$(UMQTT): $(VENV)/.installed tools/fotatools/deps.py
	$(BIN)/python -m fotatools.deps $(DEPS)

# CHIP=esp32s3 or CHIP=esp32c3: the same demo on an emulated ESP32-S3 (8 MB) or ESP32-C3
demo: setup
	$(BIN)/python tools/demo.py $(if $(CHIP),--chip $(CHIP))

# The documentation is built first (MkDocs, strict: a broken link or anchor, or a page missing
# from the nav, fails the run), into build/site; then the tests. Not --quiet: it hides the
# warnings that --strict counts.
test: setup
	$(BIN)/mkdocs build --strict -d build/site
	$(BIN)/python -m pytest -n 2

# The documentation site alone, into build/site (open build/site/index.html).
docs: setup
	$(BIN)/mkdocs build --strict -d build/site

bench: setup
	$(BIN)/python bench/run.py

# Every check of the device code broken in turn, each against the tests that claim it
# (tests/mutants.py): a table of caught / missed; fails if any is missed.
mutants: setup
	$(BIN)/python tests/mutants.py

# Mutations nobody named, drawn at random by seed over lib/fota and the stand-in, each run
# against the tests that run its code (tests/mutate.py; the map is kept in build/): prints
# killed / survived / equivalent and every survivor's diff; fails under 90 % killed.
SEED  ?= 1
COUNT ?= 300
JOBS  ?= 2
mutants-sample: setup
	$(BIN)/python tests/mutate.py --seed $(SEED) --count $(COUNT) --jobs $(JOBS)

# Every fault sweep in full (power cuts, hostile documents, dropped connections, restarts, ...):
# one table of "survived / tried"; fails unless every row is whole.
reliability: setup
	@mkdir -p build && rm -f build/reliability.jsonl
	RELIABILITY=1 RELIABILITY_LOG=build/reliability.jsonl $(BIN)/python -m pytest -n 2 -q -m row \
	  tests/reliability tests/device tests/cloud; status=$$?; \
	  $(BIN)/python -m tests.reliability.table build/reliability.jsonl && exit $$status

# The device library as a package index for mip (micropython-lib's layout): .mpy for the
# boards' bytecode version and .py source, umqtt.simple with it. Serve build/mip over HTTP(S), or
#   mpremote mip install --index build/mip fota
mip: setup
	$(BIN)/fota mip-index build/mip

clean:
	rm -rf $(VENV) $(DEPS) build .pytest_cache

# A real ESP32 firmware (needs ESP-IDF in the environment and a MicroPython checkout):
#   make firmware MPY_DIR=~/micropython VERSION=1.0.1 [BOARD=FOTA_ESP32S3]
# -> $(MPY_DIR)/ports/esp32/build-$(BOARD)/micropython.bin (app image for `fota build`)
#    and firmware.bin (bootloader + partition table + app, for the first flash).
# The version reaches the app descriptor through sdkconfig.version, one of the board's sdkconfig
# defaults. ESP-IDF reads defaults only when it creates a configuration, and MicroPython keeps
# the configuration (sdkconfig) in the build folder, so a build folder configured for another
# VERSION, or older than a board sdkconfig/cmake file, loses its sdkconfig and CMakeCache.txt
# (idf.py reruns cmake only without a cache or with new -D values): the configuration is made
# again from the defaults. Compiled objects stay; a rebuild of the same VERSION is incremental.
# VERSION: 1-31 of A-Z a-z 0-9 . _ + - (esp_app_desc_t.version is char[32], NUL-terminated;
# quotes, spaces or `;` would break the Kconfig string or the C define).
# BOARD: FOTA_ESP32 (default), FOTA_ESP32S3 (8 MB or more) or FOTA_ESP32C3 (firmware/).
BOARD    ?= FOTA_ESP32
FW_BOARD := $(CURDIR)/firmware/$(BOARD)
FW_BUILD  = $(MPY_DIR)/ports/esp32/build-$(BOARD)
firmware: export FW_VERSION = $(VERSION)
firmware:
	@test -d "$(MPY_DIR)/ports/esp32" || { echo "set MPY_DIR to a MicroPython checkout"; exit 2; }
	@test -f "$(FW_BOARD)/mpconfigboard.cmake" || { echo "no board $(BOARD) in firmware/: FOTA_ESP32, FOTA_ESP32S3 or FOTA_ESP32C3"; exit 2; }
	@case "$$FW_VERSION" in \
	  "") echo "set VERSION, e.g. VERSION=1.0.1"; exit 2;; \
	  *[!0-9A-Za-z._+-]*) echo "bad VERSION '$$FW_VERSION': use letters, digits and . _ + - only (no quotes or spaces)"; exit 2;; \
	esac; \
	if [ $${#FW_VERSION} -gt 31 ]; then \
	  echo "bad VERSION '$$FW_VERSION': $${#FW_VERSION} characters, the app descriptor holds 31"; exit 2; fi
	@printf 'CONFIG_APP_PROJECT_VER="%s"\n' "$$FW_VERSION" > "$(FW_BOARD)/sdkconfig.version.new"; \
	if cmp -s "$(FW_BOARD)/sdkconfig.version.new" "$(FW_BOARD)/sdkconfig.version"; then \
	  rm -f "$(FW_BOARD)/sdkconfig.version.new"; \
	else mv -f "$(FW_BOARD)/sdkconfig.version.new" "$(FW_BOARD)/sdkconfig.version"; fi
	@printf 'CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME="%s"\n' \
	  "$(FW_BOARD)/partitions.csv" > "$(FW_BOARD)/sdkconfig.partitions.new"; \
	if cmp -s "$(FW_BOARD)/sdkconfig.partitions.new" "$(FW_BOARD)/sdkconfig.partitions"; then \
	  rm -f "$(FW_BOARD)/sdkconfig.partitions.new"; \
	else mv -f "$(FW_BOARD)/sdkconfig.partitions.new" "$(FW_BOARD)/sdkconfig.partitions"; fi
	@cfg="$(FW_BUILD)/sdkconfig"; \
	if [ -f "$$cfg" ] && { ! grep -qxF "CONFIG_APP_PROJECT_VER=\"$$FW_VERSION\"" "$$cfg" || \
	    [ -n "$$(find "$(FW_BOARD)" -type f \( -name 'sdkconfig.*' -o -name '*.cmake' \) -newer "$$cfg")" ]; }; then \
	  echo "firmware $$FW_VERSION: a fresh configuration from the board's sdkconfig defaults"; \
	  rm -f "$$cfg" "$(FW_BUILD)/CMakeCache.txt"; fi
	$(MAKE) -C "$(MPY_DIR)/ports/esp32" BOARD_DIR="$(FW_BOARD)" BUILD=build-$(BOARD) submodules all

"""The limits of the device code, each with its value pinned and a test on each side of it.

A row names a limit, the file that enforces it, how its value is pinned (a module constant and
its value, or the text of the check in the function that makes it), and the pytest node ids
of its tests: `inside` at the limit itself (taken), `outside` one past it (refused). For a time
the device waits or a default that config.json can change, `inside` observes the value and
`outside` the next step past it (the back-off's cap) or the value config.json sets instead.
tests/device/test_bounds_table.py checks that every test exists, that every pin matches the
source, and that every module-level integer constant of lib/fota is a row here or is listed in
NOT_BOUNDS with the reason it is no limit.

Change a limit: change its pin here, and its tests, in the same change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Const:
    name: str  # a module-level constant of the row's file
    value: int


@dataclass(frozen=True)
class Text:
    function: str  # "name" or "Class.method" in the row's file
    text: str  # occurs in that function's source


@dataclass(frozen=True)
class Bound:
    name: str
    file: str  # relative to the repository root
    pins: tuple
    inside: tuple[str, ...]
    outside: tuple[str, ...]


B = "tests/device/test_bounds.py::"
PLAN, SMP, TARGET, CBOR = "lib/fota/plan.py", "lib/fota/smp.py", "lib/fota/target.py", "lib/fota/cbor.py"
STREAMS, HTTPS, CLOCK, JOBS = "lib/fota/streams.py", "lib/fota/https.py", "lib/fota/clock.py", "lib/fota/jobs.py"
AWSIOT, LOOP, CORE = "lib/fota/awsiot.py", "lib/fota/loop.py", "lib/fota/core.py"


def ids(test: str, *params: str) -> tuple[str, ...]:
    return tuple(f"{B}{test}[{p}]" for p in params)


def doc(field: str, inside: tuple[str, ...], outside: tuple[str, ...]) -> dict:
    return {"inside": ids("test_document_field", *(f"{field}-inside-{v}" for v in inside)),
            "outside": ids("test_document_field", *(f"{field}-outside-{v}" for v in outside))}


def io_(test: str, inside: tuple[str, ...], outside: tuple[str, ...]) -> dict:
    return {"inside": ids(test, *(f"inside-{v}" for v in inside)),
            "outside": ids(test, *(f"outside-{v}" for v in outside))}


def row(name: str, file: str, pins, **tests) -> Bound:
    pins = pins if isinstance(pins, tuple) else (pins,)
    return Bound(name, file, pins, tuple(tests["inside"]), tuple(tests["outside"]))


FOTAPLAN = "tests/device/test_fotaplan.py::test_deflate_windows_of_2_9_to_2_12_bytes"
SLOW = "tests/device/test_secondary_jobs.py::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset"
FLOW = "tests/device/test_flow_checks.py::"

BOUNDS = [
    # --- job documents
    row("bc_idx: an OTA slot, 0 .. slots - 1", PLAN, Text("plan", "not 0 <= idx < nslots"),
        **doc("bc_idx", ("1", "0"), ("2", "-2"))),
    row("bc_size: 1 .. the slot's bytes", PLAN, Text("plan", "not 0 < size <= slot_size"),
        **doc("bc_size", ("slot", "1"), ("slot+1", "0"))),
    row("bc_crc: 32 hex digits", PLAN, Text("plan", "len(md5) != 32"), **doc("bc_crc", ("32",), ("31", "33"))),
    row("bc_url: https:// and a host", PLAN, Text("_url", "len(url) < 9"), **doc("bc_url", ("9",), ("8",))),
    row("bc_url: printable ASCII only (no space, CR LF, DEL or non-ASCII)", PLAN,
        Text("_url", 'min(url) <= " " or max(url) > "~"'),
        **doc("bc_url-char", ("33", "126"), ("32", "CRLF", "127", "233"))),
    row("URL of a download: printable ASCII only", HTTPS,
        Text("split_url", 'min(url) <= " " or max(url) > "~"'),
        inside=tuple(f"tests/device/test_https_mutants10.py::test_a_url_without_a_host_is_refused[{p}]"
                     for p in ("char-inside-33", "char-inside-126")),
        outside=tuple(f"tests/device/test_https_mutants10.py::test_a_url_without_a_host_is_refused[{p}]"
                      for p in ("char-outside-31", "space-in-path", "char-outside-127", "non-ascii"))),
    row("bc_wbits: 9 .. MAX_WBITS", PLAN, (Const("MAX_WBITS", 12), Text("_codec", "not 9 <= wbits <= MAX_WBITS")),
        inside=(f"{FOTAPLAN}[9-True]", f"{FOTAPLAN}[12-True]"), outside=(f"{FOTAPLAN}[8-False]", f"{FOTAPLAN}[13-False]")),
    row("bc_zsize of a deflate file: 1 .. the slot's bytes", PLAN, Text("_codec", "not 0 < xsize <= slot_size"),
        **doc("deflate-bc_zsize", ("slot", "1"), ("slot+1", "0"))),
    row("bc_zsize of a delta patch: 1 .. the slot's bytes", PLAN, Text("_codec", "not 0 < xsize <= slot_size"),
        **doc("delta-bc_zsize", ("slot", "1"), ("slot+1", "0"))),
    row("bc_base: 64 hex digits", PLAN, Text("_codec", "len(sha) != 64"), **doc("bc_base", ("64",), ("63", "65"))),
    row("version, fwversion: 1 .. VERSION_MAX characters", PLAN,
        (Const("VERSION_MAX", 31), Text("_version", "not 0 < len(v) <= VERSION_MAX")),
        **doc("version", ("31", "1"), ("32", "0"))),
    row("names and versions: no C0, DEL or C1 control character", PLAN,
        Text("control", "o < 32 or 127 <= o < 160"), **doc("control", ("32", "126", "160"), ("31", "127", "159"))),
    row("fileid: 0 .. 255", PLAN, Text("files", "not 0 <= fid <= 255"), **doc("fileid", ("0", "255"), ("-1", "256"))),
    row("filesize: at least 1", PLAN, Text("_afr_file", "if size <= 0"), **doc("filesize", ("1",), ("0",))),
    row("filesize of file 0: at most the slot's bytes", PLAN, Text("_afr_ota", "f.size > slot_size"),
        **doc("filesize", ("slot",), ("slot+1",))),
    row("filepath: each name at most NAME_MAX bytes", PLAN, (Const("NAME_MAX", 255), Text("_filepath", "j - i - 1 > NAME_MAX")),
        **doc("filepath", ("255",), ("256",))),
    row("streamname: 1 .. STREAM_MAX characters", PLAN,
        (Const("STREAM_MAX", 128), Text("_afr_file", "not 0 < len(stream) <= STREAM_MAX")),
        **doc("streamname", ("128", "1"), ("129", "0"))),
    row("size of an aws_fota document: 1 .. the slot's bytes", PLAN, Text("_aws_fota", "not 0 < size <= slot_size"),
        **doc("size", ("slot", "1"), ("slot+1", "0"))),
    # --- SMP and the MCUboot target
    row("SMP answer within TIMEOUT_MS of its request", SMP, Const("TIMEOUT_MS", 3000),
        **io_("test_smp_answer_within_the_request_timeout", ("2999ms",), ("3000ms",))),
    row("SMP request sent TRIES times", SMP, Const("TRIES", 3),
        **io_("test_smp_tries_of_a_request", ("3rd-try",), ("4th-try",))),
    row("SMP request message at most MTU bytes", SMP, (Const("MTU", 512), Text("Smp._send", "8 + n > MTU")),
        **io_("test_smp_largest_request", ("512",), ("513",))),
    row("SMP answer message at most MTU bytes", SMP, (Const("MTU", 512), Text("Smp.__init__", "bytearray(2 + MTU + 2)")),
        **io_("test_smp_largest_answer", ("512",), ("513",))),
    row("SMP answer line: 132 bytes kept", SMP, Text("Smp.__init__", "self.line = bytearray(132)"),
        **io_("test_smp_longest_line_of_an_answer", ("line-130",), ("line-134",))),
    row("SMP result codes named: 0 .. len(ERRORS) - 1", SMP, Text("_check", "0 <= rc < len(ERRORS)"),
        **io_("test_smp_result_codes_it_names", ("13",), ("14",))),
    row("upload answers that take under half: at most SHORT", TARGET, Const("SHORT", 8),
        inside=ids("test_smp_target_short_upload_answers", "inside-8") + (f"{SLOW}[8 short answers]",),
        outside=ids("test_smp_target_short_upload_answers", "outside-9") + (f"{SLOW}[9 short answers]",)),
    row("upload chunk: the MCU's buffer size only above 2 * OVERHEAD (else CHUNK)", TARGET,
        (Const("CHUNK", 256), Const("OVERHEAD", 64), Text("SmpTarget._create", "n > 2 * OVERHEAD")),
        **io_("test_smp_target_upload_chunk_from_the_mcus_buffer_size", ("129",), ("128",))),
    row("upload chunk: the MCU's buffer size at most MTU", TARGET, Text("SmpTarget._create", "min(n, smp.MTU) - OVERHEAD"),
        **io_("test_smp_target_upload_chunk_from_the_mcus_buffer_size", ("512",), ("513",))),
    row("upload offset the MCU reports: at most the image size", TARGET, Text("SmpTarget._send", "off > self.size"),
        **io_("test_smp_target_offset_the_mcu_reports", ("size",), ("size+1",))),
    row("MCU answers within BOOT_MS after its reset", TARGET, Const("BOOT_MS", 20000),
        **io_("test_smp_target_boot_time_after_its_reset", ("20000ms",), ("20001ms",))),
    row("wait of RESET_MS after a reset request (a pause)", TARGET, Const("RESET_MS", 1000),
        inside=(f"{B}test_smp_target_wait_after_a_reset_request[inside]",),
        outside=(f"{B}test_smp_target_wait_after_a_reset_request[outside]",)),
    row("file target: a name of NAME_MAX bytes with .new", TARGET, Text("FileTarget.where", "n + len(STAGE) > NAME_MAX"),
        **io_("test_file_target_longest_name", ("251",), ("252",))),
    # --- CBOR
    row("CBOR nesting: MAX_DEPTH levels", CBOR, Const("MAX_DEPTH", 8), **io_("test_cbor_nesting", ("8",), ("9",))),
    row("CBOR integers: below 2**32", CBOR, Text("_head", '(0x100000000, 26, ">I")'),
        **io_("test_cbor_largest_integer", ("2**32-1",), ("2**32",))),
    row("CBOR length codes: up to 27 (8 bytes)", CBOR, Text("_item", "if v > 27"), **io_("test_cbor_length_codes", ("27",), ("28",))),
    row("CBOR encoding: within the caller's buffer", CBOR, Text("encode", "i + len(obj) > len(buf)"),
        **io_("test_cbor_encode_into_its_buffer", ("fills",), ("one-more",))),
    row("CBOR string: within its message", CBOR, Text("_item", "if i + v > len(mv)"),
        **io_("test_cbor_string_within_its_message", ("3",), ("4",))),
    # --- MQTT file streams
    row("stream block within TIMEOUT_MS", STREAMS, Const("TIMEOUT_MS", 10000),
        **io_("test_stream_block_within_its_timeout", ("10000ms",), ("10001ms",))),
    row("stream block asked for TRIES times", STREAMS, Const("TRIES", 3),
        **io_("test_stream_tries_of_a_block", ("3rd-request",), ("4th-request",))),
    row("stream blocks asked for at once: WINDOW", STREAMS, Const("WINDOW", 8),
        **io_("test_stream_blocks_asked_for_at_once", ("8-blocks",), ("9-blocks",))),
    row("stream block: exactly BLOCK bytes", STREAMS, Const("BLOCK", 4096),
        **io_("test_stream_block_size", ("4096",), ("4095", "4097"))),
    row("stream file size: at least 1", STREAMS, Text("StreamFile.describe", "self.size <= 0"),
        **io_("test_stream_file_size", ("1",), ("0",))),
    row("stream message: a map of at most 23 entries", STREAMS, Text("_decode", "mv[0] & 31 >= 24"),
        **io_("test_stream_message_map_size", ("23",), ("24",))),
    row("stream message string: within the message", STREAMS, Text("_decode", "v > len(mv) - i"),
        **io_("test_stream_string_within_its_message", ("3",), ("4",))),
    # --- HTTPS
    row("HTTP response: at most HEADER_LINES header lines", HTTPS, Const("HEADER_LINES", 64),
        **io_("test_https_header_lines", ("64",), ("65",))),
    row("HTTP header line: at most LINE_MAX bytes", HTTPS, Const("LINE_MAX", 1024),
        **io_("test_https_header_line_length", ("1024",), ("1025",))),
    row("HTTP headers within the timeout (30 s)", HTTPS,
        (Const("TIMEOUT", 30), Text("get", "timeout = timeout or TIMEOUT"), Text("_line", "time.ticks_diff(deadline, time.ticks_ms()) < 0")),
        **io_("test_https_headers_within_the_timeout", ("30000ms",), ("30001ms",))),
    row("HTTPS handshakes after certificate date refusals: 3", HTTPS, Text("get", "tries = 3"),
        **io_("test_https_handshakes_after_certificate_date_refusals", ("2",), ("3",))),
    row("URL port: 1 .. 65535", HTTPS, Text("split_url", "not 0 < port < 65536"),
        **io_("test_https_port_of_a_url", ("65535", "1"), ("65536", "0"))),
    # --- the clock
    row("two time sources agree within AGREE seconds", CLOCK, Const("AGREE", 60),
        **io_("test_clock_two_sources_agree", ("60s",), ("61s",))),
    row("NTP times believed from SLACK before the floor to AHEAD after it", CLOCK,
        (Const("SLACK", 86400), Const("AHEAD", 7305 * 86400)),
        **io_("test_clock_times_believed_around_the_floor", ("floor-1day", "floor+20years"),
              ("floor-1day-1s", "floor+20years+1s"))),
    row("NTP reply: at least 48 bytes", CLOCK, Text("parse", "len(reply) < 48"),
        inside=ids("test_clock_ntp_reply_fields", "length-inside-48"),
        outside=ids("test_clock_ntp_reply_fields", "length-outside-47")),
    row("NTP reply: stratum at most 15", CLOCK, Text("parse", "reply[1] > 15"),
        inside=ids("test_clock_ntp_reply_fields", "stratum-inside-15"),
        outside=ids("test_clock_ntp_reply_fields", "stratum-outside-16")),
    row("NTP reply: version 3 or 4", CLOCK, Text("parse", "version not in (3, 4)"),
        inside=ids("test_clock_ntp_reply_fields", "version-inside-3", "version-inside-4"),
        outside=ids("test_clock_ntp_reply_fields", "version-outside-2", "version-outside-5")),
    row("NTP era: seconds from 0x80000000 are era 0, below it era 1 (2036 on)", CLOCK, Text("parse", "secs < 0x80000000"),
        **io_("test_clock_ntp_era", ("era0-0x80000000",), ("era1-0x7fffffff",))),
    row("NTP port: 1 .. 65535", CLOCK, Text("address", "not 0 < port < 65536"),
        **io_("test_clock_ntp_port", ("65535", "1"), ("65536", "0"))),
    row("NTP answer within TIMEOUT_S (the socket's timeout)", CLOCK, Const("TIMEOUT_S", 1),
        inside=(f"{B}test_clock_ntp_timeout_is_given_to_the_socket",),
        outside=(f"{B}test_clock_ntp_timeout_is_no_answer",)),
    row("clock retries: FIRST_WAIT_MS doubling up to MAX_WAIT_MS (a back-off)", CLOCK,
        (Const("FIRST_WAIT_MS", 10000), Const("MAX_WAIT_MS", 60000)),
        inside=(f"{B}test_clock_retry_waits_below_the_cap",), outside=(f"{B}test_clock_retry_waits_at_the_cap",)),
    row("time sources asked again RESYNC_MS after they agreed", CLOCK, Const("RESYNC_MS", 6 * 3600_000),
        **io_("test_clock_sources_asked_again_after_6_hours", ("6h-1ms",), ("6h",))),
    row("after a date refusal: back to the floor when more than AGREE s off it", CLOCK,
        Text("hint", "(t - fl if expired else fl - t) > AGREE"),
        inside=ids("test_clock_back_to_the_floor_after_a_date_refusal", "ahead-inside-60s", "behind-inside-60s"),
        outside=ids("test_clock_back_to_the_floor_after_a_date_refusal", "ahead-outside-61s", "behind-outside-61s")),
    row("a clock below the floor is set to it", CLOCK, Text("ready", "now() < fl"),
        **io_("test_clock_below_the_floor_is_set_to_it", ("floor",), ("floor-1s",))),
    row("build time: 144 bytes of the app image", CLOCK, Text("build_time", "len(head) < 144"),
        **io_("test_clock_build_time_needs_144_bytes", ("144",), ("143",))),
    # --- Jobs and the MQTT session
    row("Jobs answer within TIMEOUT_MS", JOBS, Const("TIMEOUT_MS", 10000),
        **io_("test_jobs_answer_within_the_timeout", ("10000ms",), ("10001ms",))),
    row("statusDetails value: at most 1024 characters", JOBS, Text("_details", "str(v)[:1024]"),
        **io_("test_jobs_status_detail_length", ("1024",), ("1025",))),
    row("MQTT handshakes per connect after certificate date refusals: CLOCK_TRIES", AWSIOT, Const("CLOCK_TRIES", 4),
        **io_("test_mqtt_handshakes_after_certificate_date_refusals", ("3",), ("4",))),
    row("MQTT ping after half the keep-alive (60 s) of silence", AWSIOT,
        (Text("Connection.__init__", "keepalive=60"), Text("Connection.wait", "> self.keepalive * 500")),
        **io_("test_mqtt_ping_after_half_the_keepalive", ("30000ms",), ("30001ms",))),
    row("MQTT read bound READ_S (the socket's timeout)", AWSIOT, Const("READ_S", 30),
        inside=(f"{B}test_mqtt_read_bound_is_given_to_the_socket",),
        outside=("tests/device/test_session_bounds.py::test_a_broker_that_stops_costs_the_read_bound[silent-want0]",
                 "tests/device/test_session_bounds.py::test_a_broker_that_stops_costs_the_read_bound[half-want1]")),
    # --- the loop
    row("loop back-off: 1 s doubling, at most 60 s", LOOP, Text("run", "pause = min(pause * 2, 60)"),
        inside=(f"{B}test_loop_backoff_below_its_cap",), outside=(f"{B}test_loop_backoff_at_its_cap",)),
    row("watchdog_s: 120 by default", LOOP, Text("run", 'cfg.get("watchdog_s", 120)'),
        inside=ids("test_loop_watchdog_timeout", "default-120s"), outside=ids("test_loop_watchdog_timeout", "config-7s")),
    row("jobs_s: the job list looked at every 300 s by default", LOOP, Text("run", 'cfg.get("jobs_s", 300)'),
        inside=ids("test_loop_jobs_look_period", "default-300s"), outside=ids("test_loop_jobs_look_period", "config-7s")),
    row("telemetry_s: 30 by default", LOOP, Text("run", 'cfg.get("telemetry_s", 30)'),
        inside=ids("test_loop_telemetry_period", "default-30s"), outside=ids("test_loop_telemetry_period", "config-7s")),
    row("trial_s: a trial boot reaches AWS IoT within it (120 by default)", LOOP,
        (Text("run", 'cfg.get("trial_s", 120)'), Text("run", "time.ticks_diff(time.ticks_ms(), trial_end) > 0")),
        inside=ids("test_loop_trial_time_to_reach_aws_iot", "default-inside-120000ms", "config-inside-7000ms"),
        outside=ids("test_loop_trial_time_to_reach_aws_iot", "default-outside-120001ms", "config-outside-7001ms")),
    # --- downloads, records, retries
    row("download: a broken connection retried, MAX_TRIES connections", "lib/fota/install.py",
        Text("_download", "tries >= core.MAX_TRIES"), **io_("test_download_broken_connections", ("2",), ("3",))),
    row("download of a file for a target: MAX_TRIES connections", "lib/fota/files.py",
        Text("_receive", "tries == core.MAX_TRIES"), **io_("test_file_download_broken_connections", ("2",), ("3",))),
    row("download after power cuts: MAX_TRIES boots", "lib/fota/flow.py", Text("_run", "tries > MAX_TRIES"),
        inside=(f"{FLOW}test_two_interrupted_downloads_are_tried_a_third_time",),
        outside=(f"{FLOW}test_a_download_interrupted_three_times_is_not_tried_again",)),
    row("files step after power cuts: MAX_TRIES boots", "lib/fota/files.py", Text("run", 'rec["tries"] > core.MAX_TRIES'),
        **io_("test_files_step_boots_after_power_cuts", ("3rd-boot",), ("4th-boot",))),
    row("MAX_TRIES itself", CORE, Const("MAX_TRIES", 3),
        inside=ids("test_download_broken_connections", "inside-2"), outside=ids("test_download_broken_connections", "outside-3")),
    row("progress recorded every PROGRESS_EVERY bytes", CORE, Const("PROGRESS_EVERY", 65536),
        **io_("test_download_progress_recorded_every_64_kb", ("64KB",), ("60KB",))),
    row("a target's progress recorded every FILE_PROGRESS_EVERY bytes", CORE, Const("FILE_PROGRESS_EVERY", 16384),
        **io_("test_file_progress_recorded_every_16_kb", ("16384",), ("16383",))),
    row("CPU clock raised below FAST_HZ", CORE, Const("FAST_HZ", 240000000),
        **io_("test_cpu_clock_raised_below_240_mhz", ("239999999",), ("240000000",))),
    # --- images
    row("compressed piece: exactly PIECE image bytes", "lib/fota/inflate.py", Const("PIECE", 65536),
        **io_("test_inflate_piece_size", ("65536",), ("65537", "65535"))),
    row("delta heatshrink window: at most 2**MAX_WINDOW", "lib/fota/delta.py", Const("MAX_WINDOW", 12),
        **io_("test_delta_heatshrink_window", ("12",), ("13",))),
    row("heatshrink window: 4 .. 15 bits", "lib/fota/heatshrink.py", Text("Decoder.__init__", "4 <= window_sz2 <= 15"),
        inside=ids("test_heatshrink_parameters", "window-inside-4", "window-inside-15"),
        outside=ids("test_heatshrink_parameters", "window-outside-3", "window-outside-16")),
    row("heatshrink lookahead: 3 .. window - 1 bits", "lib/fota/heatshrink.py",
        Text("Decoder.__init__", "3 <= lookahead_sz2 < window_sz2"),
        inside=ids("test_heatshrink_parameters", "lookahead-inside-3", "lookahead-inside-window-1"),
        outside=ids("test_heatshrink_parameters", "lookahead-outside-2", "lookahead-outside-window")),
    row("delta: reads within the base image", "lib/fota/delta.py", Text("Patch.readinto", "f + k > self.blen"),
        **io_("test_delta_reads_within_its_base", ("base",), ("base+1",))),
    row("delta: an image of at most MAX_IMAGE bytes, a base position within MAX_IMAGE of 0", "lib/fota/delta.py",
        (Const("MAX_IMAGE", 1 << 24), Text("Patch.__init__", "self.total > MAX_IMAGE"),
         Text("Patch._next", "not 0 <= f <= 2 * MAX_IMAGE")),
        inside=tuple(f"tests/device/test_delta_entries.py::{t}" for t in (
            "test_delta_image_length[inside-max]", "test_delta_base_position[inside-max]",
            "test_delta_base_position[inside-minus-max]", "test_delta_base_position[inside-max-5-bytes]")),
        outside=tuple(f"tests/device/test_delta_entries.py::{t}" for t in (
            "test_delta_image_length[outside-max+1]", "test_delta_base_position[outside-max+1]",
            "test_delta_base_position[outside-minus-max-1]", "test_delta_base_position[outside-max+1-5-bytes]"))),
    row("delta: an image of at least 1 byte", "lib/fota/delta.py", Text("Patch.__init__", "self.total <= 0"),
        **io_("test_delta_image_size", ("1",), ("0",))),
    row("delta size field: at most 6 bytes", "lib/fota/delta.py", Text("_size", "shift > 34"),
        **io_("test_delta_size_field_length", ("6-bytes",), ("7-bytes",))),
    row("CRLE length: at most 6 bytes", "lib/fota/delta.py", Text("Crle._uleb", "shift > 35"),
        **io_("test_crle_length_field", ("6-bytes",), ("7-bytes",))),
    row("ROMFS name: 1 .. MAX_NAME bytes", "lib/fota/romimage.py", (Const("MAX_NAME", 64), Text("_name", "not 0 < n <= MAX_NAME")),
        **io_("test_romfs_name_length", ("64", "1"), ("65", "0"))),
    row("ROMFS name characters: 33 .. 126, not /", "lib/fota/romimage.py", Text("_name", "c < 33 or c > 126 or c == 47"),
        **io_("test_romfs_name_characters", ("33", "126"), ("32", "127", "47"))),
    row("ROMFS varuint: at most 5 bytes", "lib/fota/romimage.py", Text("Reader.uint", "range(5)"),
        **io_("test_romfs_varuint_length", ("5-bytes",), ("6-bytes",))),
    row("ROMFS record: within its folder", "lib/fota/romimage.py", Text("walk", "if stop > ends[-1]"),
        **io_("test_romfs_record_within_its_folder", ("ends-with-its-folder",), ("one-byte-past",))),
    row("ROMFS data: within its file", "lib/fota/romimage.py", Text("_data", "rd.pos + n > stop"),
        **io_("test_romfs_data_within_its_file", ("ends-with-its-file",), ("one-byte-past",))),
    row("an application's VERSION file: 1 .. 31 characters", "lib/fota/appwrite.py", Text("Seen.file", "len(head) <= 31"),
        **io_("test_application_version_file", ("31", "1"), ("32", "0"))),
    row("an adopted ROMFS application's VERSION: 1 .. 31 characters", "lib/fota/apps.py", Text("_adopt", "0 < len(v) <= 31"),
        **io_("test_adopted_application_version", ("31",), ("32",))),
    row("an application's trial: TRIAL_BOOTS boots", "lib/fota/apps.py", Const("TRIAL_BOOTS", 1),
        **io_("test_application_trial_boots", ("1st-boot",), ("2nd-boot",))),
    row("an application's slot: the free space less RESERVE", "lib/fota/apps.py", Const("RESERVE", 16 * 4096),
        **io_("test_application_capacity_leaves_the_reserve", ("capacity",), ("capacity+1",))),
    row("a ROMFS image fits its half of the partition", "lib/fota/apps.py", Text("_oversize", "if n > h"),
        **io_("test_romfs_image_fits_its_slot", ("100",), ("101",))),
    row("slot writer: an image of 1 .. the slot's bytes", "lib/fota/otaslot.py", Text("SlotWriter.__init__", "size <= 0 or size > cap"),
        **io_("test_slot_writer_image_size", ("slot", "1"), ("slot+1", "0"))),
    row("slot writer: resumes at a SECTOR boundary within the image", "lib/fota/otaslot.py",
        (Const("SECTOR", 4096), Text("SlotWriter.__init__", "start % SECTOR or start > size")),
        **io_("test_slot_writer_resume_offset", ("size", "sector"), ("size+sector", "sector-1"))),
    row("OTA slots: app subtypes 0x10 .. 0x1F", "lib/fota/otaslot.py", Text("slots", "0x10 <= p.info()[1] <= 0x1F"),
        **io_("test_ota_slot_subtypes", ("0x10-0x1f",), ("0x00-0x20",))),
    row("an app image within its slot", "lib/fota/appimage.py", Text("length", "pos > cap"),
        **io_("test_app_image_fits_its_slot", ("fills-the-slot",), ("16-bytes-more",))),
    row("self-test: MIN_FREE bytes of heap in PIECE-byte pieces", "lib/fota/selftest.py",
        (Const("MIN_FREE", 30000), Const("PIECE", 4096)), **io_("test_self_test_heap", ("8-pieces",), ("7-pieces",))),
    row("signature integers: at most 33 bytes", "lib/fota/ecdsa.py", Text("signature", "der[i + 1] > 33"),
        **io_("test_signature_integer_length", ("33",), ("34",))),
    row("public key: 65 or 91 bytes", "lib/fota/ecdsa.py", Text("public_key", "len(der) not in (65, 91)"),
        **io_("test_public_key_length", ("65", "91"), ("64", "92"))),
    row("boot.py: Wi-Fi joins within 20 s", "boot.py", Text("wifi", "timeout_ms=20000"),
        **io_("test_boot_wifi_timeout", ("20000ms",), ("20001ms",))),
    # --- the device shadow report
    row("a reason in the shadow report: at most REASON_MAX characters", "lib/fota/shadow.py",
        (Const("REASON_MAX", 256), Text("document", "[:REASON_MAX]")),
        inside=("tests/device/test_shadow.py::test_a_reason_is_cut_at_256_characters",),
        outside=("tests/device/test_shadow.py::test_a_reason_is_cut_at_256_characters",)),
]

# Module-level integer constants of lib/fota that are no limit, and why.
NOT_BOUNDS = {
    ("lib/fota/smp.py", "OP_READ"): "an SMP operation code",
    ("lib/fota/smp.py", "OP_WRITE"): "an SMP operation code",
    ("lib/fota/smp.py", "GROUP_OS"): "an SMP group id",
    ("lib/fota/smp.py", "GROUP_IMAGE"): "an SMP group id",
    ("lib/fota/smp.py", "VERSION"): "the SMP protocol version sent in every header",
    ("lib/fota/smp.py", "PIECE"): "how the device cuts the lines it sends: 123 bytes, within MCUmgr's 127, a "
                                  "limit of the MCU, whose emulation (emulator/secondary/serial.py) drops longer lines",
    ("lib/fota/target.py", "MCUBOOT_MAGIC"): "the MCUboot header's magic number",
    ("lib/fota/target.py", "HEADER"): "the size of MCUboot's image header, a format",
    ("lib/fota/appimage.py", "HEAD"): "the size of ESP-IDF's image header (esp_image_header_t), a format",
    ("lib/fota/otaslot.py", "APP_DESC_MAGIC"): "esp_app_desc_t's magic number",
    ("lib/fota/otaslot.py", "OTA_NEW"): "an otadata state",
    ("lib/fota/otaslot.py", "OTA_PENDING_VERIFY"): "an otadata state",
    ("lib/fota/otaslot.py", "OTA_VALID"): "an otadata state",
    ("lib/fota/otaslot.py", "OTA_INVALID"): "an otadata state",
    ("lib/fota/otaslot.py", "OTA_ABORTED"): "an otadata state",
    ("lib/fota/otaslot.py", "OTA_UNDEFINED"): "an otadata state",
    ("lib/fota/otaslot.py", "CHECK"): "the size of the read-back pieces: any divisor of SECTOR compares the same",
    ("lib/fota/appwrite.py", "SECTOR"): "the flash's sector, the block of a ROMFS half: geometry, not a limit",
    ("lib/fota/ecdsa.py", "P"): "a P-256 curve parameter",
    ("lib/fota/ecdsa.py", "N"): "a P-256 curve parameter",
    ("lib/fota/ecdsa.py", "B"): "a P-256 curve parameter",
    ("lib/fota/deltaplain.py", "TAG"): "a decoder state",
    ("lib/fota/deltaplain.py", "LITERAL"): "a decoder state",
    ("lib/fota/deltaplain.py", "INDEX"): "a decoder state",
    ("lib/fota/deltaplain.py", "COUNT"): "a decoder state",
    ("lib/fota/deltaplain.py", "COPY"): "a decoder state",
    ("lib/fota/deltaviper.py", "TAG"): "a decoder state",
    ("lib/fota/deltaviper.py", "LITERAL"): "a decoder state",
    ("lib/fota/deltaviper.py", "INDEX"): "a decoder state",
    ("lib/fota/deltaviper.py", "COUNT"): "a decoder state",
    ("lib/fota/deltaviper.py", "COPY"): "a decoder state",
    ("lib/fota/romimage.py", "DIR"): "a ROMFS record kind",
    ("lib/fota/romimage.py", "FILE"): "a ROMFS record kind",
    ("lib/fota/clock.py", "PORT"): "the default NTP port (the range of ports is a row)",
    ("lib/fota/core.py", "CHUNK_LOG"): "how often the download is logged and reported to on_progress: "
                                       "nothing is refused, retried or recorded by it",
    ("lib/fota/inflate.py", "STEP"): "inflater buffer sizing (see LOW)",
    ("lib/fota/inflate.py", "AHEAD"): "inflater buffer sizing (see LOW)",
    ("lib/fota/inflate.py", "LOW"): "inflater buffer sizing: at least LOW compressed bytes are ahead of each call "
                                    "(2 * STEP + 512, what deflate can need for STEP bytes); how many more depends "
                                    "on the refills, so a file that needs more fails at no fixed point. "
                                    "`fota build --compress` checks every span of every file it makes against LOW",
}

"""make mutants: every guarantee of the device code is a test that fails without it.

Each mutation breaks one check of lib/fota/*.py (a comparison inverted, a check removed, a limit
changed). It is applied alone to a scratch copy of the repository, the tests that claim it are
run there, and the mutation must make them fail ("caught"). The run ends with a table and exits
non-zero if a mutation is missed, if its tests fail to run, or if its original text is no longer
in the file (the code moved: keep this list current). Before the mutations, the tests of the
list run once on the unchanged copy: they must pass there for "caught" to mean anything.

    python tests/mutants.py                 # all of them
    python tests/mutants.py -k signature    # those whose name contains "signature"
    python tests/mutants.py --list          # the list, with the tests of each
    python tests/mutants.py --rev HEAD      # a copy of a commit instead of the working tree

A new guarantee gets its mutation here in the same change.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
D = "tests/device/"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    original: str  # must occur exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest arguments: node ids, and -k expressions


def m(name: str, file: str, original: str, replacement: str, *tests: str) -> Mutation:
    return Mutation(name, file, original, replacement, tests)


BAD_DOC = D + "test_bad_jobs.py::test_bad_document"
FOTAPLAN_BAD = D + "test_fotaplan.py::test_bad_field_is_refused"
SIGNED = D + "test_signed.py::test_refused"
COMPRESSED_BAD = D + "test_compressed.py::test_bad_compressed_file_fails_and_leaves_no_bootable_slot"
COMPRESSED_REFUSED = D + "test_compressed.py::test_refused_before_a_byte_is_written"
DELTA_BAD = D + "test_delta.py::test_bad_patches_are_refused_with_their_reason"
DELTA_FLOW_BAD = D + "test_delta.py::test_bad_patch_fails_and_leaves_no_bootable_slot"
DELTA_CLI = D + "test_delta.py::test_patches_made_by_detools_cli_are_applied_byte_for_byte"
DELTA_OTHER = D + "test_delta.py::test_patch_for_another_base_is_refused_before_any_flash_operation"
DELTA_BOTH = D + "test_delta.py::test_document_with_both_gives_another_base_the_full_image"
FILES = D + "test_file_targets.py"
SECONDARY = D + "test_secondary_jobs.py"
APPS = D + "test_apps.py"
CLOCK = D + "test_clock.py"

MUTATIONS: list[Mutation] = [
    # --- README: malformed document, missing or mistyped field, bc_idx, bc_size, http:// -----
    m("bc_idx may be past the last slot", "lib/fota/plan.py",
      "if not 0 <= idx < nslots:", "if not 0 <= idx <= nslots:", FOTAPLAN_BAD),
    m("bc_idx may be the running slot", "lib/fota/plan.py",
      "if idx == running:", "if idx == running and False:", FOTAPLAN_BAD, BAD_DOC, "-k", "bc_idx"),
    m("bc_size may exceed the slot", "lib/fota/plan.py",
      'if not 0 < size <= slot_size:\n        raise DocError("bc_size',
      'if not 0 < size:\n        raise DocError("bc_size', FOTAPLAN_BAD, "-k", "bc_size"),
    m("bc_crc of any length", "lib/fota/plan.py",
      "len(md5) != 32 or ", "", BAD_DOC, "-k", "bc_crc"),
    m("bc_crc of any characters", "lib/fota/plan.py",
      "any(c not in HEX for c in md5.lower())", "False", FOTAPLAN_BAD, "-k", "bc_crc"),
    m("http:// URLs accepted", "lib/fota/plan.py",
      'not url.startswith("https://") or ', "", FOTAPLAN_BAD, BAD_DOC, "-k", "bc_url"),
    m("unresolved placeholder accepted", "lib/fota/plan.py",
      'if url.startswith("${"):', "if False:", FOTAPLAN_BAD, "-k", "bc_url"),
    m("afr_ota plan without a file 0", "lib/fota/plan.py",
      "mine = [f for f in files(doc) if f.id == 0]", "mine = files(doc)",
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("afr_ota file id listed twice", "lib/fota/plan.py",
      "if [o for o in out if o.id == fid]:", "if False:",
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("afr_ota file id past 255", "lib/fota/plan.py",
      "not 0 <= fid <= 255", "not 0 <= fid <= 256",
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("afr_ota file without a size", "lib/fota/plan.py",
      'if size <= 0:\n            raise DocError("filesize', 'if False:\n            raise DocError("filesize',
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("afr_ota file of a secondary unsigned", "lib/fota/plan.py",
      'sig = _b64(f.get("sig-sha256-ecdsa"), "sig-sha256-ecdsa")', 'sig = f.get("sig-sha256-ecdsa")',
      D + "test_fotaplan.py::test_a_bad_field_of_a_file_names_the_file"),
    m("aws_fota over http", "lib/fota/plan.py",
      'if loc.get("protocol") != "https:":', "if False:",
      D + "test_fotaplan.py::test_bad_nordic_document_is_refused"),
    m("afr_ota stream name not checked", "lib/fota/plan.py",
      'if (not isinstance(stream, str) or not 0 < len(stream) <= STREAM_MAX or "/" in stream', "if (False",
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("version of any type", "lib/fota/plan.py",
      'if not isinstance(v, str):\n        raise DocError("%s must be a string" % key)',
      'if False:\n        raise DocError("%s must be a string" % key)', FOTAPLAN_BAD, "-k", "version"),
    m("afr_ota filesize may exceed the slot", "lib/fota/plan.py",
      'if f.size > slot_size:\n        raise DocError("filesize',
      'if False:\n        raise DocError("filesize',
      D + "test_fotaplan.py::test_bad_afr_ota_document_is_refused"),
    m("aws_fota size may exceed the slot", "lib/fota/plan.py",
      'if not 0 < size <= slot_size:\n        raise DocError("size',
      'if not 0 < size:\n        raise DocError("size',
      D + "test_fotaplan.py::test_bad_nordic_document_is_refused"),
    m("aws_fota host with a path in it", "lib/fota/plan.py",
      'or not host or "/" in host or', "or not host or",
      D + "test_fotaplan.py::test_bad_nordic_document_is_refused"),
    # --- README: HTTP errors, expired or tampered URL, certificate not from the CA or for
    #     another name ---------------------------------------------------------------------
    m("HTTP status not checked", "lib/fota/https.py",
      "if status != (206 if start else 200):", "if status == 404:",
      D + "test_https.py::test_server_faults_are_errors", D + "test_bad_jobs.py::test_server_faults"),
    m("server certificate not verified", "lib/fota/https.py",
      "ctx.verify_mode = ssl.CERT_REQUIRED", "ctx.verify_mode = ssl.CERT_NONE",
      D + "test_https.py::test_server_not_chaining_to_the_ca_is_refused",
      D + "test_bad_jobs.py::test_server_not_chaining_to_the_ca"),
    m("host name not checked", "lib/fota/https.py",
      "tls_context(ca_der).wrap_socket(sock, server_hostname=host)", "tls_context(ca_der).wrap_socket(sock)",
      D + "test_https.py::test_certificate_for_another_name_is_refused",
      D + "test_flow_checks.py::test_server_certificate_for_another_name_is_refused"),
    m("plain http downloads", "lib/fota/https.py",
      'if not isinstance(url, str) or not url.startswith("https://"):',
      'if not isinstance(url, str) or not url.startswith("http"):',
      D + "test_https.py::test_plain_http_is_refused"),
    m("a short body ends quietly", "lib/fota/https.py",
      "if not n:\n            raise Broken", "if not n:\n            return 0\n            raise Broken",
      D + "test_https.py::test_server_faults_are_errors", D + "test_bad_jobs.py::test_server_faults",
      "-k", "short"),
    m("chunked bodies taken", "lib/fota/https.py",
      "if chunked or length < 0:", "if length < 0:",
      D + "test_https.py::test_server_faults_are_errors", "-k", "chunked"),
    m("no Range when resuming", "lib/fota/https.py",
      "if start:\n            req +=", "if False:\n            req +=",
      D + "test_https.py::test_range_from_an_offset",
      D + "test_bad_jobs.py::test_broken_connection_resumes_from_the_last_whole_sector"),
    # --- README: flash that does not hold what was written ---------------------------------
    m("read-back not compared", "lib/fota/otaslot.py",
      "if not self._holds(mv):\n                raise", "if False:\n                raise",
      D + "test_bad_jobs.py::test_flash_that_does_not_hold_what_was_written"),
    m("a sector that holds the bytes is erased and written again", "lib/fota/otaslot.py",
      "if not self._holds(mv):  # else", "if True:  # else",
      D + "test_update.py::test_same_image_again_takes_no_erase_or_write_in_the_slot"),
    # --- README: connection broken mid-download (3 tries) ------------------------------------
    m("download tried 20 times", "lib/fota/core.py", "MAX_TRIES = 3", "MAX_TRIES = 20",
      D + "test_flow_checks.py::test_download_gives_up_after_three_tries"),
    m("one download try too many", "lib/fota/install.py",
      "if tries >= core.MAX_TRIES:", "if tries > core.MAX_TRIES:",
      D + "test_flow_checks.py::test_download_gives_up_after_three_tries"),
    m("a broken connection is not retried", "lib/fota/install.py",
      "except (OSError, Broken) as e:", "except OSError as e:",
      D + "test_bad_jobs.py::test_broken_connection_resumes_from_the_last_whole_sector"),
    m("resume keeps a partial sector", "lib/fota/otaslot.py",
      "self.fill = 0\n        return self.sector * SECTOR", "return self.sector * SECTOR + self.fill",
      D + "test_bad_jobs.py::test_broken_connection_resumes_from_the_last_whole_sector"),
    # --- README: more or fewer bytes, wrong MD5, not an app image, other chip; slot header
    #     erased --------------------------------------------------------------------------
    m("size against the document not checked", "lib/fota/install.py",
      "if r.total != w.size:", "if r.total < w.size:",
      D + "test_bad_jobs.py::test_server_faults", "-k", "long"),
    m("MD5 not compared", "lib/fota/otaslot.py",
      "if md5_hex is not None and digest != md5_hex.lower():", "if False:", BAD_DOC, "-k", "bc_crc"),
    m("app image header not checked", "lib/fota/otaslot.py",
      'if desc is None:\n            raise SlotError("not an ESP32 app image")',
      'if False:\n            raise SlotError("not an ESP32 app image")',
      D + "test_bad_jobs.py::test_body_that_is_not_an_app_image"),
    m("chip id not checked", "lib/fota/otaslot.py",
      'if chip != struct.unpack_from("<H", mine, 12)[0]:', "if False:",
      D + "test_flow_checks.py::test_image_for_another_chip_is_refused_before_set_boot"),
    m("abort leaves the slot as it is", "lib/fota/otaslot.py",
      "def abort(self):", "def abort(self):\n        return",
      D + "test_otaslot.py", BAD_DOC, "-k", "not bc_idx and not bc_size and not bc_url"),
    m("no abort after a failed download", "lib/fota/install.py",
      '        _abort(w)\n        raise FotaError("download"', '        raise FotaError("download"',
      D + "test_bad_jobs.py::test_server_faults", "-k", "short"),
    m("no abort after a failed check", "lib/fota/install.py",
      '        _abort(w)\n        raise FotaError("verify"', '        raise FotaError("verify"',
      BAD_DOC, "-k", "bc_crc"),
    m("abort erases even when nothing was written", "lib/fota/otaslot.py",
      "if self.touched:", "if True:",
      D + "test_slot_failures.py::test_no_byte_arrived_the_slot_keeps_its_image"),
    m("a resumed download's slot counts as untouched", "lib/fota/otaslot.py",
      "self.touched = start > 0", "self.touched = False",
      D + "test_slot_failures.py::test_resumed_download_that_fails_before_a_byte_erases_the_header"),
    # --- README: image whose own SHA-256 or checksum is wrong -------------------------------
    m("set_boot's refusal not handled", "lib/fota/flow.py",
      "except OSError as e:  # set_boot", "except ImportError as e:  # set_boot",
      D + "test_bad_jobs.py::test_image_whose_hash_does_not_verify_is_not_booted"),
    m("an image set_boot refused stays in the slot", "lib/fota/flow.py",
      '        _drop(rec)\n        reconnect(jobs)\n        return fail(job, "boot"',
      '        reconnect(jobs)\n        return fail(job, "boot"',
      D + "test_bad_jobs.py::test_image_whose_hash_does_not_verify_is_not_booted"),
    # --- README: signer key: unsigned, other key or image, downgrade, replay, secure_version -
    m("unsigned image accepted", "lib/fota/install.py",
      "if key and not p.sig:", "if False:", SIGNED, "-k", "unsigned"),
    m("signature not checked", "lib/fota/install.py",
      "if not ecdsa.verify(key, digest, ecdsa.signature(sig)):",
      "if not ecdsa.verify(key, digest, ecdsa.signature(sig)) and False:", SIGNED, "-k", "key or image"),
    m("downgrade accepted", "lib/fota/install.py",
      "if not _newer(desc[0], version()):", "if False:", SIGNED, "-k", "downgrade"),
    m("replay of the same version accepted", "lib/fota/install.py",
      "return _vkey(a) > _vkey(b)", "return _vkey(a) >= _vkey(b)", SIGNED, "-k", "replay"),
    m("lower secure_version accepted", "lib/fota/install.py",
      "if mine and desc[2] < mine[2]:", "if mine and desc[2] < mine[2] - 1:",
      D + "test_signed.py::test_lower_secure_version_is_refused_even_unsigned"),
    m("afr_ota without a signer key", "lib/fota/install.py",
      'if p.kind == "afr_ota" and not key:', "if False:",
      D + "test_signed.py::test_freertos_afr_ota_job_needs_a_signer_key"),
    m("signature check inverted", "lib/fota/ecdsa.py",
      "return acc[0] * zi * zi % P % N == r", "return acc[0] * zi * zi % P % N != r",
      D + "test_ecdsa.py"),
    m("key off the curve accepted", "lib/fota/ecdsa.py",
      "if x >= P or y >= P or (y * y - x * x * x + 3 * x - B) % P:", "if x >= P or y >= P:",
      D + "test_ecdsa.py"),
    m("signature fields not INTEGERs", "lib/fota/ecdsa.py",
      "if der[i] != 2 or der[i + 1] > 33", "if der[i + 1] > 33", D + "test_ecdsa.py"),
    m("signature with trailing bytes", "lib/fota/ecdsa.py",
      "der[0] != 0x30 or der[1] != len(der) - 2:", "der[0] != 0x30:", D + "test_ecdsa.py"),
    # --- README: never confirms, self-test fails, cancelled during the trial boot -------------
    m("rollback by the bootloader not recognised", "lib/fota/flow.py",
      "elif state in (otaslot.OTA_ABORTED, otaslot.OTA_INVALID):", "elif state == otaslot.OTA_INVALID:",
      D + "test_update.py::test_firmware_that_never_confirms_is_rolled_back"),
    m("new firmware not confirmed", "lib/fota/flow.py",
      'confirm()\n            rec["step"] = "done"', 'rec["step"] = "done"',
      D + "test_update.py::test_update_reboots_confirms_and_succeeds"),
    m("self-test reason lost", "lib/fota/core.py",
      'rec["reason"] = reason\n        save(rec)', "save(rec)",
      D + "test_update.py::test_failed_self_test_rolls_back_with_its_reason"),
    m("cancelled job's tested firmware not kept", "lib/fota/flow.py",
      'confirm()\n        log("confirm", "job %s is gone; firmware', 'log("confirm", "job %s is gone; firmware',
      D + "test_update.py::test_job_cancelled_during_the_trial_boot_keeps_the_tested_firmware"),
    # --- README: power cut (resumes from the last 64 KB recorded, at most 3 tries) ------------
    m("power cut: download starts over", "lib/fota/flow.py",
      'start = rec.get("done", 0) if', "start = 0 if",
      D + "test_power_cuts.py::test_download_resumes_after_a_power_cut"),
    m("power cut: progress not recorded", "lib/fota/install.py",
      "progress(done, image.state(done))\n                        saved = done", "saved = done",
      D + "test_power_cuts.py::test_download_resumes_after_a_power_cut"),
    m("power cut: resume does not hash what is in flash", "lib/fota/otaslot.py",
      "for s in range(self.sector):", "for s in range(0):",
      D + "test_power_cuts.py::test_download_resumes_after_a_power_cut"),
    m("interrupted downloads tried forever", "lib/fota/flow.py",
      "if tries > MAX_TRIES:", "if tries > MAX_TRIES + 1:",
      D + "test_flow_checks.py::test_a_download_interrupted_three_times_is_not_tried_again"),
    m("interrupted downloads: one try too few", "lib/fota/flow.py",
      "if tries > MAX_TRIES:", "if tries >= MAX_TRIES:",
      D + "test_flow_checks.py::test_two_interrupted_downloads_are_tried_a_third_time"),
    m("interrupted three times: the slot keeps the part written", "lib/fota/flow.py",
      '_drop(rec)  # power cuts', 'pass  # power cuts',
      D + "test_flow_checks.py::test_a_download_interrupted_three_times_is_not_tried_again"),
    # --- README: job that is not a firmware update, which job_cbk does not take ----------------
    m("a job nobody takes is left pending", "lib/fota/flow.py",
      '    core.end(job, "REJECTED", "jobs", {"reason": why})\n    return False', "    return False",
      D + "test_other_jobs.py::test_update_behind_jobs_the_device_does_not_carry_out"),
    m("job_cbk's answer ignored", "lib/fota/flow.py",
      "if job_cbk(job):\n                return True", "job_cbk(job)\n            if False:\n                return True",
      D + "test_other_jobs.py::test_a_job_queued_behind_a_running_one_wakes_the_device"),
    m("a document that is not an object handed on", "lib/fota/flow.py",
      "if not isinstance(doc, dict):\n        core.end(job", "if False:\n        _end(job",
      D + "test_other_jobs.py::test_documents_that_are_not_objects_are_rejected"),
    m("a reason longer than AWS takes (and cleaned whole, in more heap than a board has)",
      "lib/fota/jobs.py", "for c in str(v)[:1024])", "for c in str(v))",
      D + "test_other_jobs.py::test_reasons_fit_what_aws_takes_in_status_details",
      D + "test_jobs.py::test_status_details_of_any_length_fit_a_small_heap"),
    m("control characters in a reason", "lib/fota/jobs.py",
      'c if " " <= c <= "~" else', 'c if True else',
      D + "test_other_jobs.py::test_reasons_fit_what_aws_takes_in_status_details"),
    # --- README: broker or network down ----------------------------------------------------
    m("a failed connect keeps its socket", "lib/fota/awsiot.py",
      "c.sock.close()  # a board has few sockets", "pass  # a board has few sockets",
      D + "test_main.py::test_a_dead_broker_never_ends_the_loop"),
    # --- the flow's API: disconnect_mqtt, auto_reset, timeouts --------------------------------
    m("disconnect_mqtt=False closes anyway", "lib/fota/install.py",
      "if disconnect and conn is not None and not p.stream:", "if conn is not None and not p.stream:",
      D + "test_flow_checks.py::test_disconnect_mqtt_closes_the_session_for_the_download"),
    m("disconnect_mqtt=True keeps the session", "lib/fota/install.py",
      "if disconnect and conn is not None and not p.stream:", "if False:",
      D + "test_flow_checks.py::test_disconnect_mqtt_closes_the_session_for_the_download"),
    m("no reconnect after the download", "lib/fota/core.py",
      "    if not jobs.conn.connected():\n        jobs.conn.connect()", "    pass",
      D + "test_flow_checks.py::test_disconnect_mqtt_closes_the_session_for_the_download"),
    m("auto_reset ignored", "lib/fota/flow.py", "if auto_reset:", "if True:",
      D + "test_update.py::test_auto_reset_off_returns_true_and_mqtt_can_stay_open"),
    m("a timeout is taken for an ended job", "lib/fota/flow.py",
      'if e.code == "Timeout":', "if False:",
      D + "test_handle.py::test_jobs_that_end_meanwhile_are_skipped_and_timeouts_raised"),
    # --- streams: answers for this reader, this file and this block only ---------------------
    m("stream answers for another token taken", "lib/fota/streams.py",
      'body.get("c") == self.token', "True", D + "test_streams.py"),
    m("stream blocks for another file taken", "lib/fota/streams.py",
      'kind == "data/" + self.fmt and body.get("f") == self.file_id and', 'kind == "data/" + self.fmt and',
      D + "test_streams.py"),
    m("stream blocks taken out of order", "lib/fota/streams.py",
      ' and body.get("i") == want:', ":", D + "test_streams.py"),
    m("stream block of any length taken", "lib/fota/streams.py",
      "if not isinstance(data, memoryview) or len(data) != n:", "if not isinstance(data, memoryview):",
      D + "test_streams.py"),
    m("stream refusal ignored", "lib/fota/streams.py",
      'if kind == "rejected/" + self.fmt:', "if False:", D + "test_streams.py"),
    m("stream describe takes any file", "lib/fota/streams.py",
      'and f.get("f") == self.file_id:', ":", D + "test_streams.py"),
    m("stream describe takes any answer", "lib/fota/streams.py",
      "if kind != answer:", "if False:", D + "test_streams.py"),
    m("a document's value quoted whole in a reason", "lib/fota/plan.py",
      "return v if len(v) <= 40 else", "return v if True else",
      D + "test_bad_jobs.py::test_oversized_values_are_quoted_short_and_never_stall_the_loop"),
    # --- compressed images (bc_enc deflate): bombs, bad data, windows, resume ------------------
    m("compressed: a piece may inflate past its bytes (decompression bomb)", "lib/fota/inflate.py",
      "if self._inflate(self.one):", "if False:", COMPRESSED_BAD, "-k", "bomb"),
    m("compressed: data after the last piece accepted", "lib/fota/inflate.py",
      "if self.out >= self.size and at != self.xsize:", "if False:",
      COMPRESSED_BAD, "-k", "after"),
    m("compressed: a piece that ends early ends the image quietly", "lib/fota/inflate.py",
      "if not n:\n                raise InflateError", "if False:\n                raise InflateError",
      COMPRESSED_BAD, "-k", "early"),
    m("compressed: bad zlib data taken for a broken connection", "lib/fota/inflate.py",
      "except OSError:  # the BytesIO never fails: the data is bad\n            n = -1",
      "except OSError:  # the BytesIO never fails: the data is bad\n            raise",
      COMPRESSED_BAD, "-k", "corrupt"),
    m("compressed: the file's size against the document not checked", "lib/fota/inflate.py",
      "if r.total != self.xsize:", "if False:", COMPRESSED_REFUSED, "-k", "zsize"),
    m("compressed: the window from the piece's header, not the document", "lib/fota/inflate.py",
      "deflate.DeflateIO(self.bio, deflate.ZLIB, self.wbits)",
      "deflate.DeflateIO(self.bio, deflate.ZLIB)", COMPRESSED_BAD, "-k", "window"),
    m("compressed: bc_wbits past the device's limit accepted", "lib/fota/plan.py",
      "if not 9 <= wbits <= MAX_WBITS:", "if not 9 <= wbits:", COMPRESSED_REFUSED, "-k", "large"),
    m("compressed: bc_zsize past the slot accepted", "lib/fota/plan.py",
      'raise DocError("bc_zsize %d does not fit the %d-byte slot" % (xsize, slot_size))\n        p.codec, p.args, p.xsize = enc, {"wbits": wbits}',
      'pass\n        p.codec, p.args, p.xsize = enc, {"wbits": wbits}',
      D + "test_compressed.py::test_bad_compressed_field_is_refused"),
    m("compressed: unknown bc_enc taken as the image itself", "lib/fota/plan.py",
      '    raise DocError("bc_enc %s is not supported', '    return\n    raise DocError("bc_enc %s is not supported',
      COMPRESSED_REFUSED, "-k", "encoding"),
    m("compressed: broken connection: the download starts over", "lib/fota/inflate.py",
      "k = max(i for i in self.starts if i <= start // PIECE)", "k = 0",
      D + "test_compressed.py::test_broken_connection_resumes_at_the_piece_it_broke_in"),
    m("compressed: resume: what the slot has is not dropped", "lib/fota/inflate.py",
      "self.skip = start - self.out", "self.skip = 0",
      D + "test_compressed.py::test_broken_connection_resumes_at_the_piece_it_broke_in"),
    m("compressed: power cut: the codec's place not recorded", "lib/fota/install.py",
      "progress(done, image.state(done))", "progress(done, None)",
      D + "test_compressed.py::test_power_cut_resumes_at_the_recorded_piece"),
    m("compressed: power cut: the recorded place not given back", "lib/fota/flow.py",
      'state = rec.get("codec") if start else None', "state = None",
      D + "test_compressed.py::test_power_cut_resumes_at_the_recorded_piece"),
    # --- MQTT streams in JSON, the fallback ------------------------------------------------------
    m("streams: no fallback to JSON", "lib/fota/streams.py",
      '        self.fmt = "json"\n        return True', "        return False",
      D + "test_streams_json.py", "-k", "falls_back"),
    m("streams: fallback after CBOR worked", "lib/fota/streams.py",
      'if self.fmt != "cbor" or self.proven:', 'if self.fmt != "cbor":',
      D + "test_streams_json.py::test_no_fallback_once_cbor_worked"),
    m("streams: fallback on any refusal", "lib/fota/streams.py",
      'if body.get("o") in ("InvalidTopic", "InvalidCbor") and self._fallback():',
      "if self._fallback():", D + "test_streams.py::test_a_refused_request_is_an_error"),
    m("streams: JSON switch ignored", "lib/fota/streams.py",
      "self.fmt = fmt or FORMAT", 'self.fmt = "cbor"', D + "test_streams_json.py", "-k", "asked or switch"),
    m("streams: a reader from inside a block starts at the block", "lib/fota/streams.py",
      "self.pos = self.skip", "self.pos = 0",
      D + "test_streams_json.py::test_a_reader_may_start_inside_a_block"),
    m("streams: a JSON block's payload not decoded", "lib/fota/streams.py",
      'body["p"] = memoryview(binascii.a2b_base64(memoryview(msg)[a:b]))',
      'body["p"] = memoryview(msg)[a:b]', D + "test_streams_json.py", "-k", "asked"),
    # --- files for the application's targets (file ids above 0) -------------------------------
    m("file id without a target taken", "lib/fota/flow.py",
      "if f.id not in core.targets:", "if False:", FILES + "::test_refused"),
    m("file signature not checked", "lib/fota/files.py",
      "if not ecdsa.verify(key, sha, ecdsa.signature(f.sig)):", "if False:",
      FILES + "::test_refused", SECONDARY + "::test_an_image_not_signed_by_the_fleets_signer_is_never_tested"),
    m("file of another size than the document's taken", "lib/fota/files.py",
      'if r.total != f.size:', "if False:", FILES + "::test_refused"),
    m("files done not reported while the job goes on", "lib/fota/files.py",
      'job.update("IN_PROGRESS", details)  # how far', 'pass  # how far',
      FILES + "::test_each_file_done_is_reported_while_the_job_goes_on"),
    m("secondary's version not read back", "lib/fota/files.py",
      'if now != cur["version"]:', "if False:",
      SECONDARY + "::test_a_secondary_that_reverts_after_its_test_boot_fails_the_job",
      SECONDARY + "::test_a_new_image_that_crashes_or_hangs_on_its_test_boot_is_reverted"),
    m("secondary on trial not confirmed", "lib/fota/files.py",
      "if trial:\n            t.confirm(f)", "if False:\n            t.confirm(f)",
      SECONDARY + "::test_a_secondary_alone_is_tested_read_back_and_confirmed"),
    m("secondary tested again after a reset on its trial", "lib/fota/files.py",
      'cur["step"] = "trial"\n        core.save(rec)', 'cur["step"] = "activate"\n        core.save(rec)',
      SECONDARY + "::test_a_secondary_that_reverts_after_its_test_boot_fails_the_job"),
    m("staged file not checked for its size", "lib/fota/target.py",
      "if size != self.size or self.n != self.size:", "if False:",
      FILES + "::test_a_short_file_is_not_put_in_place"),
    m("file target takes a filepath naming no file", "lib/fota/target.py",
      'if not name or name in (".", ".."):', "if False:", FILES + "::test_refused"),
    m("secondary image not newer taken", "lib/fota/target.py",
      'if _vkey(self.new) <= _vkey(self.old or "0"):', 'if _vkey(self.new) < _vkey(self.old or "0"):',
      SECONDARY + "::test_an_image_the_mcu_refuses_fails_the_job"),
    m("secondary going back in an upload not noticed", "lib/fota/target.py",
      "if off < sent:", "if False:", SECONDARY + "::test_a_faulty_mcu_fails_the_job"),
    m("secondary upload resumed from 0", "lib/fota/target.py",
      "self.off = min(self.smp.upload(resume, b\"\", f.size), f.size)", "self.off = 0",
      SECONDARY + "::test_an_upload_cut_by_a_reset_of_the_esp32_resumes_where_the_mcu_is"),
    m("refused image erased no more", "lib/fota/target.py",
      "if self.off == self.size:\n            try:", "if False:\n            try:",
      SECONDARY + "::test_an_image_not_signed_by_the_fleets_signer_is_never_tested"),
    m("MCUboot header magic not checked", "lib/fota/target.py",
      "if magic != MCUBOOT_MAGIC:", "if False:", D + "test_smp_codec.py"),
    m("SMP answer with a bad CRC taken", "lib/fota/smp.py",
      "if crc != crc16(memoryview(self.buf)[2:need - 2]):", "if False:",
      SECONDARY + "::test_a_faulty_mcu_fails_the_job"),
    m("SMP error answer taken as success", "lib/fota/smp.py",
      "        if rc:\n            name = IMAGE_ERRORS", "        if False:\n            name = IMAGE_ERRORS",
      SECONDARY + "::test_an_image_the_mcu_refuses_fails_the_job", SECONDARY + "::test_a_faulty_mcu_fails_the_job"),
    m("SMP request not asked again", "lib/fota/smp.py",
      "def request(self, op, group, cmd, fields, tries=TRIES):",
      "def request(self, op, group, cmd, fields, tries=1):",
      SECONDARY + "::test_garbled_answers_now_and_then_are_asked_again"),
    m("CBOR bytes after the message taken", "lib/fota/cbor.py",
      "if i != len(mv):", "if False:", D + "test_smp_codec.py::test_garbage_is_one_error"),
    # --- SlotWriter's own refusals -----------------------------------------------------------
    m("SlotWriter writes the running slot", "lib/fota/otaslot.py",
      'if same(part, running()):\n            raise SlotError("refusing to write the running slot")\n        cap',
      'if False:\n            raise SlotError("refusing to write the running slot")\n        cap',
      D + "test_otaslot.py"),
    m("SlotWriter takes an image bigger than the slot", "lib/fota/otaslot.py",
      "if size <= 0 or size > cap:", "if size <= 0:", D + "test_otaslot.py"),
    m("SlotWriter resumes mid-sector", "lib/fota/otaslot.py",
      "if start % SECTOR or start > size:", "if start > size:", D + "test_otaslot.py"),
    # --- delta updates (lib/delta.py, heatshrink.py, appimage.py, deltaviper/deltaplain) -----
    m("delta: any heatshrink window", "lib/fota/delta.py",
      "if wb > max_window:", "if wb > max_window + 1:", DELTA_BAD, DELTA_FLOW_BAD, "-k", "window"),
    m("delta: any patch type", "lib/fota/delta.py",
      "if head >> 4:", "if head >> 7:", DELTA_BAD),
    m("delta: diff and extra sizes unbounded", "lib/fota/delta.py",
      "if n < 0 or self.made + n > self.total:", "if n < 0:", DELTA_BAD),
    m("delta: base read before its start", "lib/fota/delta.py",
      "if f < 0 or f + k > self.blen:", "if f + k > self.blen:", DELTA_BAD),
    m("delta: data after the end of the patch", "lib/fota/delta.py",
      "if self.dpos < self.dend or self.z.readinto(self.dmv[:1]):", "if False:", DELTA_BAD),
    m("delta: empty image", "lib/fota/delta.py",
      "if self.total <= 0:", "if self.total < 0:", DELTA_BAD),
    m("delta: data-format patches", "lib/fota/delta.py",
      'if _size(self._byte):\n            raise DeltaError("data-format',
      'if _size(self._byte) and False:\n            raise DeltaError("data-format', DELTA_BAD),
    m("delta: crle segment kind", "lib/fota/delta.py",
      "if kind > 1:", "if kind > 7:", DELTA_BAD),
    m("delta: heatshrink lookahead not below the window", "lib/fota/heatshrink.py",
      "3 <= lookahead_sz2 < window_sz2", "3 <= lookahead_sz2", DELTA_BAD),
    m("delta: patch longer than the document's image", "lib/fota/delta.py",
      "if p.total != self.size:", "if p.total < self.size:", DELTA_FLOW_BAD, "-k", "longer"),
    m("delta: patch file of another size", "lib/fota/delta.py",
      "if r.total != self.xsize:", "if False:", D + "test_delta.py::test_refused_document_fields"),
    m("delta: resume does not drop what the slot has", "lib/fota/delta.py",
      "self._skip(start)", "self._skip(0)",
      D + "test_delta.py::test_broken_connection_applies_the_patch_again_without_rewriting_flash"),
    m("delta: no plain-bytecode fallback", "lib/fota/delta.py",
      "except (SyntaxError, ValueError, ImportError, MemoryError) as e:",
      "except (ValueError, ImportError, MemoryError) as e:",
      D + "test_delta.py::test_firmware_without_the_viper_emitter_applies_in_plain_bytecode"),
    m("delta: viper back-reference offset", "lib/fota/deltaviper.py",
      "            back = v + 1\n", "            back = v\n", DELTA_CLI),
    m("delta: plain diff bytes not added", "lib/fota/deltaplain.py",
      "out[k] = (out[k] + diff[k]) & 0xFF", "out[k] = diff[k]", DELTA_CLI),
    m("delta: image length without the checksum's padding", "lib/fota/appimage.py",
      "pos = (pos | 15) + 1 + (32", "pos = pos + 1 + (32", DELTA_CLI),
    m("delta: bc_base of any length", "lib/fota/plan.py",
      "len(sha) != 64 or ", "", D + "test_delta.py::test_refused_document_fields"),
    m("delta: bc_base of any characters", "lib/fota/plan.py",
      "any(c not in HEX for c in sha.lower())", "False", D + "test_delta.py::test_plan_of_a_delta_document"),
    m("delta: bc_full not checked", "lib/fota/plan.py",
      'full = None if full is None else _url(full, "bc_full")', "full = full",
      D + "test_delta.py::test_refused_document_fields"),
    m("delta: a patch for another base taken", "lib/fota/plan.py",
      'if p.codec != "delta" or p.args["base"] == running_sha:', "if True:", DELTA_OTHER),
    m("delta: the full image not taken for another base", "lib/fota/plan.py",
      'if p.args["full"] is None:\n        raise DocError("the patch',
      'if True:\n        raise DocError("the patch', DELTA_BOTH),
    m("delta: the running image's hash not asked", "lib/fota/install.py",
      "p = base(p, appimage.sha256(otaslot.running()))", "p = p", DELTA_OTHER),
    # --- README: application updates (apps.py, appwrite.py, romimage.py, main.py) ---------
    m("application trial with no boot left runs again", "lib/fota/apps.py",
      'if rec["left"] > 0:', "if True:", APPS, "-k", "resets_before_confirming and loop"),
    m("application trial boot not counted down", "lib/fota/apps.py",
      'rec["left"] -= 1', "pass", APPS, "-k", "resets_before_confirming and loop"),
    m("the trial slot is not the one that runs", "lib/fota/apps.py",
      'slot = rec["trial"]', 'slot = rec["slot"]', APPS, "-k", "replaces"),
    m("application confirm does not switch the confirmed slot", "lib/fota/apps.py",
      'rec["slot"] = mounted', "pass", APPS, "-k", "replaces"),
    m("application reject leaves the trial on", "lib/fota/core.py",
      "apps().reject(reason)", "pass", APPS, "-k", "fails_its_trial and import"),
    m("import failure on the trial boot not rolled back", "lib/fota/apps.py",
      "        if testing():\n            reject(why)", "        pass",
      APPS, "-k", "fails_its_trial and import"),
    m("ROMFS slot 0 left mounted at /rom", "lib/fota/apps.py",
      "vfs.umount(ROM)", "pass", APPS, "-k", "romfs_application_is_written"),
    m("not a ROMFS image accepted", "lib/fota/romimage.py",
      "if bytes(head) != MAGIC:", "if False:", APPS, "-k", "bad_release"),
    m(".mpy bytecode version not checked", "lib/fota/romimage.py",
      "if head[1] != mine & 0xFF:", "if False:", APPS, "-k", "bad_release"),
    m(".mpy native code for another architecture accepted", "lib/fota/romimage.py",
      "if arch and (arch != feat >> 2 or head[2] & 3 != feat & 3):", "if False:",
      APPS, "-k", "bad_release"),
    m("ROMFS names with a slash or dots taken", "lib/fota/romimage.py",
      "if name in (b\".\", b\"..\") or any(c < 33 or c > 126 or c == 47 for c in name):", "if False:",
      D + "test_romimage.py", "-k", "damaged"),
    m("ROMFS record past its folder taken", "lib/fota/romimage.py",
      "if stop > ends[-1]:", "if False:", D + "test_romimage.py", "-k", "damaged"),
    m("ROMFS route: files not looked at", "lib/fota/appwrite.py",
      "seen.file(name, head[:k])", "pass", APPS, "-k", "romfs_bad_release"),
    m("release without an app module accepted", "lib/fota/appwrite.py",
      "if not self.has_app:", "if False:", APPS, "-k", "bad_release"),
    m("folders route: MD5 not compared", "lib/fota/appwrite.py",
      "if md5_hex is not None and digest != md5_hex.lower():", "if False:",
      APPS, "-k", "bad_release"),
    m("folders route: a failed release's files stay", "lib/fota/appwrite.py",
      "    def abort(self):\n        if self.touched:\n            rmtree(self.path)",
      "    def abort(self):\n        pass", APPS, "-k", "bad_release and not bc_idx and not bc_size"),
    m("image VERSION and document version may differ", "lib/fota/apps.py",
      "if own and said and own != said:", "if False:", APPS, "-k", "bad_release"),
    m("signed application: downgrade accepted", "lib/fota/apps.py",
      'if version() != "none" and not newer(own, version()):', "if False:",
      D + "test_app_signed.py", "-k", "downgrade or replay"),
    m("signed application without VERSION accepted", "lib/fota/apps.py",
      "        if not own:\n", "        if False:\n", D + "test_app_signed.py", "-k", "VERSION"),
    m("a deployed ROMFS slot 0 is not adopted", "lib/fota/apps.py",
      'rec["slot"] = 0', "pass", APPS, "-k", "adopted"),
    m("unknown target taken as firmware", "lib/fota/plan.py",
      'if k == "fota" and doc.get("target", "firmware") != "firmware":', "if False:",
      APPS, "-k", "target"),
    # --- used board, slots, ROMFS ---
    m("ROMFS slot 0 deployed over a slot is adopted", "lib/fota/apps.py",
      "    if why:  # `mpremote romfs deploy`", "    if False:  # `mpremote romfs deploy`",
      APPS, "-k", "one_byte_over_a_slot"),
    m("ROMFS slot over its size is mounted", "lib/fota/apps.py",
      "            if why:\n                raise OSError(19, why)",
      "            if False:\n                raise OSError(19, why)",
      APPS, "-k", "over_its_size"),
    m("ROMFS image of exactly a slot refused", "lib/fota/apps.py",
      "    if n > h:\n", "    if n >= h:\n", APPS, "-k", "exactly_a_slot"),
    m("ROMFS image one byte over a slot taken", "lib/fota/apps.py",
      "    if n > h:\n", "    if n > h + 1:\n", APPS, "-k", "one_byte_over_a_slot"),
    m("ROMFS image size counted without its header", "lib/fota/apps.py",
      "            n += i + 1  # the header's own bytes\n", "", APPS, "-k", "one_byte_over_a_slot"),
    # --- native streams, cpu clock ---
    m("inflate: DeflateIO reads a Python class, not the native io.BytesIO", "lib/fota/inflate.py",
      "self.bio = io.BytesIO(AHEAD)", 'self.bio = type("Wrapped", (io.BytesIO,), {})(AHEAD)',
      D + "test_compressed.py::test_inflater_reads_a_native_stream"),
    m("inflate: the buffer is not refilled before it runs low", "lib/fota/inflate.py",
      "if k >= LOW or self.eof:", "if k > 0 or self.eof:",
      D + "test_compressed.py::test_compressed_image_is_inflated_into_the_slot"),
    m("inflate: asked for more than a span at once", "lib/fota/inflate.py",
      "n = min(len(mv) - got, end - self.out, STEP - self.out % STEP)",
      "n = min(len(mv) - got, end - self.out)",
      D + "test_compressed.py::test_inflater_never_runs_past_its_buffer"),
    m("inflate: bytes read past the end of a short file not noticed", "lib/fota/inflate.py",
      "if n is None or self.eof and self.bio.tell() > self.held:", "if n is None:",
      D + "test_compressed.py::test_file_cut_anywhere_ends_in_its_piece"),
    m("inflate: a transport error ends the inflating of what came before it", "lib/fota/inflate.py",
      "            try:\n                n = self.r.readinto(st[:min(LOW, AHEAD - k)])\n"
      "            except Exception as e:\n                self.broken = e\n                n = 0\n",
      "            n = self.r.readinto(st[:min(LOW, AHEAD - k)])\n",
      D + "test_compressed.py::test_broken_connection_resumes_at_the_piece_it_broke_in"),
    m("inflate: a broken connection taken for the end of the file", "lib/fota/inflate.py",
      "if self.broken:\n                raise self.broken", "if False:\n                raise self.broken",
      D + "test_compressed.py::test_broken_connection_resumes_at_the_piece_it_broke_in"),
    m("cpu: the clock is not raised for the update", "lib/fota/core.py",
      "        machine.freq(FAST_HZ)\n", "        pass\n",
      D + "test_cpu_clock.py::test_update_runs_at_240_mhz_and_puts_the_clock_back"),
    m("cpu: the clock is not put back after the update", "lib/fota/core.py",
      "    if old:\n        try:\n            machine.freq(old)", "    if False:\n        try:\n            machine.freq(old)",
      D + "test_cpu_clock.py::test_update_runs_at_240_mhz_and_puts_the_clock_back"),
    m("cpu: the clock is put back only after a success", "lib/fota/install.py",
      "        return _update(document, ca, start, progress, conn, disconnect, state)\n"
      "    finally:\n        core.cpu_back(clock)",
      "        v = _update(document, ca, start, progress, conn, disconnect, state)\n"
      "        core.cpu_back(clock)\n        return v\n    finally:\n        pass",
      D + "test_cpu_clock.py::test_failed_update_puts_the_clock_back"),
    m('cpu: config.json "cpu_boost": false ignored', "lib/fota/core.py",
      'if setting("cpu_boost", True) is False:', "if False:",
      D + "test_cpu_clock.py::test_cpu_boost_false_leaves_the_clock_alone"),
    m("cpu: a board at full speed already is set again", "lib/fota/core.py",
      "    if old >= FAST_HZ:\n        return None", "    if False:\n        return None",
      D + "test_cpu_clock.py::test_board_at_240_mhz_already_is_left_there"),
    m("cpu: a chip that refuses 240 MHz fails the update", "lib/fota/core.py",
      "    except ValueError:\n        return None\n    log(", "    except KeyError:\n        return None\n    log(",
      D + "test_cpu_clock.py::test_chip_that_stops_at_160_mhz_updates_at_160"),
    # --- names, slow peers, viper ---
    m("names: a control character in a filepath taken", "lib/fota/plan.py",
      '    if control(path):\n        raise DocError("filepath',
      '    if False:\n        raise DocError("filepath',
      D + "test_fotaplan.py", "-k", "filepath", FILES + "::test_refused"),
    m("names: .. in a filepath taken", "lib/fota/plan.py",
      'if b"/../" in b:', "if False:", D + "test_fotaplan.py", "-k", "filepath", FILES + "::test_refused"),
    m("names: a name one byte longer than littlefs keeps taken", "lib/fota/plan.py",
      "if j - i - 1 > NAME_MAX:", "if j - i - 2 > NAME_MAX:", D + "test_fotaplan.py", "-k", "filepath"),
    m("names: a file target's name in characters, not bytes", "lib/fota/target.py",
      "n = len(name.encode())", "n = len(name)",
      FILES + "::test_a_folder_target_refuses_what_is_no_name_and_touches_nothing"),
    m("names: a backslash not taken as a separator", "lib/fota/plan.py",
      'path.encode().replace(b"\\\\", b"/")', "path.encode()", D + "test_fotaplan.py", "-k", "filepath"),
    m("names: a file target's name after a backslash not taken alone", "lib/fota/plan.py",
      'max(path.rfind("/"), path.rfind("\\\\"))', 'path.rfind("/")',
      FILES + "::test_a_folder_target_refuses_what_is_no_name_and_touches_nothing"),
    m("names: DEL and C1 controls taken", "lib/fota/plan.py",
      "if o < 32 or 127 <= o < 160:", "if o < 32:", D + "test_fotaplan.py", "-k", "filepath"),
    m("names: a stream id with a control character taken", "lib/fota/plan.py",
      'or "+" in stream or "#" in stream or control(stream)):', 'or "+" in stream or "#" in stream):',
      D + "test_fotaplan.py", "-k", "stream_ids"),
    m("names: a stream id of any length taken", "lib/fota/plan.py",
      "not 0 < len(stream) <= STREAM_MAX", "not 0 < len(stream)", D + "test_fotaplan.py", "-k", "stream_ids"),
    m("names: a version of any length taken", "lib/fota/plan.py",
      "if not 0 < len(v) <= VERSION_MAX or control(v):", "if control(v):",
      D + "test_fotaplan.py", "-k", "stream_ids"),
    m("names: a version with a control character taken", "lib/fota/plan.py",
      "if not 0 < len(v) <= VERSION_MAX or control(v):", "if not 0 < len(v) <= VERSION_MAX:",
      D + "test_fotaplan.py", "-k", "stream_ids"),
    m("names: a file target's name too long for its .new taken", "lib/fota/target.py",
      "if n + len(STAGE) > NAME_MAX:", "if n > NAME_MAX:",
      FILES + "::test_refused", FILES + "::test_a_folder_target_refuses_what_is_no_name_and_touches_nothing"),
    m("names: a file target's name with a control character taken", "lib/fota/target.py",
      "            if control(name):", "            if False:",
      FILES + "::test_a_folder_target_refuses_what_is_no_name_and_touches_nothing"),
    m("names: a refused name leaves the last file's path for abort()", "lib/fota/target.py",
      "self.path = None  # abort() then touches no file", "pass",
      FILES + "::test_a_folder_target_refuses_what_is_no_name_and_touches_nothing"),
    m("slow peers: an SMP wait does not feed the watchdog", "lib/fota/smp.py",
      "            self.feed()\n            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:",
      "            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:",
      D + "test_smp_codec.py::test_every_wait_for_an_answer_feeds_and_ends",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[a stall for good]"),
    m("slow peers: the drain before a request reads for as long as bytes come", "lib/fota/smp.py",
      "while self.uart.any() and time.ticks_diff(deadline, time.ticks_ms()) > 0:",
      "while self.uart.any():", D + "test_smp_codec.py::test_every_wait_for_an_answer_feeds_and_ends"),
    m("slow peers: the files step gives its target no feed", "lib/fota/files.py",
      "t.feed = core.feed  # a target", "pass  # a target",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[a stall for good]"),
    m("slow peers: short upload answers without end", "lib/fota/target.py",
      "if self.short > SHORT:", "if False:",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[9 short answers]"),
    m("slow peers: one short upload answer more", "lib/fota/target.py",
      "if self.short > SHORT:", "if self.short > SHORT + 1:",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[9 short answers]"),
    m("slow peers: less than half a chunk is no short answer", "lib/fota/target.py",
      "if 2 * done < self.fill:", "if 2 * done + 2 < self.fill:",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[less than half a chunk per answer]"),
    m("slow peers: half a chunk is a short answer", "lib/fota/target.py",
      "if 2 * done < self.fill:", "if 2 * done <= self.fill:",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[half a chunk per answer]"),
    m("slow peers: the wait for the MCU's reset not fed", "lib/fota/target.py",
      "            self.feed()\n            time.sleep_ms(50)", "            time.sleep_ms(50)",
      SECONDARY + "::test_a_long_wait_for_the_mcus_reset_feeds_the_watchdog"),
    m("slow peers: an upload that fails does not say where", "lib/fota/target.py",
      'raise TargetError("%s at byte %d of %d: %s" % (self.name, sent, self.size, e))', "raise",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[a stall for good]"),
    m("slow peers: the lost answer to the last chunk fails the upload", "lib/fota/target.py",
      "if off == 0 and sent + self.fill == self.size:", "if False:",
      SECONDARY + "::test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset[a stall at the last chunk]"),
    m("slow peers: an MCU back at 0 taken for done anywhere", "lib/fota/target.py",
      "if off == 0 and sent + self.fill == self.size:", "if off == 0:",
      SECONDARY + "::test_a_faulty_mcu_fails_the_job[reset mid-upload]"),
    m("slow peers: the MQTT handshake waits for ever", "lib/fota/awsiot.py",
      "        sock.settimeout(self.timeout_s)  # the handshake", "        pass  # the handshake",
      D + "test_session_bounds.py", D + "test_https.py::test_device_sockets_send_each_write_at_once"),
    m("slow peers: an MQTT message cut short waits for ever", "lib/fota/awsiot.py",
      "self.raw.settimeout(self.timeout_s if flag else 0)", "self.raw.settimeout(None if flag else 0)",
      D + "test_session_bounds.py"),
    m("slow peers: HTTPS headers without a line bound", "lib/fota/https.py",
      "if n > HEADER_LINES:", "if False:", D + "test_https.py::test_headers_without_end_are_refused"),
    m("slow peers: HTTPS header lines of any length", "lib/fota/https.py",
      "    line = sock.readline(LINE_MAX)", "    line = sock.readline()",
      D + "test_https.py::test_headers_without_end_are_refused"),
    m("slow peers: HTTPS headers without a time bound", "lib/fota/https.py",
      "if time.ticks_diff(deadline, time.ticks_ms()) < 0:", "if False:",
      D + "test_https.py::test_headers_without_end_are_refused"),
    m("viper: no plain-bytecode fallback when IRAM is full", "lib/fota/delta.py",
      "except (SyntaxError, ValueError, ImportError, MemoryError) as e:",
      "except (SyntaxError, ValueError, ImportError) as e:",
      D + "test_delta.py::test_firmware_short_of_iram_for_viper_code_applies_in_plain_bytecode"),
    m("viper: fallback not logged", "lib/fota/delta.py",
      '    print("delta: viper unavailable (%s: %s): plain bytecode" % (type(e).__name__, e))\n', "",
      D + "test_delta.py::test_firmware_short_of_iram_for_viper_code_applies_in_plain_bytecode"),
    # --- time sources ---
    m("clock: two sources agree when a minute apart and more", "lib/fota/clock.py",
      "abs(apart(r, o)) <= AGREE", "abs(apart(r, o)) <= AGREE * 100", CLOCK, "-k", "agree_within"),
    m("clock: two sources disagree when less than a minute apart", "lib/fota/clock.py",
      "abs(apart(r, o)) <= AGREE", "abs(apart(r, o)) <= AGREE - 10", CLOCK, "-k", "agree_within"),
    m("clock: one server named twice agrees with itself", "lib/fota/clock.py",
      "if o[4] != addr and ", "if ", CLOCK, "-k", "named_twice"),
    m("clock: times on trial highest first", "lib/fota/clock.py",
      "got.sort(key=lambda r: apart(r, ref))", "got.sort(key=lambda r: -apart(r, ref))",
      CLOCK, "-k", "lowest_first or liar_ahead_loses"),
    m("clock: a lone reply moves a believed clock", "lib/fota/clock.py",
      "if got and synced != 2:", "if got:", CLOCK, "-k", "not_moved_by"),
    m("clock: an expired refusal keeps the later times on trial", "lib/fota/clock.py",
      "        _trial = []  # the clock is ahead", "        pass  # the clock is ahead",
      CLOCK, "-k", "lowest_first"),
    m("clock: a date refusal does not take the next time on trial", "lib/fota/clock.py",
      "    if _trial:\n        take()\n        return True", "    if False:\n        return True",
      CLOCK, "-k", "lowest_first or liar_behind"),
    m("clock: back to the floor whichever way the refusal points", "lib/fota/clock.py",
      "(t - fl if expired else fl - t) > AGREE", "abs(t - fl) > AGREE",
      CLOCK, "-k", "only_where_it_helps"),
    m("clock: never back to the floor", "lib/fota/clock.py",
      "    if fl and (t - fl if expired else fl - t) > AGREE:",
      "    if False:", CLOCK, "-k", "only_where_it_helps or within_a_minute"),
    m("clock: a refused believed clock waits for its resync", "lib/fota/clock.py",
      "    if synced:\n        _due = None", "    if False:\n        _due = None",
      CLOCK, "-k", "asks_at_once", D + "test_https.py::test_a_certificate_date_refusal_sets_the_clock_again"),
    m("clock: TLS does not confirm a time on trial", "lib/fota/clock.py",
      "synced, _trial, _on, _wait = 1, [], None, FIRST_WAIT_MS",
      "synced, _trial, _on, _wait = 0, [], None, FIRST_WAIT_MS",
      CLOCK, "-k", "tls_confirms or below_the_floor",
      D + "test_https.py::test_a_download_confirms_a_time_on_trial"),
    m("clock: back-off up to ten minutes", "lib/fota/clock.py",
      "MAX_WAIT_MS = 60_000", "MAX_WAIT_MS = 600_000", CLOCK, "-k", "back_off"),
    m("clock: a server that said DENY is asked again", "lib/fota/clock.py",
      "                _denied.append(src)\n", "                pass\n", CLOCK, "-k", "kiss_of_death_deny"),
    m("clock: the watchdog not fed between sources", "lib/fota/clock.py",
      "        if feed:\n            feed()", "        pass", CLOCK, "-k", "fed_before_each or loop_feeds"),
    m("clock: kiss-of-death believed", "lib/fota/clock.py",
      "if reply[1] == 0:", "if False:", CLOCK, "-k", "not_to_believe and kiss"),
    m("clock: unsynchronized server believed", "lib/fota/clock.py",
      "if li == 3 or reply[1] > 15:", "if reply[1] > 15:", CLOCK, "-k", "not_to_believe and unsynchronized"),
    m("clock: stratum 16 believed", "lib/fota/clock.py",
      "if li == 3 or reply[1] > 15:", "if li == 3 or reply[1] > 16:", CLOCK, "-k", "not_to_believe and stratum"),
    m("clock: a reply in any mode", "lib/fota/clock.py",
      "if mode != 4 or version not in (3, 4):", "if version not in (3, 4):",
      CLOCK, "-k", "not_to_believe and mode"),
    m("clock: a reply of any version", "lib/fota/clock.py",
      "if mode != 4 or version not in (3, 4):", "if mode != 4:", CLOCK, "-k", "not_to_believe and version"),
    m("clock: an answer to another request", "lib/fota/clock.py",
      "if reply[24:32] != req[40:48]:", "if False:", CLOCK, "-k", "not_to_believe and request"),
    m("clock: a short reply", "lib/fota/clock.py",
      "if len(reply) < 48:", "if False:", CLOCK, "-k", "not_to_believe and short"),
    m("clock: a zero transmit timestamp", "lib/fota/clock.py",
      "if not secs and not frac:", "if False:", CLOCK, "-k", "not_to_believe and zero"),
    m("clock: a time further below the floor", "lib/fota/clock.py",
      "t < fl - SLACK", "t < fl - SLACK - 120", CLOCK, "-k", "window_around_the_floor"),
    m("clock: a time further above the floor", "lib/fota/clock.py",
      "t > fl + AHEAD", "t > fl + AHEAD + 120", CLOCK, "-k", "window_around_the_floor"),
    m("clock: connect gives up at the first date refusal", "lib/fota/awsiot.py",
      "if not clock.hint(e) or not tries:", "if not clock.hint(e) or tries:", CLOCK, "-k", "liar_behind"),
    m("clock: an MQTT handshake does not confirm a time on trial", "lib/fota/awsiot.py",
      "            clock.tls_ok()\n", "", CLOCK, "-k", "cold_board"),
    m("clock: a download gives up at the first date refusal", "lib/fota/https.py",
      "if not clock.hint(e) or not tries:", "if not clock.hint(e) or tries:",
      D + "test_https.py::test_a_certificate_date_refusal_sets_the_clock_again"),
    m("clock: a download does not confirm a time on trial", "lib/fota/https.py",
      "        clock.tls_ok()\n", "", D + "test_https.py::test_a_download_confirms_a_time_on_trial"),
    m("clock: the loop does not lend the clock its watchdog", "lib/fota/loop.py",
      "Connection(cfg, feed=wdt.feed)", "Connection(cfg)", CLOCK, "-k", "loop_feeds"),
    # --- misbehaving peers ---
    m("misbehaving peer: a 200 to a resumed request is refused", "lib/fota/https.py",
      "    if status == 200 and start:\n", "    if False:\n",
      D + "test_peer_http.py", "-k", "goes_on or ignores_range or range_ignored"),
    m("misbehaving peer: the bytes a server sent before the offset are kept", "lib/fota/https.py",
      "        while self.skip > 0:", "        while False:",
      D + "test_peer_http.py", "-k", "range_ignored_gives or ignores_range_every"),
    m("misbehaving peer: a 200 with fewer bytes than the offset", "lib/fota/https.py",
      "    if skip > length:", "    if False:", D + "test_peer_http.py", "-k", "past_the_end"),
    m("misbehaving peer: a 206 from another offset is taken", "lib/fota/https.py",
      "    elif start and first != start:", "    elif False:",
      D + "test_peer_http.py", "-k", "another_range"),
    m("misbehaving peer: ETags are not compared", "lib/fota/https.py",
      "if self.etag is not None and r.etag != self.etag:", "if False:",
      D + "test_peer_http.py", "-k", "changed_between or changed_behind or first_etag"),
    m("misbehaving peer: a reset request is sent again when its answer is lost", "lib/fota/smp.py",
      "{}, tries=1, lost=True)", "{}, lost=True)", D + "test_peer_smp.py", "-k", "answer and reset"),
    m("misbehaving peer: a reset request whose answer is lost fails", "lib/fota/smp.py",
      "{}, tries=1, lost=True)", "{}, tries=1)", D + "test_peer_smp.py", "-k", "answer and reset"),
    m("misbehaving peer: an MCU that lists the new image pending has reset", "lib/fota/target.py",
      "                if not pending:", "                if True:",
      D + "test_peer_smp.py", "-k", "old or never"),
    m("misbehaving peer: no look at the job list without a notification", "lib/fota/loop.py",
      "force = time.ticks_diff(time.ticks_ms(), looked) >= look", "force = False",
      D + "test_peer_broker.py", "-k", "notification"),
    m("misbehaving peer: a job start without an answer waits for a notification", "lib/fota/flow.py",
      "            raise  # no answer: the caller reconnects and looks again (the update may have been made)\n",
      "            pass\n", D + "test_peer_broker.py", "-k", "start"),
    m("misbehaving peer: a files job start without an answer waits for a notification", "lib/fota/files.py",
      "            raise  # no answer: the caller reconnects and looks again\n", "            pass\n",
      D + "test_peer_broker.py::test_a_job_of_files_whose_start_gets_no_answer"),
    m("misbehaving peer: no watchdog feed while dropping the bytes before the offset", "lib/fota/https.py",
      "            if self.feed:\n                self.feed()\n", "", D + "test_peer_http.py", "-k", "watchdog"),
]


def scratch_copy(root: Path, dest: Path, rev: str | None) -> None:
    """The tracked files of `root` (its working tree, or commit `rev`), .venv and .deps linked."""
    if rev:
        archive = subprocess.run(["git", "archive", rev], cwd=root, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True,
                               capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src = root / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    for link in (".venv", ".deps"):
        if (root / link).exists():
            (dest / link).symlink_to(root / link)


def run_pytest(copy: Path, args: tuple[str, ...] | list[str], first_failure: bool = True) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *args]
    if first_failure:
        cmd.insert(3, "-x")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(cmd, cwd=copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def node_ids(ms: list[Mutation]) -> list[str]:
    """The test files and node ids of these mutations, without their -k filters."""
    out: list[str] = []
    for mu in ms:
        skip = False
        for a in mu.tests:
            if skip:
                skip = False
            elif a == "-k":
                skip = True
            elif a not in out:
                out.append(a)
    return out


def try_mutation(copy: Path, mu: Mutation) -> str:
    """Apply one mutation in the copy, run its tests, put the file back -> the result."""
    path = copy / mu.file
    if not path.is_file():
        return "no such file"
    text = path.read_text()
    n = text.count(mu.original)
    if n != 1:
        return "not found" if n == 0 else f"found {n} times"
    path.write_text(text.replace(mu.original, mu.replacement))
    try:
        rc = run_pytest(copy, mu.tests)
    finally:
        path.write_text(text)
    return {0: "MISSED", 1: "caught"}.get(rc, f"error (pytest exit {rc})")


def table(rows: list[tuple[str, ...]]) -> str:
    head = ("mutation", "file", "tests", "result", "seconds")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in [head, tuple("-" * w for w in widths)] + rows)


def main(argv: list[str] | None = None, mutations: list[Mutation] | None = None,
         root: Path = ROOT) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("-k", dest="only", help="run the mutations whose name contains this")
    ap.add_argument("--list", action="store_true", help="print the mutations and their tests")
    ap.add_argument("--rev", help="copy this commit instead of the working tree")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run on the unchanged copy")
    a = ap.parse_args(argv)
    chosen = [mu for mu in (MUTATIONS if mutations is None else mutations)
              if not a.only or a.only in mu.name]
    if not chosen:
        print("no mutation matches")
        return 2
    if a.list:
        for mu in chosen:
            print(f"{mu.name} [{mu.file}]: {' '.join(mu.tests)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fota-mutants-") as tmp:
        copy = Path(tmp)
        scratch_copy(root, copy, a.rev)
        if not a.no_baseline:
            t0 = time.monotonic()
            rc = run_pytest(copy, node_ids(chosen), first_failure=False)
            print(f"baseline: the tests of {len(chosen)} mutations on the unchanged code: "
                  f"{'pass' if rc == 0 else 'FAIL (exit %d)' % rc} ({time.monotonic() - t0:.0f} s)", flush=True)
            if rc != 0:
                return 1
        rows = []
        for mu in chosen:
            t0 = time.monotonic()
            result = try_mutation(copy, mu)
            rows.append((mu.name, mu.file, " ".join(t.replace(D, "") for t in mu.tests), result,
                         f"{time.monotonic() - t0:.1f}"))
            print(f"{result:>8}  {mu.name}", flush=True)
    print("\n" + table(rows))
    bad = [r for r in rows if r[3] != "caught"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} mutations caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

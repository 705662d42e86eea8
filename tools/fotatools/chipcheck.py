"""The chip each target thing runs on, from its device shadow, against a firmware image's.

The board reports "chip" in its shadow (lib/fota/shadow.py): the chip id of the image it runs
(esp_image_header_t.chip_id, esp_app_format.h), which is its own chip's, since the ESP-IDF
bootloader boots no image of another chip. `fota publish` refuses a firmware image for another
chip before it creates the job; a thing whose shadow has no chip yet (it never reported, or
runs an older fota) is not checked here: its board refuses the image itself, from the image's
first sector, before any flash operation.
"""

from __future__ import annotations

from typing import Any

from .backend import Backend, BackendError
from .release import CHIP_IDS


def reported_chip(doc: dict[str, Any] | None) -> int | None:
    """The chip id a shadow document reports, or None."""
    rep = ((doc or {}).get("state") or {}).get("reported") or {}
    chip = rep.get("chip")
    return chip if isinstance(chip, int) and not isinstance(chip, bool) else None


def chip_name(chip_id: int) -> str:
    for name, cid in CHIP_IDS.items():
        if cid == chip_id:
            return name
    return f"chip id {chip_id}"


def other_chips(backend: Backend, things: list[str], groups: list[str],
                chip: str) -> tuple[dict[str, str], list[str], str | None]:
    """({thing: the chip it reported} for the targets on another chip than `chip`, [targets
    that reported none], why the shadows could not be read, or None). Groups count by their
    members. The first shadow that cannot be read (no data endpoint, a policy without
    iot:GetThingShadow) ends the reading: the boards check the image themselves."""
    names = list(things)
    for group in groups:
        names += backend.things_in_group(group)
    want = CHIP_IDS[chip]
    other: dict[str, str] = {}
    unknown: list[str] = []
    for thing in sorted(set(names)):
        try:
            doc = backend.thing_shadow(thing)
        except BackendError as e:
            return other, unknown, str(e)
        got = reported_chip(doc)
        if got is None:
            unknown.append(thing)
        elif got != want:
            other[thing] = chip_name(got)
    return other, unknown, None

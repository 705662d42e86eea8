"""`fota publish --link-speed`: the form of a release (image, compressed, delta) that the model
of an update on an ESP32 (fotatools.linkmodel: flash work, download, CPU) says arrives first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator import norflash
from emulator.image import build_app_image
from fotatools import cli, linkmodel
from fotatools.delta import make_patch
from tests.cli.conftest import unique
from tests.cli.images import app_image
from tests.cli.test_cli_local import local  # noqa: F401 (the fixture)
from tests.deltaimages import evolve

OLD = app_image("2.0.0", size=300_000)
NEW = evolve(OLD, "2.0.1")
# compressible as a firmware is (frozen code text, then random filler), and its next release
CODE = {"code.py": "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(3000))}
ZOLD = build_app_image("2.0.0", payload=CODE, size=300_000)
ZNEW = evolve(ZOLD, "2.0.1")
MB = 1_500_000


@pytest.mark.parametrize("text,rate", [("1k", 1000), ("250k", 250_000), ("1M", 1_000_000),
                                       ("2.5M", 2_500_000), ("10m", 10_000_000),
                                       ("1000000", 1_000_000), ("10G", 10_000_000_000),
                                       ("1Mbit/s", 1_000_000)])
def test_link_speeds_read(text, rate):
    assert linkmodel.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["999", "10.1G", "fast", "", "-1M", "1T", "0"])
def test_link_speeds_refused(text):
    with pytest.raises(linkmodel.RateError):
        linkmodel.parse_rate(text)


def test_flash_model_is_the_emulators():
    assert linkmodel.SECTOR_ERASE_S * 1e6 == norflash.SECTOR_ERASE_US
    assert linkmodel.PAGE_PROGRAM_S * 1e6 == norflash.PAGE_PROGRAM_US
    assert linkmodel.READ_S_PER_KB * 1e6 == norflash.READ_US_PER_KB
    # 366 sectors of 45 ms erase and 16 pages of 0.75 ms
    assert linkmodel.flash_s(1_495_344) == pytest.approx(366 * 0.057)
    assert linkmodel.flash_s(4096) == pytest.approx(0.057)
    assert linkmodel.flash_s(4097) == pytest.approx(2 * 0.057)


def forms(rate: str, compressed: int = 1_000_000, delta: int = 430_000, entries: int = 6700) -> list[str]:
    return [e.form for e in linkmodel.fastest(MB, {"full": MB, "compressed": compressed,
                                                    "delta": delta}, linkmodel.parse_rate(rate),
                                              entries)]


def test_slow_links_take_the_fewest_bytes():
    assert forms("100k") == ["delta", "compressed", "full"]


def test_fast_links_take_the_image_itself():
    assert forms("10M")[0] == "full"
    # with no time on the air the CPU orders them: inflating every byte costs more than a
    # patch of 6,700 entries does
    assert forms("1G") == ["full", "delta", "compressed"]


def test_compressed_wins_between_them_when_the_delta_has_many_entries():
    # a patch that changes everything: its interpreted work per entry outweighs its bytes
    assert forms("1M", delta=900_000, entries=60_000)[0] == "compressed"


def test_a_small_change_goes_as_a_delta_up_to_fast_links():
    assert forms("10M", delta=100, entries=3)[0] == "delta"
    # with no time on the air the viper loops over every byte cost more than TLS does
    assert forms("1G", delta=100, entries=3)[0] == "full"


def test_the_crossover_of_compressed_and_image():
    # full and compressed cost the same where the bytes saved take as long as inflating
    saved = linkmodel.on_air(MB) - linkmodel.on_air(1_000_000)
    extra = linkmodel.INFLATE_S_PER_BYTE * MB + linkmodel.TLS_S_PER_BYTE * -saved
    cross = saved * 8 / extra
    sizes = {"full": MB, "compressed": 1_000_000}
    assert linkmodel.fastest(MB, sizes, int(cross * 0.99))[0].form == "compressed"
    assert linkmodel.fastest(MB, sizes, int(cross * 1.01))[0].form == "full"


def test_a_compressed_file_no_smaller_than_the_image_loses():
    sizes = {"compressed": MB, "full": MB}  # no fewer bytes: the inflating is all it adds
    assert linkmodel.fastest(MB, sizes, 1_000_000)[0].form == "full"


def test_patch_entries_do_not_depend_on_the_compression():
    counts = {c: linkmodel.patch_entries(make_patch(OLD, NEW, c)) for c in ("heatshrink", "crle", "none")}
    assert len(set(counts.values())) == 1
    assert counts["none"] >= 1
    # an image against itself plus one changed byte: a handful of entries
    one = bytearray(NEW)
    one[5000] ^= 1
    assert 1 <= linkmodel.patch_entries(make_patch(NEW, bytes(one), "none")) <= 3


@pytest.mark.parametrize("args,why", [
    (["--link-speed", "fast"], "bad link speed"),
    (["--link-speed", "1M", "--delta-only"], "--delta-only or --link-speed"),
    (["--link-speed", "1M", "--protocol", "mqtt"], "--link-speed chooses among the forms sent over https"),
])
def test_publish_refuses_bad_link_speeds(tmp_path, capsys, args, why):
    (tmp_path / "new.bin").write_bytes(NEW)
    code = cli.main(["publish", str(tmp_path / "new.bin"), "--thing", "t", *args])
    assert code == 2
    assert why in capsys.readouterr().err


def test_publish_sends_the_form_the_link_favours(local, tmp_path):  # noqa: F811
    fota, _ = local
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "old.bin").write_bytes(ZOLD)
    (tmp_path / "new.bin").write_bytes(ZNEW)
    r = fota("build", tmp_path / "new.bin", "--from", tmp_path / "old.bin", "--compress",
             "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)["manifest"]
    kept = json.loads(Path(manifest).read_text())
    assert "compressed" in kept and "delta" in kept

    def doc(*args: str) -> tuple[dict, str]:
        r = fota("publish", manifest, "--thing", thing, "--job-id", unique("job"), "--json", *args)
        assert r.code == 0, r.err
        return json.loads(r.out)["document"], r.err

    d, err = doc("--link-speed", "10k")  # slow: the patch, the image for other bases
    assert d["bc_enc"] == "delta" and d["bc_full"].endswith(".bin}")
    assert "sending the delta" in err
    d, err = doc("--link-speed", "10G")  # the link costs nothing: the image itself
    assert "bc_enc" not in d and d["bc_url"].endswith(".bin}")
    assert "sending the image" in err
    d, _ = doc("--link-speed", "10k", "--no-delta")  # of what is left, the fewest bytes
    assert d["bc_enc"] == "deflate" and d["bc_url"].endswith(".deflate}")
    d, _ = doc()  # no link speed: the delta, as before
    assert d["bc_enc"] == "delta"


def test_help_says_which_form_is_fastest_where(capsys):
    with pytest.raises(SystemExit):
        cli.main(["publish", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--link-speed" in out and "below about 1.5 Mbit/s" in out and "below about 20 Mbit/s" in out


def test_a_release_with_the_image_alone_sends_it_at_any_speed(local, tmp_path):  # noqa: F811
    fota, _ = local
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "new.bin").write_bytes(NEW)
    r = fota("publish", tmp_path / "new.bin", "--thing", thing, "--job-id", unique("job"),
             "--json", "--link-speed", "10k")
    assert r.code == 0, r.err
    assert "bc_enc" not in json.loads(r.out)["document"]


def test_choice_reads_the_manifest_sizes(tmp_path):
    # pick_form drops what loses and keeps what wins
    manifest = {"size": MB, "compressed": {"size": 1_000_000}}
    packed = Path(tmp_path / "x.deflate")
    assert cli.pick_form(10_000, manifest, packed, None) == (packed, None)
    assert cli.pick_form(10_000_000_000, manifest, packed, None) == (None, None)

"""`fota build --compress` and the publishing of compressed releases: 64 KB pieces, each a zlib
stream, that inflate back to the image; the document's bc_enc, bc_wbits and bc_zsize, with
bc_size and bc_crc still the image's."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import pytest

from fotatools import cli
from fotatools.release import (PIECE, ImageError, compress_image, inflate_pieces,
                               load_release)
from tests.cli.conftest import unique
from emulator.image import build_app_image
from tests.cli.images import raw_app_image
from tests.cli.test_cli_local import Device, local  # noqa: F401 (the fixture)

# compressible as a firmware is: frozen code text, then random filler
CODE = {"code.py": "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(3000))}
IMAGE = build_app_image("2.0.0", payload=CODE, size=300_000)


def build(tmp_path: Path, *args: str) -> tuple[int, dict]:
    src = tmp_path / "fw.bin"
    src.write_bytes(IMAGE)
    code = cli.main(["build", str(src), "--out", str(tmp_path / "rel"), "--json", *args])
    return code, json.loads((tmp_path / "rel" / "micropython-2.0.0.json").read_text())


def headers(packed: bytes) -> list[int]:
    """The window bits of each piece's zlib header."""
    out, pos = [], 0
    while pos < len(packed):
        out.append((packed[pos] >> 4) + 8)
        d = zlib.decompressobj()
        d.decompress(packed[pos:])
        pos = len(packed) - len(d.unused_data)
    return out


def test_build_compress_writes_pieces_that_inflate_to_the_image(tmp_path, capsys):
    code, manifest = build(tmp_path, "--compress")
    assert code == 0
    z = manifest["compressed"]
    packed = (tmp_path / "rel" / z["file"]).read_bytes()
    assert z["file"] == "micropython-2.0.0.deflate"
    assert (z["encoding"], z["wbits"], z["piece"]) == ("deflate", 12, PIECE)
    assert (z["size"], z["md5"]) == (len(packed), hashlib.md5(packed).hexdigest())
    assert inflate_pieces(packed) == IMAGE
    assert headers(packed) == [12] * ((len(IMAGE) + PIECE - 1) // PIECE)
    one = zlib.compressobj(9, zlib.DEFLATED, 12)
    assert z["one_stream_size"] == len(one.compress(IMAGE) + one.flush())
    assert (manifest["size"], manifest["md5"]) == (len(IMAGE), hashlib.md5(IMAGE).hexdigest())
    assert load_release(tmp_path / "rel" / "micropython-2.0.0.json").compressed == \
        tmp_path / "rel" / z["file"]


def test_build_compress_says_both_sizes(tmp_path, capsys):
    src = tmp_path / "fw.bin"
    src.write_bytes(IMAGE)
    assert cli.main(["build", str(src), "--out", str(tmp_path / "rel"), "--compress",
                     "--window", "10"]) == 0
    out = capsys.readouterr().out
    assert "in 64 KB pieces, window 1024 bytes; as one stream" in out
    packed = (tmp_path / "rel" / "micropython-2.0.0.deflate").read_bytes()
    assert set(headers(packed)) == {10}


def test_build_without_compress_has_no_compressed_file(tmp_path):
    code, manifest = build(tmp_path)
    assert code == 0 and "compressed" not in manifest
    assert not (tmp_path / "rel" / "micropython-2.0.0.deflate").exists()


@pytest.mark.parametrize("args,message", [
    (["--window", "10"], "--window goes with --compress"),
    (["--compress", "--window", "16"], "bad --window 16: 9..15 bits"),
    (["--compress", "--window", "8"], "bad --window 8: 9..15 bits"),
])
def test_bad_window_is_refused(tmp_path, capsys, args, message):
    src = tmp_path / "fw.bin"
    src.write_bytes(IMAGE)
    assert cli.main(["build", str(src), "--out", str(tmp_path / "rel"), *args]) == 2
    assert message in capsys.readouterr().err


def test_window_the_device_refuses_is_warned_about(tmp_path, capsys):
    src = tmp_path / "fw.bin"
    src.write_bytes(IMAGE)
    assert cli.main(["build", str(src), "--out", str(tmp_path / "rel"), "--compress",
                     "--window", "15"]) == 0
    assert "they refuse this one" in capsys.readouterr().err


def test_compressed_file_that_changed_is_refused(tmp_path):
    build(tmp_path, "--compress")
    path = tmp_path / "rel" / "micropython-2.0.0.deflate"
    packed = bytearray(path.read_bytes())
    packed[100] ^= 1
    path.write_bytes(bytes(packed))
    with pytest.raises(ImageError, match="does not match its manifest"):
        load_release(tmp_path / "rel" / "micropython-2.0.0.json")


@pytest.mark.parametrize("packed,message", [
    (compress_image(IMAGE)[:-10], "is not a whole piece"),
    (b"xyz" + compress_image(IMAGE), "piece 0 is not valid zlib data"),
    (zlib.compress(IMAGE), "is not a whole piece"),  # one stream, not pieces
])
def test_inflate_pieces_refuses_what_a_device_refuses(packed, message):
    with pytest.raises(ImageError, match=message):
        inflate_pieces(packed)


def padded_piece(data: bytes, empties: int) -> bytes:
    """A zlib stream (window 2**12) of data that starts with `empties` empty stored blocks of
    5 bytes each: valid deflate, whose first bytes of output come after 5 * empties bytes."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -12)
    body = b"\x00\x00\x00\xff\xff" * empties + raw.compress(data) + raw.flush()
    return bytes((0x48, 0x0D)) + body + zlib.adler32(data).to_bytes(4, "big")


@pytest.mark.parametrize("empties,ok", [(505, True), (509, False)])
def test_inflate_pieces_refuses_a_span_past_the_device_buffer(empties, ok):
    # A device inflates 1024 image bytes at a time from at least 2560 compressed bytes; the
    # check keeps 16 to spare (zlib reads a little further than the device's uzlib): the first
    # 1024 bytes from 2525 and a few (505 empty blocks) pass, from 2545 and more (509) not.
    data = b"ab" + bytes(PIECE - 2)
    packed = padded_piece(data, empties) + compress_image(IMAGE)
    assert zlib.decompress(packed[:len(packed) - len(compress_image(IMAGE))]) == data
    if ok:
        assert inflate_pieces(packed) == data + IMAGE
    else:
        with pytest.raises(ImageError, match="piece 0 takes more than 2544 compressed bytes for "
                                             "1024 image bytes: a device inflates 1024 at a time "
                                             "from a buffer of 2560"):
            inflate_pieces(packed)


def test_document_of_a_compressed_release():
    manifest = {"md5": "a" * 32, "size": 300_000, "version": "2.0.0",
                "compressed": {"wbits": 11, "size": 1234}}
    doc = cli.make_document(manifest, "https://b.example/fw.deflate", -1, compressed=True)
    assert doc["bc_enc"] == "deflate" and doc["bc_wbits"] == 11 and doc["bc_zsize"] == 1234
    assert (doc["bc_size"], doc["bc_crc"]) == (300_000, "a" * 32)  # still the image's
    assert "bc_enc" not in cli.make_document(manifest, "https://b.example/fw.bin", -1)


def test_publish_sends_the_compressed_file(local, tmp_path):  # noqa: F811
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(IMAGE)
    r = fota("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--compress", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"), "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["url"].endswith(".deflate")
    dev = Device(home, thing)
    try:
        doc = dev.take_job()["jobDocument"]
        data = dev.download(doc["bc_url"])
    finally:
        dev.close()
    assert (doc["bc_enc"], doc["bc_wbits"], doc["bc_zsize"]) == ("deflate", 12, len(data))
    assert inflate_pieces(data) == IMAGE
    assert (doc["bc_size"], doc["bc_crc"]) == (len(IMAGE), hashlib.md5(IMAGE).hexdigest())
    # --no-compress: the image itself
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
             "--no-compress", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert "bc_enc" not in out["document"] and out["url"].endswith(".bin")


def test_publish_on_aws_uploads_the_compressed_file(fota_aws, moto, tmp_path):
    import boto3

    thing = unique("dev")
    assert fota_aws("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(IMAGE)
    r = fota_aws("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--compress",
                 "--window", "11", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota_aws("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
                 "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    z = manifest["compressed"]
    key = f"firmware/micropython/2.0.0/{z['file']}"
    assert out["url"].endswith(f"/{key}")
    assert out["document"] == {
        "operation": "fota", "bc_idx": -1, "bc_crc": manifest["md5"], "bc_size": manifest["size"],
        "bc_url": f"${{aws:iot:s3-presigned-url:{out['url']}}}", "version": "2.0.0",
        "bc_enc": "deflate", "bc_wbits": 11, "bc_zsize": z["size"]}
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = s3.get_object(Bucket=fota_aws.env["FOTA_BUCKET"], Key=key)["Body"].read()
    assert inflate_pieces(stored) == IMAGE


# random bytes: deflate cannot make them smaller
NOISE = raw_app_image("2.0.0", size=200_000)


def test_compressed_file_not_smaller_than_the_image_is_not_kept(tmp_path, capsys):
    src = tmp_path / "fw.bin"
    src.write_bytes(NOISE)
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "micropython-2.0.0.deflate").write_bytes(b"from an earlier build")
    assert cli.main(["build", str(src), "--out", str(tmp_path / "rel"), "--compress"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "rel" / "micropython-2.0.0.json").read_text())
    packed = compress_image(NOISE)
    assert len(packed) >= len(NOISE)
    why = (f"deflate made {len(packed):,} bytes, not fewer than the image's {len(NOISE):,}: "
           "the image is sent itself")
    assert manifest["not_kept"] == {"compressed": why} and "compressed" not in manifest
    assert f"compressed: not kept: {why}" in out
    assert not (tmp_path / "rel" / "micropython-2.0.0.deflate").exists()
    assert load_release(tmp_path / "rel" / "micropython-2.0.0.json").compressed is None


def test_compressed_file_one_byte_smaller_is_kept(tmp_path, monkeypatch):
    from fotatools import release

    real = release.compress_image
    monkeypatch.setattr(release, "compress_image",
                        lambda data, wbits: real(data, wbits).ljust(len(data) - 1, b"\0"))
    code, manifest = build(tmp_path, "--compress")
    assert code == 0 and manifest["compressed"]["size"] == len(IMAGE) - 1
    assert "not_kept" not in manifest
    monkeypatch.setattr(release, "compress_image",
                        lambda data, wbits: real(data, wbits).ljust(len(data), b"\0"))
    code, manifest = build(tmp_path, "--compress")
    assert code == 0 and "compressed" not in manifest and "not_kept" in manifest


def test_publish_sends_the_image_of_a_release_whose_compression_was_not_kept(local, tmp_path):  # noqa: F811
    fota, _ = local
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(NOISE)
    r = fota("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--compress", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"), "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert "bc_enc" not in out["document"] and out["url"].endswith(".bin")


def test_publish_sends_the_image_when_an_older_release_kept_a_bigger_file(local, tmp_path):  # noqa: F811
    # a manifest from an older fota, whose .deflate is bigger than the image
    from fotatools.release import compressed_info

    fota, _ = local
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(NOISE)
    r = fota("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    path = Path(json.loads(r.out)["manifest"])
    manifest = json.loads(path.read_text())
    packed = compress_image(NOISE)
    (path.parent / "old.deflate").write_bytes(packed)
    manifest["compressed"] = compressed_info(NOISE, packed, "old.deflate", 12)
    path.write_text(json.dumps(manifest))
    r = fota("publish", path, "--thing", thing, "--job-id", unique("job"), "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["url"].endswith(".bin")
    assert f"the compressed file is {len(packed):,} bytes, not fewer than the image's" in r.err

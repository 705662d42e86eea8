# update() and test() of the package: one image, from a FOTA document to its slot.
#
# The plan (fota.plan, against this device's slots), the slot writer and its buffers,
# the transport (HTTPS, or an MQTT stream for afr_ota files) wrapped in the plan's codec
# (fota.plan: the image itself, deflate pieces, a delta patch), the download sector by sector
# with its retries, then the checks of what the slot holds (size, MD5, signature, version,
# app image header), and test() setting the slot for one trial boot. The job flow around it
# (records, reports, resets) is fota/flow.py's; the steps are in its table.

from esp32 import Partition
from fota import core, otaslot
from fota.core import FotaError, apps, config_file, feed, log, version, why
from fota.https import Broken, File, HTTPError
from fota.plan import DocError, base, kind, plan


def plan_for(document):
    # The plan of a document on this device: its slots, what runs, the delta's base.
    if kind(document) == "app":
        nxt = apps().other()
        return plan(document, len(apps().FOLDERS), apps().mounted, nxt, apps().capacity(nxt))
    slots = otaslot.slots()
    run = otaslot.slot_index(otaslot.running())
    nxt = Partition(Partition.RUNNING).get_next_update()
    size = slots[0].ioctl(4, 0) * otaslot.SECTOR
    p = plan(document, len(slots), run, otaslot.slot_index(nxt), size)
    if p.codec == "delta":  # the patch if this device runs its base, else the whole image
        from fota import appimage

        p = base(p, appimage.sha256(otaslot.running()))
    return p


def update(document, ca=None, start=0, progress=None, conn=None, disconnect=False, state=None):
    # Download the firmware a FOTA document describes into its slot and check it.
    # start: bytes (whole sectors) already in the slot from an interrupted download, and
    # state: what progress was given with them (the codec's place in the transferred file);
    # progress(done, state) is called every core.PROGRESS_EVERY bytes that are safely in flash;
    # conn: the MQTT connection, for documents whose file comes over an MQTT stream;
    # disconnect: close conn before an HTTPS download, once the update's buffers exist.
    # Returns the new image's version; raises FotaError(step, reason) on any failure.
    # On a failure the slot's previous image is left as it was unless a sector of the new
    # one was written; then its header is erased (never a bootable mix of two images).
    # The CPU runs at full speed meanwhile (core.cpu_fast), and at its own clock again after.
    clock = core.cpu_fast()
    try:
        return _update(document, ca, start, progress, conn, disconnect, state)
    finally:
        core.cpu_back(clock)


def _update(document, ca, start, progress, conn, disconnect, state):
    w = None
    try:
        p = plan_for(document)
        key = signer_key()
        if key and not p.sig:
            raise DocError("unsigned image refused: this device requires bc_sig")
        if p.kind == "afr_ota" and not key:
            raise DocError("afr_ota images are code-signed: this device has no signer key")
        # Every buffer and hash of the update now, while the MQTT session still holds its TLS
        # RAM: on a board, heap growth later could take what the HTTPS handshake needs.
        if p.kind == "app":
            w = apps().writer(p.slot, p.size, start, bool(key), feed)
        else:
            w = otaslot.SlotWriter(otaslot.slots()[p.slot], p.size, start, sha256=bool(key))
        image = _image(p, source(p, ca, conn), state)
    except Exception as e:
        _abort(w)
        raise FotaError("check", str(e) if isinstance(e, DocError) else why(e))
    if disconnect and conn is not None and not p.stream:
        conn.close()  # two TLS sessions do not fit in most boards' RAM
    try:
        _download(w, image, progress)
    except Exception as e:  # an image refused from its first sector fails its check, "verify"
        _abort(w)
        raise FotaError("download" if not isinstance(e, otaslot.ImageRefused) else "verify", why(e))
    try:
        if p.kind == "app":
            desc = (apps().admit(w.finish(p.md5), p.version, key and _signed(key, w.sha.digest(), p.sig),
                               _newer),)
        else:
            desc = w.finish(p.md5)
            _admit(desc, (key, w.sha.digest(), p.sig) if key else None)
    except Exception as e:
        _abort(w)
        raise FotaError("verify", why(e))
    log("verify", "%d bytes, %s%s, version %s" % (
        p.size, "MD5 ok" if p.md5 else "no hash in the document", ", signature ok" if key else "",
        desc[0]))
    return desc[0]


def _abort(w):
    if w is None:
        return
    try:
        w.abort()
    except Exception as e:  # the failure being reported matters more
        log("download", "could not invalidate the slot: %s" % why(e))


def _admit(desc, signed):
    # The new image's descriptor against the running one: never a lower secure_version
    # (anti-rollback); with a signer, a valid signature and a newer version (no downgrade,
    # no replay of an older signed image).
    mine = otaslot.app_desc(otaslot.running())
    if mine and desc[2] < mine[2]:
        raise otaslot.SlotError("secure_version %d is below the running %d" % (desc[2], mine[2]))
    if not signed:
        return
    _signed(*signed)
    if not _newer(desc[0], version()):
        raise otaslot.SlotError("version %s is not newer than the running %s" % (desc[0], version()))


def _signed(key, digest, sig):
    from fota import ecdsa

    if not ecdsa.verify(key, digest, ecdsa.signature(sig)):
        raise otaslot.SlotError("signature does not verify")
    return True


def _newer(a, b):
    # Dotted numbers, with an optional leading v: 1.10.0 > 1.9.2.
    try:
        return _vkey(a) > _vkey(b)
    except ValueError:
        raise otaslot.SlotError("versions %s and %s cannot be ordered (use dotted numbers)" % (a, b))


def _vkey(v):
    return [int(x) for x in (v[1:] if v[:1] in "vV" else v).split(".")]


def signer_key():
    der = core.signer or config_file("signer")
    if not der:
        return None
    from fota import ecdsa  # only devices that check signatures load it

    return ecdsa.public_key(der)


def source(p, ca, conn):
    # The transport of a plan: open(start) -> a stream with readinto(), total and close():
    # an MQTT stream (AWS IoT MQTT-based file delivery) or HTTPS.
    if p.stream:
        if conn is None or not conn.connected():
            raise DocError("the file comes over MQTT: the update needs the connection")
        from fota.streams import StreamFile

        log("download", "over MQTT, stream %s file %d" % p.stream)
        return StreamFile(conn, p.stream[0], p.stream[1]).open
    if ca is None:
        ca = core.https_ca or config_file("https_ca") or config_file("ca")
    log("download", "over HTTPS from %s" % p.url.split("/")[2])
    return File(p.url, ca, feed).open


def _image(p, source, state):
    # How the transferred file becomes the image (the plan's codec), around the transport
    # source(start). -> a codec with open(start): a stream of image bytes from image offset
    # `start` (readinto, total, close), and state(done): a small JSON value to record with
    # `done`, given back as `state` to go on from there after a power cut.
    if p.codec == "deflate":
        from fota.inflate import Inflater

        log("download", "deflate, window %d bytes" % (1 << p.args["wbits"]))
        return Inflater(source, p.size, p.xsize, p.args["wbits"], state)
    if p.codec == "delta":
        from fota.delta import Patcher

        log("download", "delta from base %s, %d patch bytes" % (p.args["base"][:16], p.xsize))
        return Patcher(source, otaslot.running(), p.size, p.xsize)
    return _Plain(source)


class _Plain:
    # The transferred file is the image.
    def __init__(self, source):
        self.open = source

    def state(self, done):
        return None


def _download(w, image, progress=None):
    # Stream the image into the writer; a broken connection goes on from the last whole
    # sector (the codec and the transport must honour `start`).
    tries = 0
    step = max(w.size * core.CHUNK_LOG // 100, 1)
    mark = w.written - w.written % step + step
    saved = w.written
    while True:
        start = w.restart()
        try:
            r = image.open(start)
            try:
                if r.total != w.size:
                    raise HTTPError("server has %d bytes, document says %d" % (r.total, w.size))
                log("download", "%s at byte %d" % ("resuming" if start else "starting", start))
                while w.written < w.size and w.feed_from(r):
                    if w.written >= mark:
                        log("download", "%d%% %d/%d bytes" % (w.written * 100 // w.size, w.written, w.size))
                        mark += step
                        core.progress(0, "download", w.written, w.size)
                    done = w.sector * otaslot.SECTOR
                    if progress and done - saved >= core.PROGRESS_EVERY:
                        progress(done, image.state(done))
                        saved = done
                    feed()
                return
            finally:
                r.close()
        except (OSError, Broken) as e:
            tries += 1
            if tries >= core.MAX_TRIES:
                raise
            log("download", "connection lost (%s), retrying" % why(e))


def test(document, new_version=None):
    # Mark the slot the document's firmware (or application) was written to for one trial
    # boot. The caller resets; the bootloader (or boot.py, for an application) rolls back
    # unless the new firmware or application confirm()s.
    p = plan_for(document)
    if p.kind == "app":
        apps().switch(p.slot, new_version or p.version or "unknown")
    else:
        otaslot.slots()[p.slot].set_boot()

# The library's self-test of a new firmware or application, run once on its trial boot before
# it confirms itself: heap, filesystem, the Jobs API. Your own checks (sensors, peripherals)
# come after it: fota.run(selftest=...), or selftest(jobs) in an application's `app` module.
import gc
import os

MIN_FREE = 30000  # bytes of heap the application needs after start-up
PIECE = 4096  # ... in pieces this large: the next update's sector buffer is one


def memory():
    # -> None if the heap can hand out MIN_FREE bytes in PIECE-sized pieces now, else why not.
    # It allocates them (and frees them) rather than trusting gc.mem_free(): on an ESP32 that
    # figure adds the largest free block of system RAM (which Wi-Fi and TLS need too), and on
    # any port free bytes strewn in small holes cannot hold a buffer. On a board the heap may
    # grow into system RAM to make room; a grown area that is empty again is given back at
    # the next collection. What it cannot tell: whether the system RAM left is enough for the
    # next TLS handshake (esp32.idf_heap_info() shows that on a board), nor what the
    # application will allocate later.
    gc.collect()
    pieces = []
    try:
        for _ in range((MIN_FREE + PIECE - 1) // PIECE):
            pieces.append(bytearray(PIECE))
    except MemoryError:
        got = len(pieces) * PIECE
        pieces = None
        gc.collect()
        return "heap could not give %d bytes in %d-byte pieces (got %d; %d used)" % (
            MIN_FREE, PIECE, got, gc.mem_alloc())
    pieces = None
    gc.collect()
    return None


def run(jobs):
    # -> (ok, reason). jobs: the connected Jobs client (the cloud is reachable).
    why = memory()
    if why:
        return False, why
    try:
        with open("selftest.tmp", "w") as f:
            f.write("ok")
        os.remove("selftest.tmp")
    except OSError as e:
        return False, "filesystem not writable (%s)" % e
    try:
        jobs.list()
    except Exception as e:
        return False, "jobs API unreachable (%s)" % e
    return True, "ok"

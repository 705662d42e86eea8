"""io of the emulated board: the unix port's built-in io plus BufferedWriter.

The ESP32 port builds io.BufferedWriter (MICROPY_PY_IO_BUFFEREDWRITER in
ports/esp32/mpconfigport.h); the unix "standard" build leaves it out. The launcher puts this
module in sys.modules["io"], which `import io` consults before the built-in modules, so
firmware gets the built-in io's objects themselves plus this class.
"""

from io import *  # noqa: F401,F403 - the built-in io, re-exported as it is


class BufferedWriter:
    """BufferedWriter(stream, size) as py/modio.c has it: write() fills a buffer of `size`
    bytes and writes it to `stream` whole each time it is full; flush() writes what is
    buffered (it does not flush `stream`). There is no close(): flush, then close the stream."""

    def __init__(self, stream, size):
        self._stream = stream
        self._buf = bytearray(size)
        self._len = 0

    def _write_all(self, data):
        while len(data):
            n = self._stream.write(data)
            if n is None:
                raise OSError(11)  # EAGAIN: a non-blocking stream took nothing
            data = data[n:]

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        data = memoryview(data)
        total = len(data)
        buf = self._buf
        while len(data):
            room = len(buf) - self._len
            if len(data) < room:
                buf[self._len:self._len + len(data)] = data
                self._len += len(data)
                break
            buf[self._len:] = data[:room]
            data = data[room:]
            self._write_all(memoryview(buf))
            self._len = 0
        return total

    def flush(self):
        if self._len:
            self._write_all(memoryview(self._buf)[:self._len])
            self._len = 0

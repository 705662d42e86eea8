# The two hot loops of a delta update, compiled to machine code by MicroPython's viper
# emitter (xtensawin on an ESP32). fota/deltaplain.py is the same in plain bytecode, for a
# firmware built without the emitter (importing this module then raises SyntaxError or
# ValueError). The loops are compiled when the module is imported, by the board's own
# compiler: as a string, this file compiles anywhere (mpy-cross without -march, a freeze for
# any port) and the emitter is asked for only where the code runs.
import micropython  # noqa: F401 (the decorators below)

# hs_decode states (the same in deltaplain)
TAG, LITERAL, INDEX, COUNT, COPY = 0, 1, 2, 3, 4

exec("""

@micropython.viper
def hs_decode(st, src, win, out) -> int:
    # Heatshrink: decode from src[st[0]:st[1]] into out, through the window win (2**st[8]
    # bytes). st (array "i"): in position, in end, bit accumulator, bits in it, state, window
    # head, back-reference offset, bytes left to copy, window bits, lookahead bits.
    # Returns the bytes written to out; fewer than len(out) when src ran out.
    s = ptr32(st)
    i = ptr8(src)
    w = ptr8(win)
    o = ptr8(out)
    n = int(len(out))
    ip = s[0]
    il = s[1]
    acc = s[2]
    nb = s[3]
    state = s[4]
    head = s[5]
    back = s[6]
    cnt = s[7]
    wb = s[8]
    lb = s[9]
    mask = (1 << wb) - 1
    op = 0
    while op < n:
        if state == 4:  # COPY
            k = n - op
            if cnt < k:
                k = cnt
            cnt -= k
            j = (head - back) & mask
            while k > 0:
                c = w[j]
                o[op] = c
                w[head] = c
                head = (head + 1) & mask
                j = (j + 1) & mask
                op += 1
                k -= 1
            if cnt == 0:
                state = 0
            continue
        need = 1
        if state == 1:
            need = 8
        elif state == 2:
            need = wb
        elif state == 3:
            need = lb
        while nb < need and ip < il:
            acc = (acc << 8) | i[ip]
            ip += 1
            nb += 8
        if nb < need:
            break
        nb -= need
        v = (acc >> nb) & ((1 << need) - 1)
        acc = acc & ((1 << nb) - 1)
        if state == 0:
            if v:
                state = 1
            else:
                state = 2
        elif state == 1:
            o[op] = v
            w[head] = v
            head = (head + 1) & mask
            op += 1
            state = 0
        elif state == 2:
            back = v + 1
            state = 3
        else:
            cnt = v + 1
            state = 4
    s[0] = ip
    s[2] = acc
    s[3] = nb
    s[4] = state
    s[5] = head
    s[6] = back
    s[7] = cnt
    return op


@micropython.viper
def add(out, diff):
    # out[i] = (out[i] + diff[i]) mod 256: bsdiff's diff bytes onto the base.
    o = ptr8(out)
    d = ptr8(diff)
    n = int(len(diff))
    k = 0
    while k < n:
        o[k] = o[k] + d[k]
        k += 1
""", globals())

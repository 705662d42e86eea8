# The hot loops of a delta update, compiled to machine code by MicroPython's viper
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
    full = 1 + wb + lb  # a whole item at once where its bits are in: at most 24 + 7 in acc
    if full < 9:
        full = 9
    if full > 24:
        full = 0  # none: such an item is read a field at a time
    op = 0
    while op < n:
        if state == 0 and full:
            while nb < full and ip < il:
                acc = (acc << 8) | i[ip]
                ip += 1
                nb += 8
            if nb >= full:
                nb -= 1
                if (acc >> nb) & 1:  # a literal
                    nb -= 8
                    v = (acc >> nb) & 0xFF
                    o[op] = v
                    w[head] = v
                    head = (head + 1) & mask
                    op += 1
                else:  # a back-reference
                    nb -= wb
                    back = ((acc >> nb) & mask) + 1
                    nb -= lb
                    cnt = ((acc >> nb) & ((1 << lb) - 1)) + 1
                    state = 4
                acc = acc & ((1 << nb) - 1)
                continue
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
def entries(st, dbuf, out) -> int:
    # The patch's entries from dbuf[st[0]:st[1]] made into out from out[st[2]] on, until out
    # is full or the caller is needed. st: see fota/delta.py, Patch. Returns k > 0: the caller
    # reads k base bytes at base position st[6] - MAX_IMAGE into out[st[2]:], then calls
    # again (st[7] == k: they are there, the diff is added); 0: out is full; -1: dbuf is used
    # up; -2: the caller reads the next size field (it runs past st[1], is longer than 4
    # bytes, or moves the base position outside 0..2 * MAX_IMAGE); -3: the image is made;
    # -4: the size just read (st[8]) is negative or runs past the image.
    s = ptr32(st)
    d = ptr8(dbuf)
    o = ptr8(out)
    n = int(len(out))
    dp = s[0]
    de = s[1]
    op = s[2]
    part = s[3]
    left = s[4]
    rem = s[5]
    frm = s[6]
    r = 0
    while True:
        if left > 0:
            if op == n:
                r = 0
                break
            if dp == de:
                r = -1
                break
            k = left
            if n - op < k:
                k = n - op
            if de - dp < k:
                k = de - dp
            if part == 0:
                if s[7] == 0:
                    s[7] = k
                    r = k
                    break
                k = s[7]
                s[7] = 0
                e = op + k
                while op < e:
                    o[op] = o[op] + d[dp]
                    op += 1
                    dp += 1
                frm += k
            else:
                e = op + k
                while op < e:
                    o[op] = d[dp]
                    op += 1
                    dp += 1
            left -= k
            continue
        if dp == de:
            r = -1
            break
        b = d[dp]
        v = b & 0x3F
        neg = b & 0x40
        p = dp + 1
        sh = 6
        while b & 0x80:
            if p == de or sh > 20:
                break
            b = d[p]
            v |= (b & 0x7F) << sh
            sh += 7
            p += 1
        if b & 0x80:
            r = -2
            break
        if neg:
            v = 0 - v
        if part == 1:  # the adjustment
            v += frm
            if v < 0 or v > 0x2000000:  # 2 * MAX_IMAGE
                r = -2
                break
            frm = v
            dp = p
            part = 2
            if rem == 0:
                r = -3
                break
            continue
        if v < 0 or v > rem:
            s[8] = v
            r = -4
            break
        dp = p
        left = v
        rem -= v
        if part == 0:
            part = 1
        else:
            part = 0
    s[0] = dp
    s[2] = op
    s[3] = part
    s[4] = left
    s[5] = rem
    s[6] = frm
    return r
""", globals())

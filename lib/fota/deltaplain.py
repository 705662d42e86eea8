# The hot loops of a delta update in plain bytecode: what runs where the firmware has no
# viper emitter. The same steps as fota/deltaviper.py, which is the one that normally runs.

TAG, LITERAL, INDEX, COUNT, COPY = 0, 1, 2, 3, 4


def hs_decode(st, src, win, out):
    # See deltaviper.hs_decode.
    ip, il, acc, nb, state, head, back, cnt, wb, lb = st
    mask = (1 << wb) - 1
    n = len(out)
    op = 0
    while op < n:
        if state == COPY:
            while cnt > 0 and op < n:
                c = win[(head - back) & mask]
                out[op] = c
                win[head] = c
                head = (head + 1) & mask
                op += 1
                cnt -= 1
            if cnt == 0:
                state = TAG
            continue
        need = (1, 8, wb, lb)[state]
        while nb < need and ip < il:
            acc = (acc << 8) | src[ip]
            ip += 1
            nb += 8
        if nb < need:
            break
        nb -= need
        v = (acc >> nb) & ((1 << need) - 1)
        acc &= (1 << nb) - 1
        if state == TAG:
            state = LITERAL if v else INDEX
        elif state == LITERAL:
            out[op] = v
            win[head] = v
            head = (head + 1) & mask
            op += 1
            state = TAG
        elif state == INDEX:
            back = v + 1
            state = COUNT
        else:
            cnt = v + 1
            state = COPY
    st[0], st[2], st[3], st[4], st[5], st[6], st[7] = ip, acc, nb, state, head, back, cnt
    return op


def entries(st, dbuf, out):
    # See deltaviper.entries.
    dp, de, op, part, left, rem, frm = st[0], st[1], st[2], st[3], st[4], st[5], st[6]
    n = len(out)
    r = 0
    while True:
        if left > 0:
            if op == n:
                r = 0
                break
            if dp == de:
                r = -1
                break
            k = min(left, n - op, de - dp)
            if part == 0:
                if st[7] == 0:
                    st[7] = r = k
                    break
                k = st[7]
                st[7] = 0
                for i in range(k):
                    out[op + i] = (out[op + i] + dbuf[dp + i]) & 0xFF
                frm += k
            else:
                out[op:op + k] = dbuf[dp:dp + k]
            op += k
            dp += k
            left -= k
            continue
        if dp == de:
            r = -1
            break
        b = dbuf[dp]
        v = b & 0x3F
        neg = b & 0x40
        p = dp + 1
        sh = 6
        while b & 0x80 and p < de and sh <= 20:
            b = dbuf[p]
            v |= (b & 0x7F) << sh
            sh += 7
            p += 1
        if b & 0x80:
            r = -2
            break
        if neg:
            v = -v
        if part == 1:  # the adjustment
            v += frm
            if v < 0 or v > 0x2000000:  # 2 * MAX_IMAGE
                r = -2
                break
            frm, dp, part = v, p, 2
            if rem == 0:
                r = -3
                break
            continue
        if v < 0 or v > rem:
            st[8] = v
            r = -4
            break
        dp, left, rem = p, v, rem - v
        part = 1 if part == 0 else 0
    st[0], st[2], st[3], st[4], st[5], st[6] = dp, op, part, left, rem, frm
    return r

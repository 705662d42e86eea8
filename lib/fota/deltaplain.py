# The two hot loops of a delta update in plain bytecode: what runs where the firmware has no
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


def add(out, diff):
    # See deltaviper.add.
    for k in range(len(diff)):
        out[k] = (out[k] + diff[k]) & 0xFF

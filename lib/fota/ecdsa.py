# ECDSA P-256 signature verification (SHA-256), as AWS code signing signs FreeRTOS images
# and `fota build --sign` signs releases. Public keys only: nothing secret lives here.
#
# Points are in Jacobian coordinates (X, Y, Z) ~ (X/Z^2, Y/Z^3); u1*G + u2*Q is computed in
# one pass (Shamir's trick, two bits at a time). Verification only: constant time is not needed.

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
INF = (1, 1, 0)  # the point at infinity: any Z = 0 (only Z is ever read of it)


class SignatureError(Exception):
    pass


def public_key(der):
    # The point of a P-256 public key: DER SubjectPublicKeyInfo (91 bytes) or the raw
    # uncompressed point (65 bytes, 0x04 || X || Y). Checked to be on the curve.
    pt = bytes(der[-65:])
    if len(der) not in (65, 91) or pt[0] != 4:
        raise SignatureError("not an uncompressed P-256 public key")
    x = int.from_bytes(pt[1:33], "big")
    y = int.from_bytes(pt[33:], "big")
    if x >= P or y >= P or (y * y - x * x * x + 3 * x - B) % P:
        raise SignatureError("public key is not on P-256")
    return x, y


def signature(der):
    # (r, s) from a DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }.
    der = bytes(der)
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise SignatureError("malformed signature")
    out, i = [], 2
    for _ in range(2):
        if der[i] != 2 or der[i + 1] > 33 or i + 2 + der[i + 1] > len(der):
            raise SignatureError("malformed signature")
        n = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + n], "big"))
        i += 2 + n
    if i != len(der):
        raise SignatureError("malformed signature")
    return out[0], out[1]


def verify(key, digest, sig):
    # key: (x, y) from public_key(); digest: SHA-256 of the data; sig: (r, s).
    r, s = sig
    if not (0 < r < N and 0 < s < N):
        return False
    w = pow(s, N - 2, N)
    z = int.from_bytes(digest, "big")
    u1, u2 = z * w % N, r * w % N
    # i*G + j*Q for i, j in 0..3 at index 4*i + j: two bits of each number a step, 128
    # steps of two doublings and (15 times in 16) one addition
    g, q = (G[0], G[1], 1), (key[0], key[1], 1)
    g2, q2 = _double(g), _double(q)
    gs, qs = (None, g, g2, _add(g2, g)), (None, q, q2, _add(q2, q))
    table = [gs[i] if not j else qs[j] if not i else _add(gs[i], qs[j])
             for i in range(4) for j in range(4)]
    acc = INF
    for bit in range(254, -1, -2):
        acc = _double(_double(acc))
        k = (u1 >> bit & 3) << 2 | (u2 >> bit & 3)
        if k:
            acc = _add(acc, table[k])
    x, z = acc[0], acc[2]
    if not z:
        return False
    # x / z**2 mod N == r without an inverse: the affine x is r, or r + N where that is below P
    zz = z * z % P
    return (x - r * zz) % P == 0 or (r + N < P and (x - (r + N) * zz) % P == 0)


def _double(p1):
    x, y, z = p1
    if not z or not y:
        return INF
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _add(p1, p2):
    if not p1[2]:
        return p2
    if not p2[2]:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1 = z1 * z1 % P
    u2, s2 = x2 * z1z1 % P, y2 * z1 * z1z1 % P
    if z2 == 1:  # G or the key, as given: five products fewer
        u1, s1 = x1, y1
    else:
        z2z2 = z2 * z2 % P
        u1, s1 = x1 * z2z2 % P, y1 * z2 * z2z2 % P
        z1 = z1 * z2
    h, r = (u2 - u1) % P, (s2 - s1) % P
    if not h:
        return _double(p1) if not r else INF
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - s1 * hhh) % P, h * z1 % P

"""Edwards25519 arithmetic, straight from RFC 8032 §5.1, to build signatures that an
ordinary signer never makes: keys and R of small or mixed order, non-canonical
encodings (protocols/ops.md §4.3.1). Slow and not constant time: for vectors only.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z


def add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(k: int, p: Point) -> Point:
    q: Point = (0, 1, 1, 0)
    while k > 0:
        if k & 1:
            q = add(q, p)
        p = add(p, p)
        k >>= 1
    return q


def neg(p: Point) -> Point:
    return ((-p[0]) % P, p[1], p[2], (-p[3]) % P)


def equal(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def decode(data: bytes, *, reduce: bool = False) -> Point | None:
    """The point an encoding names; `reduce` takes y mod p, as lax decoders do."""
    n = int.from_bytes(data, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if reduce:
        y %= P
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def encode(p: Point) -> bytes:
    zinv = pow(p[2], P - 2, P)
    x, y = p[0] * zinv % P, p[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def encode_y(y: int, sign: int) -> bytes:
    """An encoding with y as given, reduced or not (y < 2^255)."""
    return (y | (sign << 255)).to_bytes(32, "little")


B = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
assert B is not None
IDENTITY: Point = (0, 1, 1, 0)


def order_divides(p: Point, n: int) -> bool:
    return equal(mul(n, p), IDENTITY)


def torsion_8() -> Point:
    """A point of order exactly 8 (the torsion subgroup's generator)."""
    for y in range(2, 1000):
        for sign in (0, 1):
            p = decode(encode_y(y, sign))
            if p is None:
                continue
            t = mul(L, p)  # kills the prime-order part
            if not order_divides(t, 4):
                return t
    raise AssertionError("no point of order 8 found")


def secret_scalar(seed: bytes) -> int:
    """The signing scalar a of an RFC 8032 key from its seed."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


def challenge(r_enc: bytes, a_enc: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r_enc + a_enc + message).digest(), "little") % L


def verify_cofactorless(a_enc: bytes, message: bytes, sig: bytes, *, reduce: bool = False
                        ) -> bool:
    """encode([S]B - [k]A) == R, bytewise (no checks on S, A or R beyond decoding)."""
    a = decode(a_enc, reduce=reduce)
    if a is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    k = challenge(sig[:32], a_enc, message)
    check = add(mul(s, B), neg(mul(k, a)))
    if reduce:
        r = decode(sig[:32], reduce=True)
        return r is not None and equal(check, r)
    return encode(check) == sig[:32]


def verify_cofactored(a_enc: bytes, message: bytes, sig: bytes) -> bool:
    """[8][S]B == [8]R + [8][k]A, as RFC 8032 §5.1.7 allows (y must be < p)."""
    a, r = decode(a_enc), decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = challenge(sig[:32], a_enc, message)
    return equal(mul(8, mul(s, B)), mul(8, add(r, mul(k, a))))

"""Kubernetes resource quantities (`500m`, `128Mi`, `1e3`) as exact Decimals.

Requests and limits, node capacity and allocatable, and the scheduler's
arithmetic all use quantities; floats would round `0.1` CPUs, so values are
`Decimal`. Parsing follows `k8s.io/apimachinery/pkg/api/resource`: an optional
sign, digits with an optional fraction, then one suffix (binary `Ki`..`Ei`,
decimal `n u m k M G T P E`, or an exponent `e3`/`E-2`); values finer than a
nano are rounded up to the next nano, as Kubernetes does.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_UP, Context, Decimal, InvalidOperation, localcontext

QuantityLike = str | int | float | Decimal

_FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_NUMBER = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_MAX_EXPONENT = 100  # larger exponents are junk for any resource and expensive to expand

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = Decimal("1e-9")


def _context(digits: int) -> Context:
    return Context(prec=digits + 2 * _MAX_EXPONENT + 40, Emax=10 * _MAX_EXPONENT, Emin=-10 * _MAX_EXPONENT)


def parse_quantity(value: QuantityLike) -> Decimal:
    """The exact value of a quantity; raises ValueError on anything that is not one."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a quantity: {value!r}")
        return _round_nano(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a quantity: {value!r}")
        return _round_nano(Decimal(repr(value)))
    if not isinstance(value, str):
        raise ValueError(f"not a quantity: {value!r}")
    match = _NUMBER.fullmatch(value)
    if not value or match is None:
        raise ValueError(_FORMAT_ERROR)
    sign, number, suffix = match.groups()
    if suffix and not re.fullmatch(r"[eEinumkKMGTP]*[-+]?[0-9]*", suffix):
        raise ValueError(_FORMAT_ERROR)
    amount = Decimal(number)
    with localcontext(_context(len(number))):
        if suffix in _BINARY:
            amount *= 2 ** _BINARY[suffix]
        elif suffix in _DECIMAL:
            amount = amount.scaleb(_DECIMAL[suffix])
        else:
            exp = _EXPONENT.fullmatch(suffix)
            if exp is None:
                raise ValueError("unable to parse quantity's suffix")
            power = int(exp.group(1))
            if abs(power) > _MAX_EXPONENT:
                raise ValueError(f"quantity exponent out of range: {value}")
            amount = amount.scaleb(power)
        if sign == "-":
            amount = -amount
        return _round_nano(amount)


def _round_nano(amount: Decimal) -> Decimal:
    """Round finer-than-nano values up (away from zero), as Kubernetes does."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9 and amount != 0:
        try:
            with localcontext(_context(len(amount.as_tuple().digits))):
                return amount.quantize(_NANO, rounding=ROUND_UP)
        except InvalidOperation:
            raise ValueError(f"quantity out of range: {amount}") from None
    return amount


def _ceil(amount: Decimal) -> int:
    with localcontext(_context(len(amount.as_tuple().digits))):
        return int(amount.to_integral_value(rounding=ROUND_CEILING))


def cpu_millis(value: QuantityLike) -> int:
    """CPU in millicores, rounded up: `100m` → 100, `0.5` → 500, `1` → 1000, `1n` → 1."""
    amount = parse_quantity(value)
    with localcontext(_context(len(amount.as_tuple().digits))):
        return _ceil(amount.scaleb(3))


def bytes_value(value: QuantityLike) -> int:
    """A memory or storage quantity in bytes, rounded up: `1Ki` → 1024, `1k` → 1000, `0.5` → 1."""
    return _ceil(parse_quantity(value))


def format_quantity(value: QuantityLike, binary: bool = False) -> str:
    """The canonical spelling Kubernetes prints.

    Decimal: the largest power-of-1000 suffix that keeps an integer mantissa
    (`1500m`, `2k`, `128M`). Binary (memory) integers of at least 1024 use the
    largest `Ki`..`Ei` suffix that divides them exactly (`128Mi`, `1536Mi`);
    anything else falls back to the decimal form, as Kubernetes does.
    """
    amount = parse_quantity(value)
    if amount == 0:
        return "0"
    with localcontext(_context(len(amount.as_tuple().digits))):
        if binary and abs(amount) >= 1024 and amount == amount.to_integral_value():
            whole = int(amount)
            power = 0
            while power < len(_BINARY_SUFFIX) - 1 and whole % (1024 ** (power + 1)) == 0:
                power += 1
            return f"{whole // 1024 ** power}{_BINARY_SUFFIX[power]}"
        exponent = amount.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        power3 = max(-9, min(18, (exponent // 3) * 3))
        mantissa = amount.scaleb(-power3)
        return f"{int(mantissa)}{_DECIMAL_SUFFIX[power3]}"

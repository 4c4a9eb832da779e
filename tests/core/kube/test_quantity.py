"""Resource quantities: parsing every suffix exactly, CPU millis, bytes and the canonical spelling."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.kube.quantity import bytes_value, cpu_millis, format_quantity, parse_quantity

PARSED = [
    ("0", "0"),
    ("1", "1"),
    ("-1", "-1"),
    ("+2", "2"),
    ("100m", "0.1"),
    ("1.5", "1.5"),
    (".5", "0.5"),
    ("1.", "1"),
    ("250u", "0.00025"),
    ("3n", "0.000000003"),
    ("2k", "2000"),
    ("2M", "2000000"),
    ("1G", "1e9"),
    ("1T", "1e12"),
    ("1P", "1e15"),
    ("1E", "1e18"),
    ("1Ki", "1024"),
    ("1.5Ki", "1536"),
    ("128Mi", str(128 * 2**20)),
    ("1Gi", str(2**30)),
    ("1Ti", str(2**40)),
    ("1Pi", str(2**50)),
    ("1Ei", str(2**60)),
    ("1e3", "1000"),
    ("1E3", "1000"),
    ("1e+3", "1000"),
    ("5e-1", "0.5"),
    ("1.5e2", "150"),
    ("0.1n", "0.000000001"),  # finer than a nano rounds up to one nano
    ("-0.1n", "-0.000000001"),  # away from zero
    ("12345678901234567890123456789012345", "12345678901234567890123456789012345"),  # no float rounding
]


@pytest.mark.parametrize(("text", "value"), PARSED)
def test_parse_quantity(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1K", "1e", "1ee3", "1.5.3", "abc", "Ki", "G", ".", "-",
                                  "1Mb", "1i", "1.1.M", "1+1", "1e1000", "0x10", "\u0661"])
def test_junk_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_kubernetes_error_messages() -> None:
    with pytest.raises(ValueError, match=r"^quantities must match the regular expression"):
        parse_quantity("abc")
    with pytest.raises(ValueError, match=r"^unable to parse quantity's suffix$"):
        parse_quantity("1K")


def test_numbers_are_accepted_but_not_booleans() -> None:
    assert parse_quantity(2) == 2
    assert parse_quantity(0.25) == Decimal("0.25")
    assert parse_quantity(Decimal("1.5")) == Decimal("1.5")
    for junk in (True, float("nan"), float("inf"), Decimal("NaN"), None, [1]):
        with pytest.raises(ValueError):
            parse_quantity(junk)  # type: ignore[arg-type]


@pytest.mark.parametrize(("q", "millis"), [("100m", 100), ("0.5", 500), ("1", 1000), ("2", 2000), ("1n", 1),
                                           ("1.0001", 1001), ("250m", 250), (1, 1000), (0.1, 100), ("0", 0),
                                           ("1500u", 2)])
def test_cpu_millis_rounds_up(q: str | int | float, millis: int) -> None:
    assert cpu_millis(q) == millis


@pytest.mark.parametrize(("q", "size"), [("1Ki", 1024), ("1k", 1000), ("128Mi", 134217728), ("1G", 10**9),
                                         ("0.5", 1), ("1.5Gi", 1610612736), ("100m", 1), ("0", 0),
                                         ("1e3", 1000)])
def test_bytes_value_rounds_up(q: str, size: int) -> None:
    assert bytes_value(q) == size


@pytest.mark.parametrize(("q", "binary", "text"), [
    ("0", False, "0"),
    ("100m", False, "100m"),
    ("0.1", False, "100m"),
    ("1.5", False, "1500m"),
    ("1500", False, "1500"),
    ("2000", False, "2k"),
    ("1e9", False, "1G"),
    ("1n", False, "1n"),
    ("-0.5", False, "-500m"),
    ("1e21", False, "1000E"),
    ("128Mi", True, "128Mi"),
    ("1.5Gi", True, "1536Mi"),
    ("1Gi", True, "1Gi"),
    ("1000", True, "1k"),  # below 1Ki Kubernetes falls back to the decimal form
    ("1500", True, "1500"),  # not a multiple of 1024
    ("0.5Ki", True, "512"),
    ("2Ei", True, "2Ei"),
])
def test_format_quantity(q: str, binary: bool, text: str) -> None:
    assert format_quantity(q, binary=binary) == text


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=-10**12, max_value=10**12, places=9, allow_nan=False, allow_infinity=False),
       st.booleans())
def test_format_then_parse_is_exact(value: Decimal, binary: bool) -> None:
    assert parse_quantity(format_quantity(value, binary=binary)) == value


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**40), st.sampled_from(["", "k", "M", "Ki", "Mi", "Gi", "m", "n"]))
def test_suffixes_scale_integers_exactly(n: int, suffix: str) -> None:
    factors: dict[str, int | Decimal] = {"": 1, "k": 1000, "M": 10**6, "Ki": 1024, "Mi": 2**20, "Gi": 2**30,
                                         "m": Decimal("0.001"), "n": Decimal("1e-9")}
    factor = factors[suffix]
    assert parse_quantity(f"{n}{suffix}") == n * factor

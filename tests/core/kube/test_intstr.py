"""IntOrString scaling for rolling updates: surge rounds up, unavailable rounds down."""

from __future__ import annotations

import pytest

from core.kube.intstr import is_percent, resolve_fenceposts, scaled_value


@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    (3, 10, True, 3),
    (3, 10, False, 3),
    ("25%", 10, True, 3),  # 2.5 up
    ("25%", 10, False, 2),  # 2.5 down
    ("25%", 4, True, 1),
    ("25%", 4, False, 1),
    ("25%", 1, True, 1),
    ("25%", 1, False, 0),
    ("0%", 10, True, 0),
    ("100%", 3, False, 3),
    ("150%", 2, True, 3),
    ("33%", 100, True, 33),
    ("1%", 0, True, 0),
    ("-10%", 15, True, -1),  # Go's math.Ceil(-1.5)
    ("-10%", 15, False, -2),
    ("+10%", 15, True, 2),
])
def test_scaled_value(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize("value", ["5", "", "%", "a%", "2.5%", "10 %", " 10%", True, None, 1.5])
def test_junk_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        scaled_value(value, 10, True)  # type: ignore[arg-type]


def test_non_percentage_string_message() -> None:
    with pytest.raises(ValueError, match="string is not a percentage"):
        scaled_value("5", 10, True)


def test_is_percent() -> None:
    assert is_percent("25%")
    assert not is_percent("25")
    assert not is_percent(25)
    assert not is_percent("x%")


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 1, (1, 0)),
    (0, "25%", 1, (0, 1)),  # both resolve to 0: one pod may go unavailable so the rollout moves
    (None, None, 3, (0, 1)),
    (1, 0, 3, (1, 0)),
    ("50%", 2, 5, (3, 2)),
])
def test_resolve_fenceposts(surge: int | str | None, unavailable: int | str | None, desired: int,
                            expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected

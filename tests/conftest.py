"""Shared test helpers: how a test asks for a real part (root, Docker, kubectl).

Locally a missing part skips the test with the reason; with CI=true the same
test fails instead, so CI can never go green by skipping what it must run.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip (locally) or fail (in CI) unless `condition` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required part missing in CI: {why}")
    pytest.skip(why)

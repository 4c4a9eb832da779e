"""The last dev test: nothing that this session's harness made is still on the machine.

Named to run after the other tests in this directory. It checks every run id and
private engine the session registered (namespaces, links, processes, mounts) and
the engine for containers with the session's label. The session engine itself is
checked when its fixture stops it, and `pytest_sessionfinish` repeats the whole
check after all fixtures are gone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pikube.dev import boards, naming
from tests.conftest import HarnessMade


@pytest.mark.integration
def test_nothing_made_by_this_session_is_left(
    harness_made: HarnessMade, docker_client: Any, container_labels: dict[str, str]
) -> None:
    assert harness_made.runs, "expected the tests before this one to have made boards"
    assert harness_made.leftovers() == []
    label = ",".join(f"{k}={v}" for k, v in container_labels.items())
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    # No namespace of any registered run, by name, even one teardown never heard of.
    names = os.listdir(boards.NETNS_DIR) if boards.NETNS_DIR.exists() else []
    assert [n for n in names if naming.run_of_netns(n) in harness_made.runs] == []

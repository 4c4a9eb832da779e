"""The last dev test: nothing that this session's harness made is still on the machine.

Named to run after the other tests in this directory, but it stands alone too: it
first makes and tears down a LAN of its own, so there is always at least one run
to check. It checks every run id and private engine the session registered
(namespaces, links, processes, mounts) and the engine for containers with the
session's label. The session engine itself is
checked when its fixture stops it, and `pytest_sessionfinish` repeats the whole
check after all fixtures are gone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pikube.dev import boards, naming
from tests.conftest import HarnessMade, _require_netns


@pytest.mark.integration
def test_nothing_made_by_this_session_is_left(
    harness_made: HarnessMade, docker_client: Any, container_labels: dict[str, str]
) -> None:
    _require_netns()
    own = naming.new_run_id()
    harness_made.runs.add(own)
    lan = boards.create(["master", "worker-1"], run=own)
    assert boards.namespaces_of(own) and boards.links_of(own)  # the check below has something to miss
    boards.teardown(lan.run)
    assert harness_made.leftovers() == []
    label = ",".join(f"{k}={v}" for k, v in container_labels.items())
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    # No namespace of any registered run, by name, even one teardown never heard of.
    names = os.listdir(boards.NETNS_DIR) if boards.NETNS_DIR.exists() else []
    assert [n for n in names if naming.run_of_netns(n) in harness_made.runs] == []

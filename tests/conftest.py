"""Shared test helpers: how a test asks for a real part (root, Docker, kubectl).

Locally a missing part skips the test with the reason; with CI=true the same
test fails instead, so CI can never go green by skipping what it must run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip (locally) or fail (in CI) unless `condition` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required part missing in CI: {why}")
    pytest.skip(why)


# --- The multi-board harness (pikube.dev): engine, images, boards -------------------------------
#
# Tests share one Docker engine per session (DOCKER_HOST if set, else a private dockerd under a
# tmp dir) and make boards per test. Everything a test makes is registered in `HARNESS_MADE`;
# `tests/dev/test_zz_nothing_left.py` and `pytest_sessionfinish` below check none of it is left.


@dataclass
class HarnessMade:
    """What this test session's harness made: run ids and private engine directories."""

    runs: set[str] = field(default_factory=set)
    engine_roots: set[Path] = field(default_factory=set)
    # The session's own private engine, which runs until its fixture ends.
    session_engine: Path | None = None
    # Label on every container tests start, so the final check can find stragglers.
    label: dict[str, str] = field(default_factory=dict)

    def leftovers(self, include_session_engine: bool = False) -> list[str]:
        from pikube.dev import boards, engine
        from pikube.dev.naming import RunId

        found = [f"run {run}: {item}" for run in sorted(self.runs) for item in boards.leftovers(RunId(run))]
        roots = set(self.engine_roots)
        if include_session_engine and self.session_engine is not None:
            roots.add(self.session_engine)
        for root in sorted(roots):
            found += [f"engine {root}: process {pid}" for pid in engine.leftover_processes(root)]
            found += [f"engine {root}: mount {mount}" for mount in engine.leftover_mounts(root)]
        return found


HARNESS_MADE = HarnessMade()


class DevImages(NamedTuple):
    busybox: str
    pause: str


def _require_netns() -> None:
    require(os.geteuid() == 0, "needs root for network namespaces and a Docker engine")
    require(shutil.which("ip") is not None, "needs iproute2 (ip)")
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")


@pytest.fixture(scope="session")
def harness_made() -> HarnessMade:
    """The session's record of runs and engines, for checks that nothing is left."""
    return HARNESS_MADE


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A `pikube.dev.engine.Engine`: DOCKER_HOST if set, else a private dockerd stopped at the end."""
    from pikube.dev import engine

    _require_netns()
    host = os.environ.get("DOCKER_HOST")
    if host:
        yield engine.connect(host)
        return
    require(shutil.which("dockerd") is not None, "needs Debian's docker.io (dockerd)")
    root = tmp_path_factory.mktemp("engine")
    HARNESS_MADE.session_engine = root
    started = engine.start(root)
    try:
        yield started
    finally:
        engine.stop(started)
        left = [*engine.leftover_processes(root), *engine.leftover_mounts(root)]
        engine.remove_files(root)
        assert not left, f"the session's Docker engine left processes {left}"


@pytest.fixture(scope="session")
def docker_client(docker_engine: Any) -> Iterator[Any]:
    """A `docker.DockerClient` for `docker_engine`."""
    client = docker_engine.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def dev_images(docker_client: Any) -> DevImages:
    """`pikube/busybox` and `pikube/pause`, made in the session's engine if missing."""
    from agent.runtime import localimages as images

    images.ensure(docker_client.api)
    return DevImages(busybox=images.BUSYBOX_IMAGE, pause=images.PAUSE_IMAGE)


@pytest.fixture(scope="session")
def container_labels() -> dict[str, str]:
    """Labels for every container a test starts (the final check looks for them)."""
    from pikube.dev import naming

    if not HARNESS_MADE.label:
        HARNESS_MADE.label = {naming.RUN_LABEL: f"tests-{naming.new_run_id()}"}
    return dict(HARNESS_MADE.label)


@pytest.fixture
def make_boards() -> Iterator[Callable[..., Any]]:
    """A factory: `make_boards(["master", "worker-1"])` makes a `pikube.dev.boards.Lan`.

    Every LAN made is torn down after the test, pass or fail, and must leave nothing.
    """
    from pikube.dev import boards

    _require_netns()
    made: list[Any] = []

    def make(names: Sequence[str] = ("master", "worker-1")) -> Any:
        from pikube.dev import naming

        run = naming.new_run_id()
        HARNESS_MADE.runs.add(run)
        lan = boards.create(list(names), run=run)
        made.append(lan)
        return lan

    yield make
    left = []
    for lan in made:
        boards.teardown(lan.run)
        left += boards.leftovers(lan.run)
    assert not left, f"boards left behind: {left}"


@pytest.fixture
def boards(make_boards: Callable[..., Any]) -> Any:
    """Two boards, `master` and `worker-1`, on a fresh test LAN (removed after the test)."""
    return make_boards(["master", "worker-1"])


# What pikube writes on a real board. Tests run boards in namespaces, with their own directories: a
# test that makes one of these paths on the machine itself leaked out of its boards (an agent with
# the default data dir, a Docker bind mount of a path only a board's private overlay has...).
MACHINE_PATHS = ("/etc/pikube", "/var/lib/pikube", "/opt/pikube", "/var/cache/pikube", "/usr/local/bin/pikube",
                 "/etc/systemd/system/pikube-master.service", "/etc/systemd/system/pikube-agent.service")


@pytest.fixture(autouse=True)
def _machine_untouched() -> Iterator[None]:
    """Fail the test that makes one of pikube's own paths on the machine it runs on."""
    before = {p for p in MACHINE_PATHS if os.path.lexists(p)}
    yield
    made = [p for p in MACHINE_PATHS if p not in before and os.path.lexists(p)]
    if made:
        pytest.fail(f"the test made {', '.join(made)} on the machine itself (outside its boards)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After session fixtures are gone: fail the run if the harness left anything behind."""
    if not (HARNESS_MADE.runs or HARNESS_MADE.engine_roots or HARNESS_MADE.session_engine):
        return
    left = HARNESS_MADE.leftovers(include_session_engine=True)
    if left:
        print("\nthe test harness left behind:\n  " + "\n  ".join(left))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

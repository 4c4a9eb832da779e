"""Usage sampling: a real container's cgroup read directly and through Docker's stats agree; the sampler's rules."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.metrics import cgroups, host
from agent.metrics.sampler import Reading, Sampler, rate
from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime

pytestmark = pytest.mark.integration


def test_a_containers_cgroup_and_dockers_stats_agree(docker_client: Any, dev_images: Any,
                                                       container_labels: dict[str, str]) -> None:
    box = docker_client.containers.run(
        dev_images.busybox, ["sh", "-c", "dd if=/dev/zero of=/dev/shm/x bs=1M count=32; while :; do :; done"],
        detach=True, labels=container_labels, shm_size="64m")
    try:
        box.reload()
        d = cgroups.dirs_of(int(box.attrs["State"]["Pid"]))
        assert d is not None, "the test process sees /sys/fs/cgroup: the container's cgroup must be found"
        runtime_usage = DockerRuntime.usage
        first = cgroups.read(d)
        assert first is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until dd has written its 32 MiB
            now = cgroups.read(d)
            if now is not None and now.working_set >= 32 * 1024 * 1024:
                break
            time.sleep(0.1)
        direct = cgroups.read(d)
        via_docker = runtime_usage(_Runtime(docker_client.api), box.id)
        assert direct is not None and via_docker is not None
        assert abs(direct.working_set - via_docker[1]) < 4 * 1024 * 1024, (direct, via_docker)
        assert 32 * 1024 * 1024 <= direct.working_set < 40 * 1024 * 1024
        later = direct
        while later is not None and later.cpu_ns == first.cpu_ns and time.monotonic() < deadline + 5:
            time.sleep(0.05)
            later = cgroups.read(d)
        assert later is not None and later.cpu_ns > first.cpu_ns  # the loop burns CPU
    finally:
        box.remove(force=True)


class _Runtime:
    """Just the Docker client `DockerRuntime.usage` calls."""

    def __init__(self, api: Any) -> None:
        self._client = api


def test_rates_need_two_readings_and_a_counter_that_goes_forward() -> None:
    assert rate(None, Reading(10.0, 5)) is None
    assert rate(Reading(10.0, 1_000_000_000), Reading(12.0, 2_000_000_000)) == 500_000_000  # half a core
    assert rate(Reading(10.0, 9), Reading(12.0, 5)) is None  # restarted: no negative rate
    assert host.cpu_ns() is not None and (host.working_set() or 0) > 0


def _container(cid: str, pod: str, name: str, kind: L.Kind = L.Kind.APP, pid: int = 2**22 + 1) -> Container:
    """A container whose process does not exist here (above pid_max): its cgroup is not found, the fallback used."""
    return Container(id=cid, name=cid, state="running", image="busybox", image_id="sha", pid=pid, labels={
        L.POD_UID: f"uid-{pod}", L.POD_NAME: pod, L.POD_NAMESPACE: "default", L.CONTAINER_NAME: name,
        L.KIND: kind.value})


def test_a_pod_is_reported_only_with_a_rate_for_every_container() -> None:
    clock = iter([0.0, 15.0, 30.0])
    counters = {"a1": [0, 1_500_000_000, 3_000_000_000], "a2": [0, 0, 0], "b1": [0, 15_000_000]}
    listing = [[_container("a1", "a", "app"), _container("a2", "a", "side"), _container("pause", "a", "POD",
                                                                                         L.Kind.SANDBOX)],
               [_container("a1", "a", "app"), _container("a2", "a", "side"), _container("b1", "b", "app")],
               [_container("a1", "a", "app"), _container("a2", "a", "side"), _container("b1", "b", "app")]]
    round_ = {"n": -1}

    def containers() -> list[Container]:
        round_["n"] += 1
        return listing[round_["n"]]

    def usage(cid: str) -> tuple[int, int] | None:
        assert cid != "pause", "the pause container is never sampled"
        start = {"a1": 0, "a2": 0, "b1": 1}[cid]
        return counters[cid][round_["n"] - start], 1024 * 1024

    sampler = Sampler(containers, lambda _r: None, 15, clock=lambda: next(clock), fallback=usage)
    assert sampler.sample() is None  # first readings: no rates yet
    second = sampler.sample()
    assert second is not None
    assert [p["name"] for p in second["pods"]] == ["a"]  # b is new: no rate yet, so not reported
    assert second["pods"][0]["containers"] == [{"name": "app", "cpu": 100_000_000, "memory": 1024 * 1024},
                                               {"name": "side", "cpu": 0, "memory": 1024 * 1024}]
    third = sampler.sample()
    assert third is not None and [p["name"] for p in third["pods"]] == ["a", "b"]
    assert third["pods"][1]["containers"][0]["cpu"] == 1_000_000 and third["window"] == 15.0

"""`kubectl create cronjob` on real agents (kubectl 1.20 writes batch/v1beta1, 1.33 batch/v1): within 70 s each
makes a Job whose pod's log says hi; `kubectl create job --from=cronjob/X` runs one at once; `get cj` shows them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.network.conftest import NetCluster, kubectl, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cj_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
               dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("cron"), docker_engine, docker_client, dev_images) as pair:
        yield pair



def test_cronjobs_run_on_schedule_and_on_demand(cj_cluster: tuple[NetCluster, Path]) -> None:
    c, config = cj_cluster
    for which in ("old", "new"):
        kubectl(config, which, "create", "cronjob", f"hello-{which}", f"--image={c.images.busybox}",
                "--schedule=*/1 * * * *", "--", "echo", "hi")
    kubectl(config, "new", "create", "job", "now", "--from=cronjob/hello-new")

    def said_hi(job: str) -> bool:
        pods = json.loads(kubectl(config, "new", "get", "pods", "-l", f"job-name={job}", "-o", "json").stdout)
        return any(kubectl(config, "new", "logs", p["metadata"]["name"], check=False).stdout.strip() == "hi"
                   for p in pods["items"])

    assert wait_for("the manual job's pod said hi", lambda: said_hi("now"), 60, 1)

    def scheduled_jobs() -> list[str] | None:
        listed = json.loads(kubectl(config, "new", "get", "jobs", "-o", "json").stdout)["items"]
        names = sorted(j["metadata"]["name"] for j in listed if j["metadata"]["name"].startswith("hello-"))
        owners = {j["metadata"]["name"].rsplit("-", 1)[0] for j in listed if j["metadata"]["name"].startswith("hello-")}
        return names if owners == {"hello-old", "hello-new"} else None

    names = wait_for("a scheduled job of each cronjob", scheduled_jobs, 70, 1)
    for job in names:
        assert wait_for(f"{job}'s pod said hi", lambda job=job: said_hi(job), 60, 1)
    table = kubectl(config, "old", "get", "cronjobs", "--no-headers").stdout
    assert re.search(r"hello-old\s+\*/1 \* \* \* \*", table)
    bad = kubectl(config, "new", "create", "cronjob", "bad", f"--image={c.images.busybox}", "--schedule=* * *",
                  check=False)
    assert bad.returncode != 0 and 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields' in bad.stderr

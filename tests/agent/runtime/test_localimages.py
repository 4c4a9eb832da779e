"""The images the agent makes from busybox-static: a static ELF check, the rootfs, the settings each image gets."""

from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from agent.runtime import localimages as images
from tests.conftest import DevImages, require

BUSYBOX = Path("/bin/busybox")


def test_is_static_tells_busybox_static_from_a_dynamic_binary() -> None:
    require(BUSYBOX.exists(), "needs Debian's busybox-static (/bin/busybox)")
    assert images.is_static(BUSYBOX)
    assert not images.is_static(Path(sys.executable).resolve())


def test_a_missing_or_dynamic_busybox_says_what_to_install(tmp_path: Path) -> None:
    for path in (tmp_path / "busybox", Path(sys.executable).resolve()):
        with pytest.raises(images.ImageError, match="is not a static busybox; install Debian's busybox-static"):
            images.find_busybox(path)


def test_host_busybox_has_the_applets_tests_need() -> None:
    require(BUSYBOX.exists(), "needs Debian's busybox-static (/bin/busybox)")
    box = images.find_busybox(BUSYBOX)
    names = {applet.rsplit("/", 1)[-1] for applet in box.applets}
    assert set(images.REQUIRED_APPLETS) <= names
    assert box.version[0].isdigit()


def test_rootfs_has_busybox_applets_and_etc_basics(tmp_path: Path) -> None:
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF not really")
    box = images.Busybox(path=fake, version="1.35.0", applets=("bin/sh", "usr/bin/wget", "sbin/httpd"))
    with tarfile.open(fileobj=io.BytesIO(images.rootfs_tar(box))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        assert passwd.read().startswith(b"root:x:0:0:")
    assert members["bin/busybox"].isfile()
    assert members["bin/busybox"].mode == 0o755
    assert members["usr/bin/wget"].issym()
    assert members["usr/bin/wget"].linkname == "/bin/busybox"
    assert members["tmp"].mode == 0o1777
    for name in ("etc/group", "etc/hosts", "root", "var/www", "proc", "sys", "dev"):
        assert name in members


def test_pause_image_traps_sigterm_and_sigint() -> None:
    changes = images.image_changes(images.PAUSE_REPO, "1.35.0")
    assert any(c.startswith("CMD") and "trap 'exit 0' TERM INT" in c for c in changes)
    assert 'CMD ["sh"]' in images.image_changes(images.BUSYBOX_REPO, "1.35.0")


def test_image_names_are_constants_agents_can_use() -> None:
    assert f"pikube/busybox:{images.IMAGE_VERSION}" == images.BUSYBOX_IMAGE
    assert f"pikube/pause:{images.IMAGE_VERSION}" == images.PAUSE_IMAGE


@pytest.mark.integration
def test_busybox_container_runs_in_the_private_engine(
    docker_client: Any, dev_images: DevImages, container_labels: dict[str, str]
) -> None:
    script = "echo hello from pikube; whoami; which wget nc httpd"
    out = docker_client.containers.run(
        dev_images.busybox, ["sh", "-c", script], network_mode="none", remove=True, labels=container_labels
    )
    assert out.decode().split() == [
        "hello",
        "from",
        "pikube",
        "root",
        "/usr/bin/wget",
        "/usr/bin/nc",
        "/usr/sbin/httpd",
    ]


@pytest.mark.integration
def test_ensure_is_idempotent(docker_client: Any, dev_images: DevImages) -> None:
    assert images.ensure(docker_client.api) == []
    label = docker_client.images.get(dev_images.busybox).labels[images.BUSYBOX_VERSION_LABEL]
    assert label[0].isdigit()


@pytest.mark.integration
@pytest.mark.parametrize("how", ["stop", "SIGINT"])
def test_pause_container_exits_at_once_on_a_signal(
    docker_client: Any, dev_images: DevImages, container_labels: dict[str, str], how: str
) -> None:
    container = docker_client.containers.run(
        dev_images.pause, detach=True, network_mode="none", labels=container_labels
    )
    try:
        time.sleep(0.3)  # let PID 1 set its trap
        container.reload()
        assert container.status == "running"
        started = time.monotonic()
        if how == "stop":
            container.stop(timeout=30)  # `docker stop -t 30`: SIGKILL only after 30 s
        else:
            container.kill(signal="SIGINT")
            container.wait(timeout=30)
        elapsed = time.monotonic() - started
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert elapsed < 1.0, f"pause took {elapsed:.2f}s to exit"
    finally:
        container.remove(force=True)


@pytest.mark.integration
def test_ensure_takes_the_agents_own_low_level_client(docker_client: Any, dev_images: DevImages) -> None:
    """The agent hands ensure its runtime's APIClient (a board's first pod makes the images this way)."""
    api = docker_client.api  # the same class DockerRuntime.api is: docker.APIClient
    import docker

    assert isinstance(api, docker.APIClient)
    assert images.has_image(api, dev_images.pause)
    assert not images.has_image(api, "pikube/no-such-image:0")
    assert images.ensure(api) == []

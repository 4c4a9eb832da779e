"""Docker as the container runtime: create, start, stop, inspect, exec, logs and events.

A small layer over the Docker SDK's low-level `APIClient`, returning plain
dataclasses. Inspections of containers are cached by (id, state): a finished
container never changes again, so a resync of 30 pods costs one `docker ps`
and only a few inspects.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.runtime import labels as L
from core.kube.timefmt import parse

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class RuntimeError_(Exception):
    """Docker refused or failed an operation; the message is Docker's, with what we asked.

    `detail` is Docker's own words alone (what a pod's status shows), the message
    prefixed with the operation (what a log line shows).
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class ImageNotFound(RuntimeError_):
    """The image is not in the engine (and could not be pulled)."""


@dataclass(frozen=True)
class Container:
    """One container as the agent needs to see it (from `docker inspect`)."""

    id: str
    name: str
    labels: dict[str, str]
    state: str  # created, running, restarting, paused, exited, dead, removing
    image: str
    image_id: str
    created: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    pid: int = 0

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting", "paused")

    @property
    def finished(self) -> bool:
        return self.state in ("exited", "dead") or (self.state == "created" and bool(self.error))

    @property
    def pod_uid(self) -> str:
        return self.labels.get(L.POD_UID, "")

    @property
    def container_name(self) -> str:
        return self.labels.get(L.CONTAINER_NAME, "")

    @property
    def kind(self) -> L.Kind:
        try:
            return L.Kind(self.labels.get(L.KIND, "app"))
        except ValueError:
            return L.Kind.APP

    @property
    def restart_count(self) -> int:
        try:
            return int(self.labels.get(L.RESTART_COUNT, "0"))
        except ValueError:
            return 0

    @property
    def ran_seconds(self) -> float:
        start, end = parse(self.started_at), parse(self.finished_at)
        return (end - start).total_seconds() if start and end else 0.0


def _container(doc: Obj) -> Container:
    st = doc.get("State") or {}
    cfg = doc.get("Config") or {}
    return Container(
        id=doc["Id"], name=str(doc.get("Name", "")).lstrip("/"), labels=dict(cfg.get("Labels") or {}),
        state=str(st.get("Status", "")), image=str(cfg.get("Image", "")), image_id=str(doc.get("Image", "")),
        created=str(doc.get("Created", "")), started_at=str(st.get("StartedAt", "")),
        finished_at=str(st.get("FinishedAt", "")), exit_code=int(st.get("ExitCode") or 0),
        oom_killed=bool(st.get("OOMKilled")), error=str(st.get("Error") or ""), pid=int(st.get("Pid") or 0))


@dataclass
class DockerRuntime:
    """The engine at `host`, seen through the eyes of node `node`."""

    host: str
    node: str
    timeout: int = 60
    _client: Any = None
    _pinger: Any = None
    _cache: dict[str, tuple[str, Container]] = field(default_factory=dict)
    # Containers Docker reported an `oom` event for. dockerd may mark State.OOMKilled only after the container
    # shows as exited (its OOM and exit notices race), so an inspect at the exit can miss it; the event does not.
    _oom: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        import docker

        self._client = docker.APIClient(base_url=self.host, timeout=self.timeout, max_pool_size=16)

    @property
    def api(self) -> Any:
        return self._client

    def close(self) -> None:
        self._client.close()
        if self._pinger is not None:
            self._pinger.close()

    def version(self) -> str:
        return f"docker://{self._client.version().get('Version', 'unknown')}"

    def ping(self, timeout: float | None = None) -> str | None:
        """None when the engine answers (within `timeout` seconds if given), else why not.

        The reason is worded from the kind of failure only (refused, no socket, no
        answer in time, an error status), so it stays the same while the engine stays
        down: the Node's Ready condition, which quotes it, is written only on change.
        """
        import docker

        try:
            if timeout is None:
                self._client.ping()
            else:
                if self._pinger is None:  # the version given: no request to learn it (which could fail)
                    self._pinger = docker.APIClient(base_url=self.host, timeout=timeout, max_pool_size=1,
                                                    version=self._client.api_version)
                self._pinger.ping()
        except Exception as exc:
            return _unreachable(self.host, exc, timeout)
        return None

    # -- containers ------------------------------------------------------------------------------

    def containers(self, pod_uid: str | None = None) -> list[Container]:
        """This node's containers (of one pod if `pod_uid`), from `docker ps -a` plus cached inspects."""
        wanted = [f"{L.NODE}={self.node}"]
        if pod_uid:
            wanted.append(f"{L.POD_UID}={pod_uid}")
        rows = self._call("list containers", self._client.containers, all=True, filters={"label": wanted})
        found = []
        seen = set()
        for row in rows:
            cid, state = row["Id"], str(row.get("State", ""))
            seen.add(cid)
            with self._lock:
                cached = self._cache.get(cid)
            if cached is not None and cached[0] == state:  # a container's facts change only with its state
                found.append(cached[1])
                continue
            c = self.inspect(cid)
            if c is not None:
                found.append(c)
        if pod_uid is None:
            with self._lock:
                for cid in list(self._cache):
                    if cid not in seen:
                        del self._cache[cid]
        return found

    def inspect(self, cid: str) -> Container | None:
        import docker

        try:
            c = _container(self._client.inspect_container(cid))
        except docker.errors.NotFound:
            with self._lock:
                self._cache.pop(cid, None)
            return None
        except docker.errors.APIError as exc:
            raise RuntimeError_(f"inspect {cid[:12]}: {exc.explanation or exc}") from exc
        with self._lock:
            if cid in self._oom and not c.oom_killed:
                c = dataclasses.replace(c, oom_killed=True)
            self._cache[cid] = (c.state, c)
        return c

    def create(self, name: str, image: str, labels: dict[str, str], host_config: Obj, **config: Any) -> str:
        try:  # checked by the SDK before anything is sent
            hc = self._client.create_host_config(**host_config)
        except Exception as exc:
            raise RuntimeError_(f"create container {name}: {exc}", str(exc)) from exc
        doc = self._call(f"create container {name}", self._client.create_container, image=image, name=name,
                         labels=labels, host_config=hc, **config)
        return str(doc["Id"])

    def start(self, cid: str) -> None:
        self._call(f"start {cid[:12]}", self._client.start, cid)
        with self._lock:
            self._cache.pop(cid, None)

    def stop(self, cid: str, grace: int) -> None:
        """SIGTERM (or the image's stop signal), SIGKILL after `grace` seconds; waits for the exit."""
        import docker

        try:
            self._client.stop(cid, timeout=max(int(grace), 0))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise RuntimeError_(f"stop {cid[:12]}: {exc.explanation or exc}") from exc
        with self._lock:
            self._cache.pop(cid, None)

    def remove(self, cid: str) -> None:
        import docker

        try:
            self._client.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise RuntimeError_(f"remove {cid[:12]}: {exc.explanation or exc}") from exc
        with self._lock:
            self._cache.pop(cid, None)

    def exec(self, cid: str, argv: list[str]) -> tuple[int, bytes]:
        """Run `argv` in the container and wait: (exit code, output)."""
        ex = self._call("exec", self._client.exec_create, cid, argv, stdout=True, stderr=True)
        out = self._call("exec", self._client.exec_start, ex["Id"])
        code = self._call("exec", self._client.exec_inspect, ex["Id"]).get("ExitCode")
        return (int(code) if code is not None else -1), bytes(out or b"")

    def usage(self, cid: str) -> tuple[int, int] | None:
        """(cumulative CPU ns, working-set bytes) from Docker's one-shot stats; None if the container is gone.

        The fallback of agent/metrics/cgroups.py, for an agent that cannot see the cgroup filesystem (one
        run by `ip netns exec`, which mounts a /sys of its own): one API call per container.
        """
        import docker

        try:
            doc = self._client.stats(cid, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise RuntimeError_(f"stats {cid[:12]}: {exc.explanation or exc}") from exc
        cpu = ((doc.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        memory = doc.get("memory_stats") or {}
        if not isinstance(cpu, int) or not isinstance(memory.get("usage"), int):
            return None
        stats = memory.get("stats") or {}
        inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
        return cpu, max(0, int(memory["usage"]) - int(inactive or 0))

    def logs(self, cid: str, follow: bool, timestamps: bool, tail: int | None, since: int | None) -> Any:
        """An iterator of log chunks with a `close()` that ends it from another thread."""
        kw: Obj = {"stdout": True, "stderr": True, "stream": True, "follow": follow, "timestamps": timestamps,
                   "tail": "all" if tail is None else tail}
        if since is not None:
            kw["since"] = since
        return self._call("logs", self._client.logs, cid, **kw)

    def events(self) -> Iterator[Obj]:
        """Container start/die/oom events of this node's containers, as they happen."""
        filters = {"type": ["container"], "event": ["start", "die", "oom"], "label": [f"{L.NODE}={self.node}"]}
        return self._noting_oom(iter(self._call("events", self._client.events, decode=True, filters=filters)))

    def _noting_oom(self, stream: Iterator[Obj]) -> Iterator[Obj]:
        for event in stream:
            if (event.get("Action") or event.get("status")) == "oom":
                cid = str((event.get("Actor") or {}).get("ID") or event.get("id") or "")
                with self._lock:
                    if len(self._oom) > 4096:
                        self._oom.clear()
                    self._oom.add(cid)
                    self._cache.pop(cid, None)  # inspected at the exit, it may say OOMKilled false
            yield event

    # -- images ----------------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        import docker

        try:
            return str(self._client.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise RuntimeError_(f"inspect image {ref}: {exc.explanation or exc}") from exc

    def pull(self, ref: str) -> None:
        import docker

        repo, tag = _split_ref(ref)
        try:
            for line in self._client.pull(repo, tag=tag, stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise ImageNotFound(str(line["error"]))
        except docker.errors.APIError as exc:
            raise ImageNotFound(str(exc.explanation or exc)) from exc

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        import docker

        try:
            return fn(*args, **kw)
        except docker.errors.ImageNotFound as exc:
            detail = str(exc.explanation or exc)
            raise ImageNotFound(f"{what}: {detail}", detail) from exc
        except docker.errors.APIError as exc:
            detail = str(exc.explanation or exc)
            raise RuntimeError_(f"{what}: {detail}", detail) from exc
        except Exception as exc:  # connection errors from requests
            detail = _unreachable(self.host, exc, None)
            raise RuntimeError_(f"{what}: {detail}", detail) from exc


def _unreachable(host: str, exc: BaseException, timeout: float | None) -> str:
    """Why the engine at `host` did not answer, in words that do not change from one attempt to the next."""
    import docker
    import requests

    if isinstance(exc, docker.errors.APIError):
        return f"the Docker engine at {host} answered {exc.status_code}: {exc.explanation or exc}"
    if isinstance(exc, requests.exceptions.Timeout) or _os_error(exc, TimeoutError) is not None:
        within = f" within {timeout:g}s" if timeout is not None else ""
        return f"the Docker engine at {host} did not answer{within}"
    cause = _os_error(exc, OSError)
    why = os.strerror(cause.errno) if cause is not None and cause.errno else type(exc).__name__
    return f"cannot connect to the Docker engine at {host}: {why}"


def _os_error(exc: BaseException, kind: type[OSError]) -> OSError | None:
    """The first `kind` among `exc`, its causes and its arguments (requests nests urllib3, which nests sockets).

    requests' own exceptions are OSErrors too, without an errno: they are looked into, not returned.
    """
    import requests

    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind) and not isinstance(item, requests.RequestException):
            return item
        todo.extend([item.__cause__, item.__context__, *item.args, getattr(item, "reason", None)])
    return None


def _split_ref(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"

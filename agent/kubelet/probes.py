"""Liveness, readiness and startup probes: httpGet, tcpSocket and exec, with the kubelet's timing rules.

One scheduler thread keeps every probe's next due time; due probes run on a small
thread pool so a slow one (up to its timeoutSeconds) holds up no other. Network
probes connect from inside the pod's network namespace (see `netns`). A result
flips only after `successThreshold` / `failureThreshold` consecutive outcomes;
liveness and readiness wait until a startup probe has succeeded; a flip wakes
the pod's sync through `on_change`.
"""

from __future__ import annotations

import enum
import heapq
import logging
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent.kubelet import netns
from agent.runtime.docker import DockerRuntime

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class ProbeKind(enum.StrEnum):
    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"


@dataclass(frozen=True)
class Target:
    """What to probe: one container instance (by id) of one pod."""

    pod_uid: str
    container: str
    container_id: str
    kind: ProbeKind
    probe: Obj
    ports: tuple[tuple[str, int], ...]
    netns: str | None
    pod_ip: str
    started_at: float  # wall clock seconds


@dataclass
class _State:
    target: Target
    result: bool | None
    successes: int = 0
    failures: int = 0
    due: float = 0.0
    on_hold: bool = False
    running: bool = False
    last_message: str = ""
    generation: int = field(default=0)


class Prober:
    """Runs one probe once: (success, message); success None when the probe could not be run at all.

    As the kubelet's prober, an exec probe that the runtime fails to run (an
    error, not a command exiting non-zero) has no result: it counts neither as a
    success nor as a failure, so Docker going away for a while kills no container
    for failed liveness once it is back. The same holds for an exec probe timing
    out while `runtime_down()` says the runtime is not answering.
    """

    def __init__(self, runtime: DockerRuntime, pool: ThreadPoolExecutor,
                 runtime_down: Callable[[], bool] = lambda: False) -> None:
        self.runtime, self.pool, self._runtime_down = runtime, pool, runtime_down

    def run(self, t: Target) -> tuple[bool | None, str]:
        probe = t.probe
        timeout = float(probe.get("timeoutSeconds") or 1)
        try:
            if "exec" in probe:
                return self._exec(t, list((probe.get("exec") or {}).get("command") or []), timeout)
            if "httpGet" in probe:
                return self._http(t, probe["httpGet"], timeout)
            if "tcpSocket" in probe:
                return self._tcp(t, probe["tcpSocket"], timeout)
        except OSError as exc:
            return False, str(exc)
        return False, "unsupported probe handler (pikube supports exec, httpGet and tcpSocket)"

    def _port(self, t: Target, value: Any) -> int:
        if isinstance(value, int) or str(value).isdigit():
            return int(value)
        for name, number in t.ports:
            if name == value:
                return number
        raise OSError(f"the container has no port named {value!r}")

    def _host(self, t: Target, spec: Obj) -> str:
        return str(spec.get("host") or t.pod_ip or "127.0.0.1")

    def _exec(self, t: Target, argv: list[str], timeout: float) -> tuple[bool | None, str]:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = self.runtime.exec(t.container_id, argv)
            except Exception as exc:
                box["error"] = exc

        worker = threading.Thread(target=run, name="exec-probe", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            if self._runtime_down():
                return None, f"command {argv!r} timed out after {timeout:g}s while the container runtime is down"
            return False, f"command {argv!r} timed out after {timeout:g}s"
        if "error" in box:
            return None, f"command {argv!r} could not be run: {box['error']}"
        code, out = box["result"]
        if code == 0:
            return True, ""
        return False, f"command {argv!r} exited with {code}: {out.decode(errors='replace').strip()[:200]}"

    def _http(self, t: Target, spec: Obj, timeout: float) -> tuple[bool, str]:
        host, port = self._host(t, spec), self._port(t, spec.get("port"))
        conn = netns.NetnsHTTPConnection(t.netns, host, port, timeout)
        try:
            if str(spec.get("scheme", "HTTP")).upper() == "HTTPS":
                conn.connect()
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                assert conn.sock is not None
                conn.sock = ctx.wrap_socket(conn.sock, server_hostname=host)
            headers = {"User-Agent": "kube-probe/1.29", "Accept": "*/*"}
            headers.update({h["name"]: h["value"] for h in spec.get("httpHeaders") or [] if "name" in h})
            conn.request("GET", str(spec.get("path") or "/"), headers=headers)
            resp = conn.getresponse()
            resp.read(10240)
            if 200 <= resp.status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {resp.status}"
        except OSError as exc:
            return False, f'Get "http://{host}:{port}{spec.get("path") or "/"}": {exc}'
        finally:
            conn.close()

    def _tcp(self, t: Target, spec: Obj, timeout: float) -> tuple[bool, str]:
        host, port = self._host(t, spec), self._port(t, spec.get("port"))
        try:
            netns.connect(t.netns, host, port, timeout).close()
        except OSError as exc:
            return False, f"dial tcp {host}:{port}: {exc}"
        return True, ""


def _initial(kind: ProbeKind) -> bool | None:
    # Liveness is presumed good, readiness bad until proven, startup unknown (not started).
    return True if kind is ProbeKind.LIVENESS else None


class ProbeManager:
    def __init__(self, prober: Prober, on_change: Callable[[str], None],
                 on_failure: Callable[[Target, str], None], clock: Callable[[], float] = time.time) -> None:
        self.prober, self._on_change, self._on_failure, self._clock = prober, on_change, on_failure, clock
        self._states: dict[tuple[str, str, ProbeKind], _State] = {}
        self._heap: list[tuple[float, int, tuple[str, str, ProbeKind]]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="probes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def ensure(self, target: Target) -> None:
        """Probe `target` from now on (replacing probes of an earlier instance of the same container)."""
        key = (target.pod_uid, target.container, target.kind)
        with self._cond:
            st = self._states.get(key)
            if st is not None and st.target.container_id == target.container_id:
                if st.target.pod_ip != target.pod_ip:
                    st.target = target
                return
            delay = float(target.probe.get("initialDelaySeconds") or 0)
            st = _State(target=target, result=_initial(target.kind), due=max(self._clock(),
                                                                             target.started_at + delay))
            self._states[key] = st
            self._push(key, st.due)

    def _push(self, key: tuple[str, str, ProbeKind], due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))
        self._cond.notify_all()

    def result(self, pod_uid: str, container: str, container_id: str, kind: ProbeKind) -> bool | None:
        """The current verdict for this container instance, None when there is none yet."""
        with self._cond:
            st = self._states.get((pod_uid, container, kind))
            if st is None or st.target.container_id != container_id:
                return _initial(kind)
            return st.result

    def forget(self, pod_uid: str, container: str | None = None, keep_id: str | None = None) -> None:
        with self._cond:
            for key in [k for k in self._states if k[0] == pod_uid and (container is None or k[1] == container)]:
                if keep_id is None or self._states[key].target.container_id != keep_id:
                    del self._states[key]

    def pods(self) -> set[str]:
        with self._cond:
            return {k[0] for k in self._states}

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._cond.wait(max(0.0, self._heap[0][0] - self._clock()) if self._heap else None)
                if self._stopped:
                    return
                _due, _seq, key = heapq.heappop(self._heap)
                st = self._states.get(key)
                if st is None or st.running or st.on_hold:
                    continue
                if st.due > self._clock():
                    self._push(key, st.due)
                    continue
                if key[2] is not ProbeKind.STARTUP and self._waiting_for_startup(key, st):
                    st.due = self._clock() + 1.0
                    self._push(key, st.due)
                    continue
                st.running = True
            self.prober.pool.submit(self._probe, key, st)

    def _waiting_for_startup(self, key: tuple[str, str, ProbeKind], st: _State) -> bool:
        startup = self._states.get((key[0], key[1], ProbeKind.STARTUP))
        return startup is not None and startup.target.container_id == st.target.container_id and \
            startup.result is not True

    def _probe(self, key: tuple[str, str, ProbeKind], st: _State) -> None:
        ok: bool | None
        try:
            ok, message = self.prober.run(st.target)
        except Exception as exc:  # a probe must never kill the prober
            ok, message = False, str(exc)
        changed = False
        with self._cond:
            st.running = False
            if self._states.get(key) is not st:
                return
            probe = st.target.probe
            if ok is None:  # errored: no verdict either way; try again next period
                st.due = self._clock() + float(probe.get("periodSeconds") or 10)
                self._push(key, st.due)
                log.debug("%s probe of %s/%s errored: %s", key[2].value, key[0], key[1], message)
                return
            if ok:
                st.successes, st.failures = st.successes + 1, 0
                if st.result is not True and st.successes >= int(probe.get("successThreshold") or 1):
                    st.result, changed = True, True
            else:
                st.failures, st.successes = st.failures + 1, 0
                st.last_message = message
                if st.result is not False and st.failures >= int(probe.get("failureThreshold") or 3):
                    st.result, changed = False, True
            if st.result is True and key[2] is ProbeKind.STARTUP:
                st.on_hold = True  # a startup probe stops once it has succeeded
            elif st.result is False and key[2] is not ProbeKind.READINESS:
                st.on_hold = True  # the container will be killed; its successor gets a new worker
            else:
                st.due = self._clock() + float(probe.get("periodSeconds") or 10)
                self._push(key, st.due)
        if not ok:
            self._on_failure(st.target, message)
        if changed:
            self._on_change(st.target.pod_uid)

"""The store on etcd, for several masters: the same `Store` as SQLite, over etcd's v3 JSON gateway.

pikube talks to etcd with the HTTP client it already has (`requests`), not a
gRPC library: etcd serves its v3 API as JSON on the client port (`/v3/kv/range`,
`/v3/kv/txn`, `/v3/watch` …, keys and values base64), and the Python gRPC
stacks are heavy on a Pi. The mapping, as kube-apiserver's etcd3 storage does it:

* `metadata.resourceVersion` is the key's etcd `mod_revision`; objects are
  stored without it and stamped on the way out;
* create is a transaction on `create_revision == 0`, update and delete compare
  `mod_revision` (AlreadyExists / NotFound / Conflict as the SQLite store
  raises them); `mutate` reads, applies the function and writes with a compare,
  again on a lost race;
* `list_page` reads at one revision (etcd keeps every revision until
  compaction), so continue tokens work across masters; a compacted revision is
  `Gone`, a future one `BadRequest`;
* a watch is one streaming `/v3/watch` request with `prev_kv` (events carry the
  previous object, deletions the last state stamped with the deletion
  revision), read by a thread into a queue; a compaction that overtakes it ends
  it with `Gone`;
* `compact` compacts etcd and remembers the mark under a key of its own, so
  every master (and a restarted one) answers `compacted_revision` alike.

Durability: etcd commits every write through its raft log (fsync), so
`durable=False` writes (heartbeats) are written too; docs/store.md compares
what an idle cluster writes on each backend. All keys live under `prefix`, so
several clusters (or a test run) can share one etcd.
"""

from __future__ import annotations

import base64
import builtins
import collections
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

import requests

from core import errors
from master.store.base import Event, EventType, Mutation, Obj, Page

_COMPACTED_TEXT = "required revision has been compacted"
_FUTURE_TEXT = "required revision is a future revision"


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with `prefix` (etcd's range_end for a prefix)."""
    for i in range(len(prefix) - 1, -1, -1):
        if prefix[i] < 0xFF:
            return prefix[:i] + bytes([prefix[i] + 1])
    return b"\x00"


@dataclass(frozen=True)
class EtcdTls:
    ca: str
    cert: str
    key: str


# What etcd answers when it has no leader, or a proposal found none in time.
# A member is defragmented when its database holds more free pages than this and than data.
DEFRAG_MIN_FREE = 32 * 1024 * 1024
DEFRAG_TIMEOUT = 120.0  # a defragmentation rewrites the whole database file: slow on an SD card
# etcd's words when it cannot commit for want of a leader or a majority; "context deadline exceeded" is its
# gateway's when its own request timeout (5 s + 2 election timeouts) ran out first.
_NO_QUORUM_TEXTS = ("no leader", "request timed out", "leader changed", "timed out waiting for read index",
                    "context deadline exceeded")


class EtcdStore:
    """A `Store` on an etcd cluster (any of `endpoints` answers; the next one is tried on a connection error)."""

    def __init__(self, endpoints: list[str], prefix: str = "/pikube", tls: EtcdTls | None = None,
                 timeout: float = 10.0, watch_queue: int = 5000) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self._endpoints = list(endpoints)
        self._configured = list(endpoints)
        self._prefix = prefix.rstrip("/")
        self._tls = tls
        self._timeout = timeout
        self._watch_queue = watch_queue
        self._session = self._new_session()
        self._lock = threading.Lock()
        self._closed = False
        self._watchers: set[_EtcdWatcher] = set()
        self._no_quorum_since: float | None = None  # monotonic time the cluster was last found without quorum

    # ---- plumbing -----------------------------------------------------------------------------------
    def _new_session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        if self._tls is not None:
            s.verify = self._tls.ca
            s.cert = (self._tls.cert, self._tls.key)
        return s

    def _key(self, key: str) -> bytes:
        return (self._prefix + key).encode()

    def _meta_key(self) -> str:
        """Where the compaction mark lives: outside every prefix, so no listing returns it; one for the whole
        etcd, as etcd's own compaction is."""
        return _b64("\x00pikube-compacted")

    @property
    def read_only(self) -> bool:
        """Whether the cluster was last found without quorum: reads are served by the member at hand (maybe
        stale), writes fail. Cleared by the next request the cluster answers as a whole."""
        return self._no_quorum_since is not None

    def describe(self) -> Obj:
        """The cluster's members (`/v3/cluster/member/list`), each one's own status asked of it directly
        (`/v3/maintenance/status`, one second each): whether it answers, its database size, who leads."""
        out: Obj = {"backend": "etcd", "endpoints": list(self._endpoints), "readOnly": self.read_only,
                    "members": [], "leader": ""}
        try:
            listed = self._post("/v3/cluster/member/list", {}, min(2.0, self._timeout))
        except errors.ApiError as exc:
            out["error"] = exc.message
            return out
        leader_id = ""
        for member in listed.get("members") or []:
            row: Obj = {"name": member.get("name") or "", "id": str(member.get("ID") or ""),
                        "clientURLs": list(member.get("clientURLs") or []),
                        "learner": bool(member.get("isLearner")), "healthy": False}
            for url in row["clientURLs"]:
                try:
                    resp = self._session.post(f"{url}/v3/maintenance/status", json={}, timeout=1.0)
                    status = resp.json() if resp.status_code == 200 else {}
                except (requests.RequestException, ValueError):
                    continue
                if status:
                    row["healthy"] = True
                    row["dbSizeBytes"] = int(status.get("dbSize") or 0)
                    leader_id = leader_id or str(status.get("leader") or "")
                    break
            out["members"].append(row)
        out["leader"] = next((m["name"] for m in out["members"] if m["id"] == leader_id), "")
        return out

    # -- membership (enable-master --join) ---------------------------------------------------------

    def members(self) -> builtins.list[Obj]:
        """The cluster's members as etcd lists them (`ID`, `name`, `peerURLs`, `clientURLs`, `isLearner`);
        a member added but never started has no name yet."""
        return builtins.list(self._post("/v3/cluster/member/list", {}, min(5.0, self._timeout)).get("members") or [])

    def learn_endpoints(self) -> builtins.list[str]:
        """Take up the client URLs of the cluster's voting members beside the configured ones, and drop learned
        ones of members that left: a master started with its own member alone then still reaches the cluster
        through the others when its member stops (the master calls this every minute). The endpoints now."""
        listed = [u for m in self.members() if m.get("name") and not m.get("isLearner")
                  for u in m.get("clientURLs") or []]
        with self._lock:
            keep = [u for u in self._endpoints if u in self._configured or u in listed]
            self._endpoints = keep + [u for u in listed if u not in keep]
            return builtins.list(self._endpoints)

    def add_learner(self, peer_url: str) -> Obj:
        """Add a non-voting member (a learner) that will be reached at `peer_url`: etcd's answer's member."""
        data = self._post("/v3/cluster/member/add", {"peerURLs": [peer_url], "isLearner": True}, self._timeout)
        return dict(data.get("member") or {})

    def remove_member(self, member_id: str) -> None:
        self._post("/v3/cluster/member/remove", {"ID": member_id}, self._timeout)

    # -- maintenance (the leading master, now and then) ------------------------------------------------

    def maintain(self, min_free_bytes: int = DEFRAG_MIN_FREE) -> Obj:
        """Give back what compaction freed and recover from a full database, as an operator would with etcdctl:
        a member whose database is mostly free pages (more than half, and over `min_free_bytes`) or that
        raised the NOSPACE alarm is defragmented, one member at a time (a defragmentation blocks that member);
        then a NOSPACE alarm is disarmed, so writes resume (if the live data itself is too big, etcd raises it
        again at once). Returns {"noSpace": [member names in alarm before], "defragmented": [names]}."""
        members = {str(m.get("ID")): m for m in self.members()}
        alarms = self._post("/v3/maintenance/alarm", {"action": "GET"}, self._timeout).get("alarms") or []
        full = {str(a.get("memberID")) for a in alarms if a.get("alarm") == "NOSPACE"}
        done: builtins.list[str] = []
        for member_id, member in members.items():
            for url in member.get("clientURLs") or []:
                try:
                    resp = self._session.post(f"{url}/v3/maintenance/status", json={}, timeout=2.0)
                    status = resp.json() if resp.status_code == 200 else {}
                except (requests.RequestException, ValueError):
                    continue
                size, in_use = int(status.get("dbSize") or 0), int(status.get("dbSizeInUse") or 0)
                free = size - in_use
                if member_id in full or (free > min_free_bytes and free * 2 > size):
                    resp = self._session.post(f"{url}/v3/maintenance/defragment", json={}, timeout=DEFRAG_TIMEOUT)
                    if resp.status_code == 200:
                        done.append(str(member.get("name") or member_id))
                break
        for member_id in full:
            self._post("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": member_id, "alarm": "NOSPACE"},
                       self._timeout)
        return {"noSpace": sorted(str((members.get(m) or {}).get("name") or m) for m in full), "defragmented": done}

    def _no_quorum(self) -> errors.ApiError:
        self._no_quorum_since = time.monotonic()
        return errors.ServiceUnavailable(
            message=f"the cluster's store has no quorum (etcd did not answer within {self._timeout:g} s): writes "
                    "are refused until a majority of its members is back; reads may be stale")

    def _call(self, path: str, body: Obj) -> Obj:
        """One request to the cluster. A range the cluster cannot answer for want of a quorum is answered by the
        member at hand (a serializable read), so a master that lost its peers still serves what it last saw."""
        try:
            data = self._post(path, body, self._timeout)
        except errors.ServiceUnavailable as exc:
            if path != "/v3/kv/range" or body.get("serializable") or "quorum" not in exc.message:
                raise
            data = self._post(path, {**body, "serializable": True}, min(2.0, self._timeout), fallback=True)
            return data
        self._no_quorum_since = None
        return data

    def _post(self, path: str, body: Obj, timeout: float, fallback: bool = False) -> Obj:
        last: Exception | None = None
        for _ in range(len(self._endpoints)):
            endpoint = self._endpoints[0]
            try:
                resp = self._session.post(f"{endpoint}{path}", json=body, timeout=timeout)
            except requests.ConnectionError as exc:
                last = exc
                with self._lock:  # try the next member; keep the order for everyone
                    self._endpoints.append(self._endpoints.pop(0))
                continue
            except requests.Timeout:
                if fallback:
                    raise errors.ServiceUnavailable(message="no etcd member answers, even for a stale read") \
                        from None
                raise self._no_quorum() from None
            data: Obj = resp.json() if resp.content else {}
            if resp.status_code != 200:
                raise self._error(data)
            return data
        reason = "connection refused" if "refused" in str(last).lower() else type(last).__name__
        raise errors.ServiceUnavailable(message=f"no etcd member reachable ({reason})")

    def _error(self, data: Obj) -> errors.ApiError:
        message = str(data.get("message") or data.get("error") or data)
        if any(t in message for t in _NO_QUORUM_TEXTS):
            return self._no_quorum()
        if _COMPACTED_TEXT in message:
            return errors.Gone(message=f"etcd: {message}")
        if _FUTURE_TEXT in message:
            return errors.BadRequest(message=f"etcd: {message}")
        if "NOSPACE" in message or "database space exceeded" in message:
            return errors.InternalError(message=f"etcd is out of space (NOSPACE alarm; compact, defragment and "
                                                f"disarm it): {message}")
        return errors.InternalError(message=f"etcd: {message}")

    @staticmethod
    def _stamped(kv: Obj, revision: int | None = None) -> Obj:
        obj: Obj = json.loads(_unb64(kv["value"]))
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision or int(kv["mod_revision"]))
        return obj

    @staticmethod
    def _encoded(obj: Obj) -> str:
        stored = dict(obj)
        meta = dict(stored.get("metadata") or {})
        meta.pop("resourceVersion", None)
        stored["metadata"] = meta
        return _b64(json.dumps(stored, separators=(",", ":"), sort_keys=True))

    # ---- reads --------------------------------------------------------------------------------------
    def revision(self) -> int:
        data = self._call("/v3/kv/range", {"key": self._meta_key(), "keys_only": True})
        return int(data["header"]["revision"])

    def compacted_revision(self) -> int:
        kvs = self._call("/v3/kv/range", {"key": self._meta_key()}).get("kvs") or []
        return int(_unb64(kvs[0]["value"])) if kvs else 0

    def _range_one(self, key: str) -> Obj | None:
        data = self._call("/v3/kv/range", {"key": _b64(self._key(key))})
        kvs = data.get("kvs") or []
        return kvs[0] if kvs else None

    def get(self, key: str) -> Obj | None:
        kv = self._range_one(key)
        return None if kv is None else self._stamped(kv)

    def list(self, prefix: str, start: str = "", limit: int = 0) -> tuple[list[Obj], int]:
        page = self.list_page(prefix, start, limit)
        return page.items, page.revision

    def list_page(self, prefix: str, start: str = "", limit: int = 0, revision: int = 0) -> Page:
        low = self._key(max(prefix, start)) if start else self._key(prefix)
        body: Obj = {"key": _b64(low), "range_end": _b64(prefix_end(self._key(prefix)))}
        if limit:
            body["limit"] = limit
        if revision:
            if revision < self.compacted_revision():
                raise errors.Gone(message=f"revision {revision} is older than the compacted revision")
            body["revision"] = revision
        data = self._call("/v3/kv/range", body)
        kvs = data.get("kvs") or []
        at = revision or int(data["header"]["revision"])
        items = [self._stamped(kv) for kv in kvs]
        return Page(items, at, max(0, int(data.get("count") or 0) - len(items)))

    def _txn(self, compare: builtins.list[Obj], success: builtins.list[Obj],
             failure: builtins.list[Obj] | None = None) -> Obj:
        return self._call("/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []})

    def create(self, key: str, obj: Obj, durable: bool = True) -> Obj:
        k = _b64(self._key(key))
        data = self._txn([{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
                         [{"request_put": {"key": k, "value": self._encoded(obj)}}])
        if not data.get("succeeded"):
            raise errors.AlreadyExists(message=f"{key} already exists")
        out = json.loads(json.dumps(obj))
        out.setdefault("metadata", {})["resourceVersion"] = str(int(data["header"]["revision"]))
        return out  # type: ignore[no-any-return]

    def update(self, key: str, obj: Obj, expect_revision: int | None = None, durable: bool = True) -> Obj:
        def replace(old: Obj | None) -> Obj:
            if old is None:
                raise errors.NotFound(message=f"{key} not found")
            if expect_revision is not None and int(old["metadata"]["resourceVersion"]) != expect_revision:
                raise errors.Conflict(message=f"{key} changed (revision {old['metadata']['resourceVersion']})")
            return obj

        _, new = self.mutate(key, replace, durable)
        assert new is not None
        return new

    def mutate(self, key: str, fn: Mutation, durable: bool = True) -> tuple[Obj | None, Obj | None]:
        k = _b64(self._key(key))
        while True:
            kv = self._range_one(key)
            old = None if kv is None else self._stamped(kv)
            compare = [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": str(kv["mod_revision"])}] \
                if kv is not None else [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}]
            new = fn(None if old is None else json.loads(json.dumps(old)))
            if new is None:
                if old is None:
                    return None, None
                data = self._txn(compare, [{"request_delete_range": {"key": k}}])
                if data.get("succeeded"):
                    assert old is not None
                    old["metadata"]["resourceVersion"] = str(int(data["header"]["revision"]))
                    return old, None
                continue
            data = self._txn(compare, [{"request_put": {"key": k, "value": self._encoded(new)}}])
            if data.get("succeeded"):
                out: Obj = json.loads(json.dumps(new))
                out.setdefault("metadata", {})["resourceVersion"] = str(int(data["header"]["revision"]))
                return old, out

    def delete(self, key: str, expect_revision: int | None = None) -> Obj:
        def remove(old: Obj | None) -> None:
            if old is None:
                raise errors.NotFound(message=f"{key} not found")
            if expect_revision is not None and int(old["metadata"]["resourceVersion"]) != expect_revision:
                raise errors.Conflict(message=f"{key} changed (revision {old['metadata']['resourceVersion']})")

        old, _ = self.mutate(key, remove)
        if old is None:
            raise errors.NotFound(message=f"{key} not found")
        return old

    # ---- watch and compaction -----------------------------------------------------------------------
    def watch(self, prefix: str, since: int) -> _EtcdWatcher:
        if self._closed:
            raise errors.Gone(message="the store is closed")
        compacted = self.compacted_revision()
        if since < compacted:
            raise errors.Gone(message=f"revision {since} is older than the compacted revision {compacted}")
        watcher = _EtcdWatcher(self, prefix, since, self._watch_queue)
        with self._lock:
            self._watchers.add(watcher)
        watcher.start()
        return watcher

    def _forget(self, watcher: _EtcdWatcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def compact(self, keep_after: int) -> None:
        keep_after = min(keep_after, self.revision())
        if keep_after <= self.compacted_revision():
            return
        # The mark first (as SQLite does): new watches from below it answer Gone. Under the NOSPACE alarm etcd
        # refuses the mark (a put) but not the compaction, which is what frees room: etcd's own "compacted"
        # answer then stands in for the mark (also Gone).
        try:
            self._txn([], [{"request_put": {"key": self._meta_key(), "value": _b64(str(keep_after))}}])
        except errors.InternalError as exc:
            if "out of space" not in exc.message:
                raise
        with contextlib.suppress(errors.Gone):  # etcd had compacted there already (another master)
            self._call("/v3/kv/compaction", {"revision": keep_after, "physical": True})

    def compact_older_than(self, keep_last_revisions: int = 10_000) -> int:
        """Compact all but the newest `keep_last_revisions` revisions (every master may call it); the mark."""
        self.compact(self.revision() - keep_last_revisions)
        return self.compacted_revision()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            watchers = list(self._watchers)
        for w in watchers:
            w.close()
        self._session.close()


class _EtcdWatcher:
    """One `/v3/watch` stream, read by a thread into a bounded queue."""

    def __init__(self, store: EtcdStore, prefix: str, since: int, max_queue: int) -> None:
        self._store = store
        self._prefix = prefix
        self._since = since
        self._max = max_queue
        self._cond = threading.Condition()
        self._queue: collections.deque[Event] = collections.deque()
        self._gone = ""
        self._closed = False
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(self._store._timeout)
        if self._gone:
            raise errors.Gone(message=self._gone)

    def _request(self) -> Obj:
        key = self._store._key(self._prefix)
        return {"create_request": {"key": _b64(key), "range_end": _b64(prefix_end(key)),
                                   "start_revision": self._since + 1, "prev_kv": True}}

    def _connect(self) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self._store._endpoints[0])
        host, port = url.hostname or "127.0.0.1", url.port or 2379
        if url.scheme == "https":
            ctx = ssl.create_default_context(cafile=self._store._tls.ca if self._store._tls else None)
            if self._store._tls is not None:
                ctx.load_cert_chain(self._store._tls.cert, self._store._tls.key)
            return http.client.HTTPSConnection(host, port, context=ctx, timeout=self._store._timeout)
        return http.client.HTTPConnection(host, port, timeout=self._store._timeout)

    def _run(self) -> None:
        try:
            conn = self._connect()
            self._conn = conn
            conn.request("POST", "/v3/watch", body=json.dumps(self._request()),
                         headers={"Content-Type": "application/json"})
            if conn.sock is not None:
                conn.sock.settimeout(None)  # a watch waits for events as long as it lives
            resp = conn.getresponse()
            if resp.status != 200:
                self._drop(f"etcd refused the watch: {resp.status} {resp.read(2000)!r}")
                return
            decoder = json.JSONDecoder()
            buffer = ""
            while not self._closed:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                buffer += chunk.decode("utf-8")
                while True:
                    buffer = buffer.lstrip()
                    if not buffer:
                        break
                    try:
                        message, end = decoder.raw_decode(buffer)
                    except ValueError:
                        break
                    buffer = buffer[end:]
                    if not self._handle(message):
                        return
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self._closed:
                self._drop(f"the etcd watch ended: {exc}")
        finally:
            self._ready.set()
            if not self._closed:
                self._drop("the etcd watch stream ended")

    def _handle(self, message: Obj) -> bool:
        result = message.get("result") or {}
        if "error" in message:
            self._drop(f"etcd watch: {message['error']}")
            return False
        if result.get("created"):
            self._ready.set()
        if result.get("canceled") or result.get("compact_revision"):
            self._drop(f"the watch fell behind etcd's compaction (revision {result.get('compact_revision')})")
            return False
        strip = len(self._store._prefix)
        for ev in result.get("events") or []:
            kv = ev["kv"]
            key = _unb64(kv["key"]).decode()[strip:]
            revision = int(kv["mod_revision"])
            prev = EtcdStore._stamped(ev["prev_kv"]) if ev.get("prev_kv") else None
            kind: EventType
            if ev.get("type") == "DELETE":
                if prev is None:
                    continue
                obj = dict(prev)
                obj["metadata"] = {**prev["metadata"], "resourceVersion": str(revision)}
                kind = "DELETED"
            else:
                obj = EtcdStore._stamped(kv)
                kind = "ADDED" if kv.get("create_revision") == kv.get("mod_revision") else "MODIFIED"
            with self._cond:
                if len(self._queue) >= self._max:
                    self._gone = "the watcher fell too far behind"
                    self._cond.notify_all()
                    return False
                self._queue.append(Event(kind, key, obj, revision, prev))
                self._cond.notify_all()
        self._ready.set()
        return True

    def _drop(self, reason: str) -> None:
        with self._cond:
            if not self._gone:
                self._gone = reason
            self._cond.notify_all()

    def next(self, timeout: float) -> Event | None:
        with self._cond:
            if not self._queue and not self._gone:
                self._cond.wait(timeout)
            if self._queue:
                return self._queue.popleft()
            if self._gone and not self._closed:
                raise errors.Gone(message=self._gone)
            return None

    def close(self) -> None:
        """End the stream: shutting the socket down wakes the reading thread, which then ends."""
        self._closed = True
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        if conn is not None:
            conn.close()
        self._store._forget(self)

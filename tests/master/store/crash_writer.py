"""Subprocess for the crash test: writes in a loop and prints every acknowledged write.

Usage: crash_writer.py DB TAG. Four threads create, update and delete keys under
`/pods/TAG-N/` (durable) and one renews a volatile lease; each line printed is
`OP REVISION KEY` after the store returned, so the parent knows what was acknowledged
when it kills this process with SIGKILL.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from master.store.sqlite import SqliteStore

out_lock = threading.Lock()


def say(op: str, revision: object, key: str) -> None:
    with out_lock:
        sys.stdout.write(f"{op} {revision} {key}\n")
        sys.stdout.flush()


def durable(store: SqliteStore, prefix: str) -> None:
    i = 0
    while True:
        key = f"{prefix}/p{i}"
        o = store.create(key, {"metadata": {"name": f"p{i}"}, "spec": {"n": 0}})
        say("C", o["metadata"]["resourceVersion"], key)
        o = store.update(key, {"metadata": {"name": f"p{i}"}, "spec": {"n": 1}})
        say("U", o["metadata"]["resourceVersion"], key)
        if i % 3 == 0:
            o = store.delete(key)
            say("D", o["metadata"]["resourceVersion"], key)
        i += 1


def volatile(store: SqliteStore, key: str) -> None:
    o = store.create(key, {"metadata": {"name": "lease"}, "spec": {"renew": 0}}, durable=False)
    n = 0
    while True:
        n += 1
        o = store.update(key, {"metadata": {"name": "lease"}, "spec": {"renew": n}}, durable=False)
        say("V", o["metadata"]["resourceVersion"], key)


def main() -> None:
    db, tag = Path(sys.argv[1]), sys.argv[2]
    # A small reservation block so the run crosses several reservations.
    store = SqliteStore(db, reserve_chunk=200)
    threads = [threading.Thread(target=durable, args=(store, f"/pods/{tag}-{n}"), daemon=True)
               for n in range(4)]
    threads.append(threading.Thread(target=volatile, args=(store, f"/leases/{tag}"), daemon=True))
    for t in threads:
        t.start()
    say("READY", store.revision(), "-")
    threading.Event().wait()


if __name__ == "__main__":
    main()

"""An in-memory, etcd-like store: one global revision that every write moves by one, the
history of every key since the last compaction (so a list can be served at an exact older
revision and a `continue` token stays consistent), and the event log watches read from.
Compaction forgets history up to a revision, as etcd's does; a watch or an exact list from
before it then answers 410 Expired."""
import bisect
import copy
import threading
from dataclasses import dataclass


class Expired(Exception):
    """The requested revision has been compacted."""

    def __init__(self, requested, compacted):
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass
class Event:
    rev: int
    type: str  # ADDED, MODIFIED, DELETED
    skey: str  # storage key of the resource (group/plural)
    namespace: str
    name: str
    obj: dict
    prev: dict  # the object before (None for ADDED)


class Store:
    def __init__(self, max_events=200_000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rev = 1
        self.compacted = 0
        self.objects = {}  # skey -> {(ns, name): obj}
        self.history = {}  # skey -> {(ns, name): [(rev, obj or None)]}
        self.events = []  # Event, ordered by rev
        self.max_events = max_events
        self.generation = 0  # bumped when watches must end (drop-watches, shutdown)
        self.stopping = False

    # -- reads ---------------------------------------------------------------------------------

    def get(self, skey, ns, name):
        with self.lock:
            obj = self.objects.get(skey, {}).get((ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def snapshot(self, skey, ns=None, at=None):
        """Objects of one resource (in one namespace, or all) at revision `at` (default now),
        sorted by (namespace, name); returns (revision, [objects])."""
        with self.lock:
            if at is None or at == self.rev:
                items = [o for (n, _), o in self.objects.get(skey, {}).items() if ns is None or n == ns]
                return self.rev, [copy.deepcopy(o) for o in sorted(items, key=_key)]
            if at < self.compacted:
                raise Expired(at, self.compacted)
            out = []
            for (n, _), versions in self.history.get(skey, {}).items():
                if ns is not None and n != ns:
                    continue
                i = bisect.bisect_right(versions, at, key=lambda v: v[0])
                if i and versions[i - 1][1] is not None:
                    out.append(copy.deepcopy(versions[i - 1][1]))
            return at, sorted(out, key=_key)

    def events_after(self, rev):
        """Events with revision > rev (raises Expired if some were compacted away)."""
        if rev < self.compacted:
            raise Expired(rev, self.compacted)
        i = bisect.bisect_right(self.events, rev, key=lambda e: e.rev)
        return self.events[i:]

    # -- writes (callers hold self.lock for read-modify-write sequences) -------------------------

    def write(self, skey, ns, name, obj, etype):
        """Stores obj (or deletes when etype is DELETED) at a new revision; returns the stored
        copy with metadata.resourceVersion set."""
        with self.lock:
            self.rev += 1
            rev = self.rev
            bucket = self.objects.setdefault(skey, {})
            prev = bucket.get((ns, name))
            stored = copy.deepcopy(obj)
            stored.setdefault("metadata", {})["resourceVersion"] = str(rev)
            if etype == "DELETED":
                bucket.pop((ns, name), None)
                self.history.setdefault(skey, {}).setdefault((ns, name), []).append((rev, None))
            else:
                bucket[(ns, name)] = stored
                self.history.setdefault(skey, {}).setdefault((ns, name), []).append((rev, stored))
            self.events.append(Event(rev, etype, skey, ns, name, stored, prev))
            if len(self.events) > self.max_events:
                self.compact(self.events[len(self.events) - self.max_events].rev - 1)
            self.changed.notify_all()
            return copy.deepcopy(stored)

    def advance(self):
        """Moves the revision without a write to a watched resource (in a real cluster, writes
        to other resources do this all the time)."""
        with self.lock:
            self.rev += 1
            self.changed.notify_all()
            return self.rev

    def compact(self, rev=None):
        with self.lock:
            rev = self.rev if rev is None else min(rev, self.rev)
            if rev <= self.compacted:
                return self.compacted
            self.compacted = rev
            for keys in self.history.values():
                for key in list(keys):
                    versions = keys[key]
                    i = bisect.bisect_right(versions, rev, key=lambda v: v[0])
                    kept = versions[max(i - 1, 0):] if i else versions
                    if kept and kept[0][0] <= rev and kept[0][1] is None:
                        kept = kept[1:]
                    if kept:
                        keys[key] = kept
                    else:
                        del keys[key]
            i = bisect.bisect_right(self.events, rev, key=lambda e: e.rev)
            del self.events[:i]
            self.changed.notify_all()
            return rev

    def end_watches(self):
        with self.lock:
            self.generation += 1
            self.changed.notify_all()

    def stop(self):
        with self.lock:
            self.stopping = True
            self.generation += 1
            self.changed.notify_all()


def _key(obj):
    m = obj.get("metadata") or {}
    return (m.get("namespace") or "", m.get("name") or "")

"""The object store: etcd's part. One resourceVersion counter for all objects, and a log of
changes that watches (and, in phase 2, controller loops) read from a resourceVersion on."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Key = tuple[str, str, str | None, str]  # (group, plural, namespace, name)


@dataclass(frozen=True)
class Change:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    object: dict[str, Any]


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[Key, dict[str, Any]] = {}
        self.log: list[Change] = []
        self._version = 0

    @property
    def resource_version(self) -> int:
        return self._version

    def get(self, key: Key) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, group: str, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (g, p, ns, _), obj in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                if g == group and p == plural and (namespace is None or ns == namespace)
            ]

    def _record(self, kind: str, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.log.append(Change(self._version, kind, key, copy.deepcopy(obj)))
        self.changed.notify_all()
        return copy.deepcopy(obj)

    def create(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            stored = copy.deepcopy(obj)
            meta = stored["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.objects[key] = stored
            return self._record("ADDED", key, stored)

    def put(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new state of an existing object (the caller checked preconditions under `lock`)."""
        with self.lock:
            stored = copy.deepcopy(obj)
            self.objects[key] = stored
            return self._record("MODIFIED", key, stored)

    def delete(self, key: Key) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.pop(key)
            return self._record("DELETED", key, obj)

    def changes_since(self, resource_version: int) -> list[Change]:
        with self.lock:
            return [c for c in self.log if c.resource_version > resource_version]

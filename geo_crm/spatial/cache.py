"""A tiny thread-safe in-process LRU cache with a time-to-live, for aggregates and tiles.

Keys must include everything the value depends on: the Scope's `cache_key`, the filters
and the parameters. Values are stale for at most `ttl_s` seconds after a data change.

`get_or_compute` is single-flight: when many requests ask for the same missing key at
once (a dashboard of users opening the density map), one computes it and the others
wait for that result instead of each running the same heavy aggregate.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any, Callable


class TTLCache:
    def __init__(self, maxsize: int = 256, ttl_s: float = 120.0):
        self.maxsize, self.ttl_s = maxsize, ttl_s
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[Any, threading.Lock] = {}
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] < time.monotonic():
                if item is not None:
                    del self._data[key]
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_compute(self, key, compute: Callable[[], Any]):
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            flight = self._inflight.setdefault(key, threading.Lock())
        with flight:   # one computation per key; latecomers wait here, then find it cached
            try:
                with self._lock:
                    item = self._data.get(key)
                    if item is not None and item[0] >= time.monotonic():
                        self._data.move_to_end(key)
                        return item[1]
                value = compute()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    if self._inflight.get(key) is flight:
                        del self._inflight[key]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def filter_key(f) -> str:
    """A stable string of a CustomerFilter (or None) for cache keys."""
    if f is None:
        return "-"
    return json.dumps(f.model_dump(exclude_none=True), sort_keys=True, default=str)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'

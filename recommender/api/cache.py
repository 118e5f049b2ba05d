"""A small LRU of response bodies for the GET list routes.

Sites ask for the same popular articles over and over; a body built once per
model version and request is served again without touching the model. Keys
carry the model version, so a reload never serves an old model's answer.
Each worker has its own cache; size 0 turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ResponseCache:
    """Least-recently-used map of request keys to response bodies."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The stored body for ``key`` (marked as recently used), or None."""
        body = self._items.get(key)
        if body is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Store a body, evicting the least recently used beyond the size."""
        if self.max_entries <= 0:
            return
        self._items[key] = body
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

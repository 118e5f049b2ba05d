"""A small LRU of response bodies for the GET list routes, bounded in entries and bytes.

Sites ask for the same popular articles over and over; a body built once per
model version and request is served again without touching the model. Keys
carry the model version, so a reload never serves an old model's answer, and
the parsed request (never the raw query string), so spelling variants share
one entry. Each worker has its own cache; a size of 0 turns it off.
"""

from __future__ import annotations

from collections import OrderedDict

# What one entry costs beyond its key and body: two bytes objects and the map's slot.
ENTRY_OVERHEAD = 160


class ResponseCache:
    """Least-recently-used map of request keys to response bodies."""

    def __init__(self, max_entries: int, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> bytes | None:
        """The stored body for ``key`` (marked as recently used), or None."""
        body = self._items.get(key)
        if body is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return body

    def put(self, key: bytes, body: bytes) -> None:
        """Store a body, evicting the least recently used beyond the size; a body larger than the cache is not kept."""
        cost = _cost(key, body)
        if self.max_entries <= 0 or cost > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= _cost(key, old)
        self._items[key] = body
        self.bytes += cost
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            evicted_key, evicted = self._items.popitem(last=False)
            self.bytes -= _cost(evicted_key, evicted)

    def __len__(self) -> int:
        return len(self._items)


def _cost(key: bytes, body: bytes) -> int:
    return len(key) + len(body) + ENTRY_OVERHEAD

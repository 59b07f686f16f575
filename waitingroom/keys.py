"""Redis key names for one event.

Every key carries the hash tag `{<event_id>}` so that all keys of an event live in one
Redis Cluster slot and each Lua script touches a single slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tickets and event ids end up inside key names: forbid braces (they would change the hash
# tag) and anything else unexpected.
_SAFE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A deployment's key prefix (a cluster has only db 0): no braces, or the hash tag would move.
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")


def is_safe_id(value: str) -> bool:
    return bool(_SAFE.match(value))


@dataclass(frozen=True)
class RoomKeys:
    event_id: str
    prefix: str = ""  # REDIS_KEY_PREFIX: isolates deployments sharing one Redis (Cluster)

    def __post_init__(self) -> None:
        if not is_safe_id(self.event_id) or ":" in self.event_id:
            raise ValueError(f"unsafe event id for a Redis key: {self.event_id!r}")
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"unsafe Redis key prefix: {self.prefix!r}")

    def _k(self, suffix: str) -> str:
        return f"{self.prefix}wr:{{{self.event_id}}}:{suffix}"

    @property
    def seq(self) -> str:  # INCR arrival counter
        return self._k("seq")

    @property
    def queue(self) -> str:  # ZSET user -> arrival score (FIFO)
        return self._k("queue")

    @property
    def pre(self) -> str:  # ZSET user -> arrival seq, joiners before opening
        return self._k("pre")

    @property
    def opened(self) -> str:  # STRING set once when the pre-queue was shuffled
        return self._k("opened")

    @property
    def active(self) -> str:  # ZSET user -> admission expiry (epoch ms)
        return self._k("active")

    @property
    def users(self) -> str:  # HASH user -> ticket
        return self._k("users")

    @property
    def tickets(self) -> str:  # HASH ticket -> user
        return self._k("tickets")

    @property
    def joined(self) -> str:  # HASH user -> "join_ms|position|rate" (for the ETA error)
        return self._k("joined")

    @property
    def tick(self) -> str:  # STRING last admitted tick second
        return self._k("tick")

    @property
    def rate(self) -> str:  # HASH ewma -> measured admissions per second
        return self._k("rate")

    @property
    def paused(self) -> str:  # STRING present while paused (kept by reset, like the DB flag)
        return self._k("paused")

    @property
    def qtail(self) -> str:  # STRING last queue score handed out or reserved (contiguous)
        return self._k("qtail")

    @property
    def gone(self) -> str:  # ZSET queue scores of buyers who left while waiting (>= head)
        return self._k("gone")

    @property
    def gone_version(self) -> str:  # STRING bumped whenever `gone` gains an entry
        return self._k("gver")

    @property
    def opening(self) -> str:  # HASH base/end/moved while the pre-queue moves in chunks
        return self._k("opening")

    @property
    def epoch(self) -> str:  # STRING random id of this queue's lifetime (reset makes a new one)
        return self._k("epoch")

    def poll_limit(self, ticket: str) -> str:  # counter with a 1 s expiry
        return self._k(f"rl:{ticket}")

    def all_static(self) -> list[str]:
        return [
            self.seq,
            self.queue,
            self.pre,
            self.opened,
            self.active,
            self.users,
            self.tickets,
            self.joined,
            self.tick,
            self.rate,
            self.qtail,
            self.gone,
            self.gone_version,
            self.opening,
            self.epoch,
        ]

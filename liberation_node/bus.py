"""The in-process event bus (DESIGN §5): the seed's events, for the status page,
the WebSocket stream, logs and metrics.

Topics are the seed's: ``resource.distributed``, ``truth.spread``,
``mesh.node.connected``, ``system.health.check``, ``user.action`` (plus
``mesh.node.disconnected`` and ``mesh.topology``: node.info or node.links records
changed). Each subscriber has a bounded queue; a slow one
loses its oldest events (counted in `dropped`), never slows the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

TOPICS = ("resource.distributed", "truth.spread", "mesh.node.connected",
          "mesh.node.disconnected", "mesh.topology", "system.health.check", "user.action")
QUEUE_SIZE = 256


class EventBus:
    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[dict[str, Any]]] = []
        self.published = 0
        self.dropped = 0
        self.last: dict[str, dict[str, Any]] = {}  # last event per topic, for status

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        event = {"type": topic, **data}
        self.published += 1
        self.last[topic] = event
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()  # drop the oldest for this slow subscriber
                self.dropped += 1
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

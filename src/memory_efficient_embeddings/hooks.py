"""Project hooks."""

from __future__ import annotations

import logging
import time
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline.node import Node

from memory_efficient_embeddings.modeling.resources import current_rss_bytes

logger = logging.getLogger(__name__)


class NodeTimingHooks:
    """Log each node's wall time and the process's resident memory after it."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        rss = current_rss_bytes()
        logger.info(
            "Node %s took %.1f s (RSS %s)",
            node.name,
            seconds,
            f"{rss / 2**20:,.0f} MiB" if rss is not None else "n/a",
        )

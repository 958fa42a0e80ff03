"""The Ray backend of evals: runs go to async actors on a Ray cluster, each serving many runs at once.

Layer 7 (faces). ``ray.init(address=...)`` connects to a cluster (or, with no address and none running,
starts a local one and stops it afterwards). Each actor builds the agent once from the picklable factory
and runs tasks concurrently on its event loop (an agent serves many concurrent runs); the caller keeps
at most ``concurrency`` runs in flight and scores answers itself, so results match the local backend.
Needs the ``ray`` extra.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

__all__ = ["run_on_ray", "EvalActor"]


class EvalActor:
    """One Ray actor: an agent built from ``factory`` and the runs given to it."""

    def __init__(self, factory: Callable[[], Any], store: Any = None):
        from .runner import with_store

        self.agent = with_store(factory(), store)

    async def run(self, task: dict[str, Any]) -> dict[str, Any]:
        from .runner import EvalTask, run_task

        return await run_task(self.agent, EvalTask(**task))


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError("backend='ray' needs Ray: pip install 'codeloop[ray]'.") from e
    return ray


async def run_on_ray(
    factory: Callable[[], Any],
    tasks: list[Any],
    landed: Callable[[Any, dict[str, Any]], None],
    concurrency: int,
    address: str | None,
    actors: int | None,
    store: Any = None,
) -> None:
    ray = _require_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        started = True
    handles: list[Any] = []
    try:
        if not tasks:
            return
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = max(1, min(actors, len(tasks), concurrency))
        per_actor = math.ceil(concurrency / actors)
        # Agent runs wait on models and tools, not on the CPU: an actor takes a fraction of a CPU and runs
        # many tasks on its event loop.
        remote = ray.remote(EvalActor).options(num_cpus=0.5, max_concurrency=max(per_actor, 1))
        handles = [remote.remote(factory, store) for _ in range(actors)]
        limit = asyncio.Semaphore(concurrency)

        async def one(index: int, task: Any) -> None:
            async with limit:
                outcome = await handles[index % len(handles)].run.remote(task.to_dict())
            landed(task, outcome)

        await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks)))
    finally:
        for handle in handles:
            ray.kill(handle)
        if started:
            ray.shutdown()

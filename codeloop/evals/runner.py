"""Run an agent over a set of tasks, concurrently, locally or on a Ray cluster, and score the answers.

Layer 7 (faces). ``run_eval(tasks, agent, scorer=..., concurrency=..., backend="local"|"ray")`` runs every
task (one agent serves all concurrent runs: it is configuration), reads each run's typed events for its
answer, state, steps, tokens, cost and time, scores the answer on the calling side (so both backends score
alike), and returns an :class:`~codeloop.evals.report.EvalReport`. With ``output_dir`` every finished
run is appended to ``results.jsonl`` as it lands; running again with the same directory skips the tasks
already there (resume after a crash or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..events import RunFailed, RunFinished
from .report import EvalRecord, EvalReport
from .scorers import get_scorer

__all__ = ["EvalTask", "load_tasks", "run_eval", "arun_eval", "run_task"]

_TASK_KEYS = ("task", "question", "prompt", "input")
_ANSWER_KEYS = ("answer", "expected", "true_answer", "target", "output")


@dataclass
class EvalTask:
    """One task: the prompt, the expected answer, and optional per-task run options."""

    id: str
    task: str
    expected: Any = None
    additional_args: dict[str, Any] | None = None
    max_steps: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], index: int = 0) -> EvalTask:
        text = next((data[k] for k in _TASK_KEYS if k in data), None)
        if not isinstance(text, str):
            raise ValueError(
                f"Task #{index + 1} has no text: give it one of the keys {', '.join(_TASK_KEYS)} (a string)."
            )
        expected = next((data[k] for k in _ANSWER_KEYS if k in data), None)
        known = {"id", "additional_args", "max_steps", *_TASK_KEYS, *_ANSWER_KEYS}
        return cls(
            id=str(data.get("id", index + 1)),
            task=text,
            expected=expected,
            additional_args=data.get("additional_args"),
            max_steps=data.get("max_steps"),
            metadata={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_tasks(source: str | Path | Iterable[Any]) -> list[EvalTask]:
    """Tasks from a JSONL file (one object a line) or from dicts / strings / EvalTasks."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"Task file {str(path)!r} not found (expected JSONL: one task object a line)."
            )
        items: list[Any] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: not a JSON object ({e.msg}).") from None
    else:
        items = list(source)
    tasks = []
    for index, item in enumerate(items):
        if isinstance(item, EvalTask):
            tasks.append(item)
        elif isinstance(item, str):
            tasks.append(EvalTask(id=str(index + 1), task=item))
        elif isinstance(item, dict):
            tasks.append(EvalTask.from_dict(item, index))
        else:
            raise TypeError(f"Task #{index + 1} is a {type(item).__name__}; give dicts, strings or EvalTask.")
    ids = [t.id for t in tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"Task ids must be unique; repeated: {duplicates[:10]}")
    return tasks


async def run_task(agent: Any, task: EvalTask) -> dict[str, Any]:
    """Run one task; returns its outcome as a plain dict (what crosses from a Ray worker), with the
    run's id (the id to load or resume it by when the agent has a run store)."""
    from ..memory import jsonable

    kwargs: dict[str, Any] = {}
    if task.additional_args:
        kwargs["additional_args"] = task.additional_args
    if task.max_steps:
        kwargs["max_steps"] = task.max_steps
    outcome: dict[str, Any] = {"id": task.id, "state": "failed", "output": None, "steps": 0}
    start = time.perf_counter()
    end: Any = None
    try:
        async for event in agent.astream(task.task, **kwargs):
            if type(event) is RunFinished or type(event) is RunFailed:
                end = event
    except Exception as e:
        outcome.update(error_type=type(e).__name__, error=str(e)[:2000])
    if type(end) is RunFinished:
        outcome.update(state=end.state, output=jsonable(end.output))
    elif type(end) is RunFailed and "error_type" not in outcome:
        outcome.update(error_type=end.error_type, error=end.error[:2000])
    if end is not None:
        outcome["run_id"] = end.run_id or None
        usage = end.usage
        outcome["steps"] = end.steps
        if usage is not None:
            outcome.update(
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=usage.cost
            )
    outcome["duration"] = time.perf_counter() - start
    return outcome


def with_store(agent: Any, store: Any) -> Any:
    """``agent``, or with ``store`` given a copy of it whose runs go to that store (path, DSN or
    RunStore; codeloop.runs): the agent's approval rule and handler stay."""
    if store is None:
        return agent
    if not hasattr(agent, "aresume"):
        raise TypeError(
            "store= needs an agent whose runs can be stored (codeloop's run store); this agent has no "
            "aresume(). Use output_dir= to keep every result and resume."
        )
    from ..runs.resume import configure_agent

    clone = copy.copy(agent)
    # The run bookkeeping is per instance: the copy's runs are its own.
    clone._last_run = None
    clone._active_runs = weakref.WeakSet()
    configure_agent(clone, store, agent.approval, agent.approval_handler)
    return clone


def _score(scorer: Callable[..., Any], task: EvalTask, outcome: dict[str, Any]) -> EvalRecord:
    error = outcome.get("error")
    score = 0.0
    if outcome["state"] in ("success", "max_steps_error") and error is None:
        try:
            value = scorer(outcome["output"], task.expected, task.to_dict())
            score = float(value)
        except Exception as e:  # a broken scorer is a failure of this record, not of the eval
            outcome.update(error_type="ScorerError", error=f"{type(e).__name__}: {e}")
    return EvalRecord.from_outcome(task, outcome, score)


def _resolve_agent(agent: Any) -> tuple[Any, Callable[[], Any] | None]:
    """(agent instance or None, factory or None). A callable that is not an agent is a factory."""
    if hasattr(agent, "astream"):
        return agent, None
    if callable(agent):
        return None, agent
    raise TypeError("agent= must be an agent (CodeAgent, ToolCallingAgent...) or a function that builds one.")


async def arun_eval(
    tasks: str | Path | Iterable[Any],
    agent: Any,
    *,
    scorer: str | Callable[..., Any] = "exact",
    concurrency: int = 8,
    backend: str = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
    output_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = False,
    store: Any = None,
) -> EvalReport:
    """Async ``run_eval``; see there."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}.")
    if backend not in ("local", "ray"):
        raise ValueError(f"Unknown backend {backend!r}: use 'local' or 'ray'.")
    score_fn = get_scorer(scorer)
    task_list = load_tasks(tasks)
    instance, factory = _resolve_agent(agent)
    out_dir = Path(output_dir) if output_dir is not None else None
    records: dict[str, EvalRecord] = {}
    results_file = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        results_path = out_dir / "results.jsonl"
        if resume and results_path.exists():
            records = {r.id: r for r in EvalRecord.read_jsonl(results_path)}
        elif results_path.exists():
            results_path.unlink()
        results_file = results_path.open("a", encoding="utf-8")
    todo = [t for t in task_list if t.id not in records]
    bar = _Progress(len(task_list), len(task_list) - len(todo)) if progress else None
    wall = time.perf_counter()

    def landed(task: EvalTask, outcome: dict[str, Any]) -> None:
        record = _score(score_fn, task, outcome)
        records[task.id] = record
        if results_file is not None:
            results_file.write(json.dumps(record.to_dict(), default=repr) + "\n")
            results_file.flush()
        if bar is not None:
            bar.advance(record)

    try:
        if backend == "ray":
            from .ray_backend import run_on_ray

            if factory is None:
                raise TypeError(
                    "backend='ray' builds the agent on each Ray worker: pass agent= as a picklable function "
                    "that returns the agent (e.g. a module-level function, or codeloop.cli.AgentOptions)."
                )
            await run_on_ray(factory, todo, landed, concurrency, ray_address, ray_actors, store)
        else:
            if instance is None:
                instance = factory()  # type: ignore[misc]
            instance = with_store(instance, store)
            limit = asyncio.Semaphore(concurrency)

            async def one(task: EvalTask) -> None:
                async with limit:
                    outcome = await run_task(instance, task)
                landed(task, outcome)

            await asyncio.gather(*(one(t) for t in todo))
    finally:
        if results_file is not None:
            results_file.close()
        if bar is not None:
            bar.stop()
    ordered = [records[t.id] for t in task_list if t.id in records]
    report = EvalReport(ordered, wall_time=time.perf_counter() - wall, backend=backend)
    if out_dir is not None:
        report.save(out_dir)
    return report


def run_eval(tasks: str | Path | Iterable[Any], agent: Any, **kwargs: Any) -> EvalReport:
    """Run ``agent`` on every task and score the answers; returns an EvalReport.

    Args:
        tasks: a JSONL file path (objects with ``task``/``question`` and ``answer``/``expected``, optional
            ``id``, ``additional_args``, ``max_steps``) or a list of such dicts, strings or EvalTasks.
        agent: an agent, or a function returning one (required for ``backend="ray"``: it runs on workers).
        scorer: "exact", "contains", "numeric", "python:module.function", or a callable
            ``(output, expected, task) -> float | bool``.
        concurrency: most runs in flight at once.
        backend: "local" (asyncio in this process) or "ray" (``ray.init(address=ray_address)``; runs go to
            ``ray_actors`` async actors, default one per CPU of the cluster).
        output_dir: write results.jsonl (as runs land), summary.json and chart.png (with matplotlib) there;
            with ``resume`` (default) tasks already in results.jsonl are not run again.
        progress: show a progress bar on stderr.
        store: a run store (path, DSN or RunStore; codeloop.runs) for every run: the agent (or each one the
            factory builds) runs with ``store=`` set, and each record's ``run_id`` loads the stored run.
    """
    from .._sync import run_sync

    return run_sync(arun_eval(tasks, agent, **kwargs))


class _Progress:
    """A rich progress bar on stderr: done / total, accuracy so far, failures."""

    def __init__(self, total: int, done: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._right = self._failed = self._seen = 0
        self._task = self._progress.add_task("eval", total=total, completed=done, summary="")
        self._progress.start()

    def advance(self, record: EvalRecord) -> None:
        self._seen += 1
        self._right += record.score >= 1.0
        self._failed += record.failure not in (None, "wrong_answer")
        summary = f"score {self._right / self._seen:.0%} · failed {self._failed}"
        self._progress.update(self._task, advance=1, summary=summary)

    def stop(self) -> None:
        self._progress.stop()

"""Evals and batch runs: an agent over many tasks, scored, locally or on a Ray cluster.

Layer 7 (faces). ``run_eval(tasks, agent, scorer="exact", concurrency=8, backend="local")`` (or
``codeloop eval tasks.jsonl ...``) returns an :class:`EvalReport` with a summary table and a PNG chart.
Ray needs the ``ray`` extra, the chart the ``evals`` extra (matplotlib); nothing heavy is imported here.
"""

from __future__ import annotations

from .report import EvalRecord, EvalReport
from .runner import EvalTask, arun_eval, load_tasks, run_eval, run_task
from .scorers import contains, exact, get_scorer, numeric

__all__ = [
    "run_eval",
    "arun_eval",
    "run_task",
    "load_tasks",
    "EvalTask",
    "EvalRecord",
    "EvalReport",
    "get_scorer",
    "exact",
    "contains",
    "numeric",
]

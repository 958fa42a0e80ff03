"""What an eval produced: one record per task, a summary, a table and a PNG chart.

Layer 7 (faces). The summary gives the mean score, steps, tokens, cost, time, and the failures by kind:
``wrong_answer`` (the run answered, the scorer said no), ``max_steps`` (no answer within the step limit),
``cancelled``, or the error type that ended the run (``AgentGenerationError``, ``ScorerError``...).
The chart needs matplotlib (the ``evals`` extra).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["EvalRecord", "EvalReport"]


@dataclass
class EvalRecord:
    id: str
    task: str
    expected: Any
    output: Any
    score: float
    state: str  # success, max_steps_error, cancelled, failed
    failure: str | None
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    duration: float = 0.0
    error: str | None = None
    run_id: str | None = None

    @classmethod
    def from_outcome(cls, task: Any, outcome: dict[str, Any], score: float) -> EvalRecord:
        state = outcome["state"]
        error_type = outcome.get("error_type")
        if error_type:
            failure: str | None = error_type
        elif state == "max_steps_error":
            failure = "max_steps"
        elif state != "success":
            failure = state
        else:
            failure = None if score >= 1.0 else "wrong_answer"
        return cls(
            id=task.id,
            task=task.task,
            expected=task.expected,
            output=outcome.get("output"),
            score=score,
            state=state,
            failure=failure,
            steps=outcome.get("steps") or 0,
            input_tokens=outcome.get("input_tokens") or 0,
            output_tokens=outcome.get("output_tokens") or 0,
            cost=outcome.get("cost"),
            run_id=outcome.get("run_id"),
            duration=outcome.get("duration") or 0.0,
            error=outcome.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read_jsonl(cls, path: Path) -> list[EvalRecord]:
        names = {f.name for f in fields(cls)}
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash: that task runs again
                continue
            records.append(cls(**{k: v for k, v in data.items() if k in names}))
        return records

    # The outcome "comparable" between backends: everything but timing.
    def key(self) -> tuple[Any, ...]:
        return (
            self.id,
            repr(self.output),
            self.score,
            self.state,
            self.failure,
            self.steps,
            self.input_tokens,
            self.output_tokens,
        )


class EvalReport:
    """Records in task order, with ``summary()``, ``table()``, ``save_chart()`` and ``save()``."""

    def __init__(self, records: list[EvalRecord], *, wall_time: float = 0.0, backend: str = "local"):
        self.records = records
        self.wall_time = wall_time
        self.backend = backend

    @property
    def score(self) -> float:
        return statistics.fmean(r.score for r in self.records) if self.records else 0.0

    def failures(self) -> dict[str, int]:
        return dict(Counter(r.failure for r in self.records if r.failure is not None).most_common())

    def summary(self) -> dict[str, Any]:
        records = self.records
        costs = [r.cost for r in records if r.cost is not None]
        return {
            "tasks": len(records),
            "score": self.score,
            "correct": sum(r.score >= 1.0 for r in records),
            "mean_steps": statistics.fmean(r.steps for r in records) if records else 0.0,
            "input_tokens": sum(r.input_tokens for r in records),
            "output_tokens": sum(r.output_tokens for r in records),
            "cost": sum(costs) if costs else None,
            "mean_time": statistics.fmean(r.duration for r in records) if records else 0.0,
            "wall_time": self.wall_time,
            "failures": self.failures(),
            "backend": self.backend,
        }

    def table(self) -> Any:
        """A rich Table of the summary (print it with ``rich.print``)."""
        from rich.table import Table

        s = self.summary()
        table = Table(title=f"eval: {s['tasks']} tasks ({self.backend})", show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_row("score", f"{s['score']:.3f} ({s['correct']}/{s['tasks']} right)")
        table.add_row("steps (mean)", f"{s['mean_steps']:.2f}")
        table.add_row("tokens in / out", f"{s['input_tokens']:,} / {s['output_tokens']:,}")
        table.add_row("cost", "n/a" if s["cost"] is None else f"${s['cost']:.4f}")
        table.add_row("time per task (mean)", f"{s['mean_time']:.2f} s")
        table.add_row("wall time", f"{s['wall_time']:.2f} s")
        failures = s["failures"]
        table.add_row("failures", ", ".join(f"{k}: {v}" for k, v in failures.items()) if failures else "none")
        return table

    def save_chart(self, path: str | Path) -> Path:
        """A PNG: score per task and failures by kind. Needs matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("The eval chart needs matplotlib: pip install 'codeloop[evals]'.") from e
        path = Path(path)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        s = self.summary()
        counts = Counter("right" if r.score >= 1.0 else (r.failure or "partial") for r in self.records)
        labels = list(counts)
        left.bar(
            labels, [counts[k] for k in labels], color=["#3a7" if k == "right" else "#c55" for k in labels]
        )
        left.set_title(f"score {s['score']:.2f} over {s['tasks']} tasks")
        left.set_ylabel("tasks")
        steps = [r.steps for r in self.records]
        right.hist(steps, bins=range(0, max(steps, default=0) + 2), color="#58a", align="left")
        right.set_title(f"steps per task (mean {s['mean_steps']:.1f})")
        right.set_xlabel("steps")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=80)
        plt.close(fig)
        return path

    def save(self, directory: str | Path) -> None:
        """summary.json, and chart.png when matplotlib is installed."""
        directory = Path(directory)
        (directory / "summary.json").write_text(json.dumps(self.summary(), indent=2), encoding="utf-8")
        try:
            self.save_chart(directory / "chart.png")
        except ImportError:
            pass  # the table and JSON still hold everything; the CLI says how to get the chart

    def __repr__(self) -> str:
        return f"EvalReport(tasks={len(self.records)}, score={self.score:.3f}, failures={self.failures()})"

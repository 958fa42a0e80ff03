"""``codeloop eval tasks.jsonl --scorer ... --concurrency N [--backend ray]``: the eval command.

Layer 7 (faces). Takes the model, tool and executor options of ``codeloop run``; prints a progress bar
and the summary table on stderr, writes results.jsonl, summary.json and chart.png to ``--output``
(resuming from results.jsonl there), and exits 0 when every task scored 1, 1 otherwise, 2 on bad options.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["add_eval_parser", "AgentOptions"]


@dataclass(frozen=True)
class AgentOptions:
    """The agent options of the CLI as a picklable factory: calling it builds the agent (on a Ray worker
    too)."""

    options: tuple[tuple[str, Any], ...]

    def __call__(self) -> Any:
        from ..cli import build_agent

        return build_agent(argparse.Namespace(**dict(self.options)))


def add_eval_parser(sub: Any) -> None:
    from ..cli import add_agent_options

    parser = sub.add_parser(
        "eval",
        help="run an agent over a JSONL file of tasks and score the answers",
        description="Run an agent over tasks (JSONL: task/question, answer/expected, optional id) and score it.",
    )
    parser.add_argument("tasks", help="JSONL file, one task object a line")
    add_agent_options(parser)
    parser.add_argument(
        "--scorer",
        default="exact",
        help="exact (default), contains, numeric, or python:module.function(output, expected, task)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="runs in flight at once (default 8)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="local (default) or ray")
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS or local)"
    )
    parser.add_argument(
        "--output", default="eval-results", help="directory for results (default eval-results)"
    )
    parser.add_argument("--no-resume", action="store_true", help="run every task again even if results exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=eval_command)


def eval_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ConfigError, build_agent
    from ..errors import ModelConfigurationError
    from .runner import run_eval
    from .scorers import get_scorer

    console = Console(stderr=True, highlight=False)
    agent_keys = (
        "model_type",
        "model_id",
        "api_base",
        "api_key",
        "tools",
        "imports",
        "executor",
        "action_type",
        "max_steps",
        "planning_interval",
        "max_context_tokens",
        "max_cost",
    )
    factory = AgentOptions(tuple((k, getattr(args, k)) for k in agent_keys))
    try:
        if args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1.")
        get_scorer(args.scorer)
        agent: Any = build_agent(args) if args.backend == "local" else factory
        if args.backend == "ray":
            factory()  # a configuration error shows here, not on every worker
        report = run_eval(
            args.tasks,
            agent,
            scorer=args.scorer,
            concurrency=args.concurrency,
            backend=args.backend,
            ray_address=args.ray_address,
            output_dir=args.output,
            resume=not args.no_resume,
            progress=not args.no_progress,
        )
    except (ConfigError, ModelConfigurationError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"codeloop eval: {e}", file=sys.stderr)
        return EXIT_CONFIG
    console.print(report.table())
    console.print(
        f"results: {args.output}/results.jsonl, summary.json"
        + (
            ", chart.png"
            if (__import__("pathlib").Path(args.output) / "chart.png").exists()
            else " (pip install 'codeloop[evals]' for chart.png)"
        )
    )
    return EXIT_OK if report.summary()["correct"] == len(report.records) else EXIT_FAILED

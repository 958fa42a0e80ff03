"""The ``codeloop runs`` commands (list, show, resume, fork) and the run options of ``codeloop run``
(``--store``, ``--run-id``, ``--approve-tools``).

Layer 7 (faces). Kept apart from cli.py, which calls ``add_run_options``, ``add_runs_parser``,
``agent_run_kwargs`` and ``runs_command``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

__all__ = ["add_run_options", "add_runs_parser", "agent_run_kwargs", "runs_command", "prompt_approval"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_WAITING = 0, 1, 2, 3


def _default_store() -> str:
    return os.environ.get("CODELOOP_STORE", "runs.db")


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--store",
        default=None,
        help="keep the run in this store (SQLite file or postgresql:// DSN) so it can be resumed",
    )
    run.add_argument("--run-id", default=None, help="the id to store the run under (default: generated)")
    run.add_argument(
        "--approve-tools",
        nargs="*",
        default=[],
        help="tools whose calls need your approval: asked here, or with --store the run pauses",
    )


def add_runs_parser(sub: Any) -> None:
    """``codeloop runs ...``; resume and fork take the agent options of ``run`` (model, tools, executor)."""
    from .cli import add_agent_options

    runs = sub.add_parser("runs", help="list, show, resume or fork stored runs")
    runs.set_defaults(handler=runs_command)
    runs.add_argument("--store", default=None, help="SQLite file or postgresql:// DSN (default: runs.db)")
    rsub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    listing = rsub.add_parser("list", help="the stored runs, newest first")
    listing.add_argument("--state", default=None, help="only runs in this state (e.g. awaiting_approval)")
    listing.add_argument("--limit", type=int, default=50)
    show = rsub.add_parser("show", help="one run: state, answer, steps, pending approvals")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="everything stored, as JSON")
    resume = rsub.add_parser("resume", help="continue a stored run (after a crash or to answer approvals)")
    resume.add_argument("run_id")
    resume.add_argument("--approve", action="append", default=[], metavar="CALL_ID", help="approve this call")
    resume.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="CALL_ID[=REASON]",
        help="deny this call (with a reason)",
    )
    fork = rsub.add_parser("fork", help="a new run from the first K steps of a stored run")
    fork.add_argument("run_id")
    fork.add_argument("--at", type=int, required=True, metavar="K", help="keep action steps 1..K")
    fork.add_argument("--task", default=None, help="a new instruction for the fork")
    for target in (resume, fork):
        add_agent_options(target)
        target.add_argument("--quiet", action="store_true", help="print only the final answer")
        target.add_argument(
            "--approve-tools", nargs="*", default=[], help="tools whose calls need approval (the run pauses)"
        )


async def prompt_approval(request: Any) -> Any:
    """Ask on the terminal: y approves, anything else denies (the text is the reason)."""
    question = (
        f"Allow {request.tool_name}({json.dumps(request.arguments, default=repr)[:300]})? [y/N/reason] "
    )

    def ask() -> str:
        print(question, end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip()

    answer = await asyncio.to_thread(ask)
    if answer.lower() in ("y", "yes"):
        return True
    return answer if answer and answer.lower() not in ("n", "no") else False


def agent_run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Agent options from ``--store`` and ``--approve-tools``."""
    from .cli import _split

    kwargs: dict[str, Any] = {}
    store = getattr(args, "store", None)
    if store:
        kwargs["store"] = store
    tools = _split(getattr(args, "approve_tools", None) or [])
    if tools:
        kwargs["approval"] = set(tools)
        if not store:
            kwargs["approval_handler"] = prompt_approval
    return kwargs


def _open(args: argparse.Namespace) -> Any:
    from .runs import open_store

    return open_store(args.store or _default_store())


def _ago(ts: float) -> str:
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _list(args: argparse.Namespace) -> int:
    store = _open(args)
    runs = store.list_runs(state=args.state, limit=args.limit)
    if not runs:
        print("no stored runs", file=sys.stderr)
    for run in runs:
        task = " ".join(run.task.split())[:60]
        steps = run.data.get("step_number", "?")
        print(f"{run.run_id}\t{run.state}\t{steps} steps\t{_ago(run.updated)}\t{task}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    store = _open(args)
    run = store.get_run(args.run_id)
    if run is None:
        print(f"codeloop: no stored run {args.run_id!r} (see `codeloop runs list`)", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        data = {k: v for k, v in vars(run).items() if k != "calls"}
        data["calls"] = {k: vars(c) for k, c in run.calls.items()}
        print(json.dumps(data, indent=2, default=repr))
        return EXIT_OK
    print(
        f"run {run.run_id}: {run.state}"
        + (f" (fork of {run.parent_id} at step {run.fork_step})" if run.parent_id else "")
    )
    print(f"task: {run.task}")
    for step in run.steps:
        if "step_number" in step:
            what = (step.get("code_action") or str(step.get("tool_calls") or ""))[:200].replace("\n", "\\n")
            error = step.get("error")
            print(
                f"  step {step['step_number']}: {what}"
                + (f"  [error: {error.get('message', error)}]" if error else "")
            )
        elif "plan" in step:
            print("  plan")
    for pending in run.pending_approvals:
        print(
            f"waits for approval: {pending['call_id']} {pending['tool']}({json.dumps(pending['arguments'], default=repr)[:200]})"
            f" - {pending['reason']}"
        )
    if run.state in ("success", "max_steps_error"):
        print(f"answer: {run.output}")
    return EXIT_OK


def _answers(args: argparse.Namespace) -> dict[str, Any]:
    answers: dict[str, Any] = {call_id: True for call_id in args.approve}
    for item in args.deny:
        call_id, _, reason = item.partition("=")
        answers[call_id] = reason or False
    return answers


def _continue(args: argparse.Namespace) -> int:
    from .cli import build_agent

    args.store = args.store or _default_store()
    agent = build_agent(args)  # the same options as `codeloop run`, with this store
    if args.runs_command == "resume":
        result = agent.resume(args.run_id, approvals=_answers(args))
    else:
        result = agent.fork(args.run_id, at_step=args.at, task=args.task)
        print(f"forked run: {result.run_id}", file=sys.stderr)
    return report(result)


def report(result: Any) -> int:
    """Print a run's outcome; exit 0 on an answer, 3 when it waits for approval, else 1."""
    if result.state == "awaiting_approval":
        for pending in result.pending_approvals:
            print(
                f"waits for approval: {pending['call_id']} {pending['tool']}"
                f"({json.dumps(pending['arguments'], default=repr)[:200]}) - {pending['reason']}",
                file=sys.stderr,
            )
        print(
            f"answer with: codeloop runs resume {result.run_id} --approve CALL_ID (or --deny CALL_ID=reason)",
            file=sys.stderr,
        )
        return EXIT_WAITING
    if result.output is not None:
        print(result.output if isinstance(result.output, str) else repr(result.output), flush=True)
    return EXIT_OK if result.state == "success" else EXIT_FAILED


def runs_command(args: argparse.Namespace) -> int:
    from .cli import ConfigError
    from .errors import CodeloopError, ModelConfigurationError

    try:
        if args.runs_command == "list":
            return _list(args)
        if args.runs_command == "show":
            return _show(args)
        return _continue(args)
    except ModelConfigurationError as e:
        print(f"codeloop: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as e:
        print(f"codeloop: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except (KeyError, ValueError, TypeError) as e:
        print(f"codeloop: {e.args[0] if e.args else e}", file=sys.stderr)
        return EXIT_CONFIG
    except CodeloopError as e:
        print(f"codeloop: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED

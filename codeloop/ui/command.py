"""``codeloop ui [--agent PATH | options of codeloop run]``: serve the Gradio chat for an agent.

Layer 7 (faces). ``--agent`` names a directory holding ``agent.py``, a Python file, or ``module:attribute``;
the file or module defines ``agent`` (an agent) or ``make_agent()`` (a function returning one). Without
it, the agent is built from the same options as ``codeloop run``. Binds 127.0.0.1 unless ``--host``;
``--share`` asks Gradio for a public link (off by default).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_ui_parser", "load_agent"]


def add_ui_parser(sub: Any) -> None:
    from ..cli import add_agent_options

    parser = sub.add_parser(
        "ui",
        help="chat with an agent in the browser (Gradio)",
        description="Serve a Gradio chat for an agent on 127.0.0.1.",
    )
    parser.add_argument(
        "--agent",
        default=None,
        help="a directory with agent.py, a .py file, or module:attribute defining `agent` or `make_agent()`",
    )
    add_agent_options(parser)
    parser.add_argument("--stream", action="store_true", help="stream the model's replies into the chat")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)"
    )
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    parser.add_argument("--upload-folder", default=None, help="enable file uploads into this directory")
    parser.add_argument("--reset-memory", action="store_true", help="forget the conversation after each task")
    parser.set_defaults(handler=ui_command)


def load_agent(spec: str) -> Any:
    """The agent that ``--agent`` names (see the module docstring)."""
    path = Path(spec)
    if path.is_dir():
        path = path / "agent.py"
    if path.suffix == ".py":
        if not path.is_file():
            raise FileNotFoundError(f"--agent {spec}: {path} not found.")
        module_spec = importlib.util.spec_from_file_location(
            f"codeloop_ui_agent_{abs(hash(str(path)))}", path
        )
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))  # the file may import its neighbours
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        value: Any = getattr(module, "agent", None) or getattr(module, "make_agent", None)
        where = str(path)
    else:
        module_name, _, attr = spec.partition(":")
        value = getattr(importlib.import_module(module_name), attr or "agent", None)
        where = spec
    if value is not None and not hasattr(value, "astream") and callable(value):
        value = value()
    if value is None or not hasattr(value, "astream"):
        raise ValueError(
            f"--agent {where}: define `agent` (a CodeAgent or ToolCallingAgent) or `make_agent()`."
        )
    return value


def ui_command(args: argparse.Namespace) -> int:
    from ..cli import EXIT_CONFIG, EXIT_OK, ConfigError, build_agent
    from ..errors import ModelConfigurationError

    try:
        agent = load_agent(args.agent) if args.agent else build_agent(args)
        from .gradio_ui import GradioUI

        ui = GradioUI(agent, file_upload_folder=args.upload_folder, reset_agent_memory=args.reset_memory)
    except (ConfigError, ModelConfigurationError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"codeloop ui: {e}", file=sys.stderr)
        return EXIT_CONFIG
    ui.launch(share=args.share, server_name=args.host, server_port=args.port)
    return EXIT_OK

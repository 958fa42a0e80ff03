"""The browser face of codeloop: ``GradioUI(agent).launch()``, ``stream_to_gradio`` and ``launch_gradio_demo``.

Layer 7 (faces). Needs the ``ui`` extra (gradio); gradio is imported only when a UI is built.
"""

from __future__ import annotations

from .gradio_ui import GradioUI, astream_to_gradio, session_agent, stream_to_gradio
from .render import ChatRenderer
from .tool_demo import launch_gradio_demo, tool_demo

__all__ = [
    "GradioUI",
    "stream_to_gradio",
    "astream_to_gradio",
    "session_agent",
    "ChatRenderer",
    "launch_gradio_demo",
    "tool_demo",
]

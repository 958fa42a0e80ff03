"""``GradioUI`` and ``stream_to_gradio``: a chat with an agent in the browser, with smolagents' names.

Layer 7 (faces). The chat shows a run as it happens: the model's thoughts (streamed when the agent has
``stream_outputs=True``), code, execution logs, tool calls, plans, images and the final answer, with a
step / tokens / cost / time line after each step. Each browser session works on its own copy of the agent
(the agent is configuration; the copy holds that session's runs), so sessions never share memory or
runs, and the Stop button interrupts only that session's run. Files uploaded go to
``file_upload_folder`` and their paths are handed to the agent with the task. ``launch()`` binds
127.0.0.1 and opens no share link unless you pass ``share=True``; Gradio analytics are off.

Approval buttons (for agents with an approval policy) come with the run store; they are not here yet.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from .render import ChatRenderer, _gr

__all__ = ["GradioUI", "stream_to_gradio", "astream_to_gradio"]

_DEFAULT_FILE_TYPES = [".pdf", ".docx", ".txt", ".md", ".csv", ".json", ".png", ".jpg", ".jpeg"]


async def astream_to_gradio(
    agent: Any,
    task: str,
    task_images: list[Any] | None = None,
    reset_agent_memory: bool = False,
    additional_args: dict[str, Any] | None = None,
    max_steps: int | None = None,
    image_dir: str | Path | None = None,
) -> AsyncIterator[Any]:
    """Async ``stream_to_gradio``."""
    renderer = ChatRenderer(image_dir)
    async for event in agent.astream(
        task,
        reset=reset_agent_memory,
        images=task_images,
        additional_args=additional_args,
        max_steps=max_steps,
    ):
        for item in renderer.render(event):
            yield item


def stream_to_gradio(
    agent: Any,
    task: str,
    task_images: list[Any] | None = None,
    reset_agent_memory: bool = False,
    additional_args: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> Iterator[Any]:
    """Run ``agent`` on ``task`` and yield ``gr.ChatMessage`` items as the run goes (and ``str``: the
    model's reply so far, while it streams). As smolagents' ``stream_to_gradio``."""
    from .._sync import iterate_sync

    return iterate_sync(
        astream_to_gradio(agent, task, task_images, reset_agent_memory, additional_args, max_steps)
    )


def session_agent(agent: Any) -> Any:
    """A copy of ``agent`` for one browser session: same configuration (model, tools, prompts are shared,
    not copied), its own runs, memory and interrupt."""
    clone = copy.copy(agent)
    # The run bookkeeping is the only per-instance state of an agent (see MultiStepAgent).
    clone._last_run = None
    clone._active_runs = weakref.WeakSet()
    return clone


class GradioUI:
    """A Gradio chat for an agent (smolagents' ``GradioUI``).

    Args:
        agent: the agent; each browser session gets its own copy (see ``session_agent``).
        file_upload_folder: where uploaded files go; no upload button when None.
        reset_agent_memory: start every message with a fresh memory (default: the session's conversation
            continues).
    """

    def __init__(self, agent: Any, file_upload_folder: str | None = None, reset_agent_memory: bool = False):
        _gr()  # a clear error now, not at launch, when gradio is missing
        self.agent = agent
        self.file_upload_folder = Path(file_upload_folder) if file_upload_folder is not None else None
        if self.file_upload_folder is not None:
            self.file_upload_folder.mkdir(parents=True, exist_ok=True)
        self.reset_agent_memory = reset_agent_memory
        self.name = getattr(agent, "name", None) or "Agent interface"
        self.description = getattr(agent, "description", None)
        self.image_dir = Path(tempfile.mkdtemp(prefix="codeloop-ui-images-"))

    # ---- handlers ----
    async def interact_with_agent(self, prompt: str, messages: list[Any], session_state: dict[str, Any]):
        """Run the prompt in this session; yields the whole chat after each change."""
        gr = _gr()
        agent = session_state.get("agent")
        if agent is None:
            agent = session_state["agent"] = session_agent(self.agent)
        messages = list(messages or [])
        messages.append(gr.ChatMessage(role="user", content=prompt, metadata={"status": "done"}))
        yield messages
        streaming = False
        try:
            async for item in astream_to_gradio(
                agent, prompt, reset_agent_memory=self.reset_agent_memory, image_dir=self.image_dir
            ):
                if isinstance(item, str):
                    if streaming:
                        messages[-1].content = item
                    else:
                        messages.append(
                            gr.ChatMessage(role="assistant", content=item, metadata={"status": "pending"})
                        )
                        streaming = True
                else:
                    if streaming:  # the finished reply replaces its streamed draft
                        messages.pop()
                        streaming = False
                    messages.append(item)
                yield messages
        except Exception as e:  # keep the chat usable; the RunFailed event usually showed it already
            last = messages[-1] if messages else None
            if getattr(last, "metadata", {}).get("title") != "Run failed":
                text = f"{type(e).__name__}: {e}"
                messages.append(
                    gr.ChatMessage(
                        role="assistant", content=text, metadata={"status": "done", "title": "Run failed"}
                    )
                )
            yield messages

    def stop(self, session_state: dict[str, Any]) -> None:
        """Interrupt this session's run (it ends with state "interrupted")."""
        agent = session_state.get("agent")
        if agent is not None:
            agent.interrupt()

    def upload_file(
        self, file: Any, file_uploads_log: list[str], allowed_file_types: list[str] | None = None
    ):
        """Copy an uploaded file into ``file_upload_folder``; returns (status, updated uploads list)."""
        gr = _gr()
        if file is None:
            return gr.Textbox(value="No file uploaded", visible=True), file_uploads_log
        source = Path(getattr(file, "name", None) or str(file))
        allowed = allowed_file_types if allowed_file_types is not None else _DEFAULT_FILE_TYPES
        if source.suffix.lower() not in allowed:
            return gr.Textbox(
                value=f"File type {source.suffix or '(none)'} is not allowed", visible=True
            ), file_uploads_log
        name = re.sub(r"[^\w\-.]", "_", source.name)
        assert self.file_upload_folder is not None
        target = self.file_upload_folder / name
        shutil.copy(source, target)
        return gr.Textbox(value=f"File uploaded: {target}", visible=True), [*file_uploads_log, str(target)]

    def log_user_message(self, text_input: str, file_uploads_log: list[str]):
        """The task as sent to the agent (with the uploaded files' paths); clears and locks the input."""
        gr = _gr()
        prompt = text_input
        if file_uploads_log:
            prompt += f"\nYou have been provided with these files, which might be helpful or not: {file_uploads_log}"
        return (
            prompt,
            gr.Textbox(value="", interactive=False, placeholder="Working… (Stop ends the run)"),
            gr.Button(interactive=False),
        )

    # ---- the app ----
    def create_app(self) -> Any:
        gr = _gr()
        with gr.Blocks(title=f"codeloop · {self.name}", analytics_enabled=False, fill_height=True) as demo:
            session_state = gr.State({})
            stored_messages = gr.State("")
            file_uploads_log = gr.State([])
            with gr.Sidebar():
                gr.Markdown(
                    f"# {self.name.replace('_', ' ').capitalize()}"
                    + (f"\n\n{self.description}" if self.description else "")
                )
                text_input = gr.Textbox(
                    lines=3,
                    label="Your request",
                    elem_id="task-input",
                    placeholder="Enter your task and press Shift+Enter or Submit",
                )
                with gr.Row():
                    submit_btn = gr.Button("Submit", variant="primary", elem_id="submit-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                if self.file_upload_folder is not None:
                    upload_file = gr.File(label="Upload a file", elem_id="upload")
                    upload_status = gr.Textbox(
                        label="Upload status", interactive=False, visible=False, elem_id="upload-status"
                    )
                    upload_file.change(
                        self.upload_file, [upload_file, file_uploads_log], [upload_status, file_uploads_log]
                    )
                gr.Markdown("codeloop · runs stay in this browser session")
            chatbot = gr.Chatbot(
                label="Agent",
                elem_id="chat",
                height="80vh",
                layout="bubble",
                avatar_images=(None, None),
                buttons=["copy"],
            )

            def unlock() -> tuple[Any, Any]:
                return gr.Textbox(interactive=True, placeholder="Enter your task"), gr.Button(
                    interactive=True
                )

            for trigger in (text_input.submit, submit_btn.click):
                trigger(
                    self.log_user_message,
                    [text_input, file_uploads_log],
                    [stored_messages, text_input, submit_btn],
                ).then(self.interact_with_agent, [stored_messages, chatbot, session_state], [chatbot]).then(
                    unlock, None, [text_input, submit_btn]
                )
            stop_btn.click(self.stop, [session_state], None)
        return demo

    def launch(self, share: bool = False, **kwargs: Any) -> Any:
        """Start the app on 127.0.0.1 (``server_name`` to change); ``share=True`` asks Gradio for a public
        link. Other arguments go to ``gr.Blocks.launch`` (``server_port``, ``prevent_thread_lock``...)."""
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        kwargs.setdefault("server_name", "127.0.0.1")
        kwargs.setdefault("ssr_mode", False)  # no Node server next to the Python one
        if "run_history" in inspect.signature(_gr().Blocks.launch).parameters:
            # Gradio 6 keeps past calls in the browser and offers uploading them to a Hub bucket: off
            # unless asked, like analytics.
            kwargs.setdefault("run_history", False)
        allowed = [str(self.image_dir)] + ([str(self.file_upload_folder)] if self.file_upload_folder else [])
        kwargs["allowed_paths"] = [*kwargs.get("allowed_paths", []), *allowed]
        self.demo = self.create_app()
        return self.demo.launch(share=share, **kwargs)

    def close(self) -> None:
        demo = getattr(self, "demo", None)
        if demo is not None:
            demo.close()

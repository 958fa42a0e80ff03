"""``GradioUI`` and ``stream_to_gradio``: a chat with an agent in the browser, with smolagents' names.

Layer 7 (faces). The chat shows a run as it happens: the model's thoughts (streamed when the agent has
``stream_outputs=True``), code, execution logs, tool calls, plans, images and the final answer, with a
step / tokens / cost / time line after each step. Each browser session works on its own copy of the agent
(the agent is configuration; the copy holds that session's runs), so sessions never share memory or
runs, and the Stop button interrupts only that session's run. Files uploaded go to
``file_upload_folder`` and their paths are handed to the agent with the task. ``launch()`` binds
127.0.0.1 and opens no share link unless you pass ``share=True``; Gradio analytics are off.

Agents with an approval policy (``approval=``) get Approve / Deny buttons under the chat when a tool call
waits for a person. Without a run store the session's run waits in an ``approval_handler`` of its own
until the click; with a store (``store=``) the run pauses as ``awaiting_approval`` and the click resumes
it with ``agent.aresume(run_id, approvals=...)``.
"""

from __future__ import annotations

import asyncio
import copy
import re
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from ..events import ApprovalRequested
from .render import ChatRenderer, _gr, launch_defaults

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


_DENIED = "the person clicked Deny in the chat"


def _settle(future: asyncio.Future[Any], verdict: Any) -> None:
    if not future.done():
        future.set_result(verdict)


def _approval_future(session_state: dict[str, Any], call_id: str) -> asyncio.Future[Any]:
    """The decision for ``call_id``: made by whichever side (run or click) gets there first."""
    futures = session_state.setdefault("futures", {})
    if call_id not in futures:
        futures[call_id] = asyncio.get_running_loop().create_future()
    return futures[call_id]


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
        agent = self._session_agent(session_state)
        messages = list(messages or [])
        messages.append(gr.ChatMessage(role="user", content=prompt, metadata={"status": "done"}))
        yield messages
        streaming = False
        renderer = ChatRenderer(self.image_dir)
        pending = session_state.setdefault("pending", [])

        async def items() -> AsyncIterator[Any]:
            async for event in agent.astream(prompt, reset=self.reset_agent_memory):
                if isinstance(event, ApprovalRequested):
                    pending.append(
                        {"run_id": event.run_id, "call_id": event.call_id, "tool": event.tool_name}
                    )
                for item in renderer.render(event):
                    yield item

        try:
            async for item in items():
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

    def _session_agent(self, session_state: dict[str, Any]) -> Any:
        agent = session_state.get("agent")
        if agent is None:
            agent = session_state["agent"] = session_agent(self.agent)
            if getattr(agent, "approval", None) is not None and getattr(agent, "store", None) is None:
                # This session's calls that need approval wait for this session's buttons.
                async def ask(request: Any) -> Any:
                    return await _approval_future(session_state, request.call_id)

                agent.approval_handler = ask
        return agent

    async def decide(self, approved: bool, messages: list[Any], session_state: dict[str, Any]):
        """Approve or deny this session's oldest pending tool call; yields the chat after each change.
        Without a store the waiting run goes on by itself; with one, once every pending call of the
        run is decided, the run is resumed here."""
        gr = _gr()
        messages = list(messages or [])
        pending = session_state.setdefault("pending", [])
        if not pending:
            return
        request = pending.pop(0)
        verdict: Any = True if approved else _DENIED
        note = "Approved" if approved else "Denied"
        messages.append(
            gr.ChatMessage(
                role="assistant", content=f"{note}: {request['tool']}", metadata={"status": "done"}
            )
        )
        agent = self._session_agent(session_state)
        if getattr(agent, "store", None) is None:
            _settle(_approval_future(session_state, request["call_id"]), verdict)
            session_state["futures"].pop(request["call_id"], None)
            yield gr.skip()  # the running stream owns the chat; it shows what follows
            return
        decisions = session_state.setdefault("decisions", {}).setdefault(request["run_id"], {})
        decisions[request["call_id"]] = verdict
        yield messages
        if any(p["run_id"] == request["run_id"] for p in pending):
            return
        session_state["decisions"].pop(request["run_id"])
        renderer = ChatRenderer(self.image_dir)
        try:
            result = await agent.aresume(request["run_id"], approvals=decisions)
        except Exception as e:
            text = f"{type(e).__name__}: {e}"
            messages.append(
                gr.ChatMessage(
                    role="assistant", content=text, metadata={"status": "done", "title": "Run failed"}
                )
            )
            yield messages
            return
        if result.state == "awaiting_approval":
            for p in result.pending_approvals:
                pending.append({"run_id": request["run_id"], "call_id": p["call_id"], "tool": p["tool"]})
                messages.append(renderer.approval_request(p["tool"], p.get("arguments"), p.get("reason")))
        elif result.state == "success":
            messages.extend(renderer._final(result.output))
        else:
            messages.append(
                gr.ChatMessage(role="assistant", content=f"Run {result.state}.", metadata={"status": "done"})
            )
        yield messages

    async def _interact_with_buttons(self, prompt: str, messages: list[Any], session_state: dict[str, Any]):
        async for chat in self.interact_with_agent(prompt, messages, session_state):
            yield chat, self._buttons(session_state)

    def _buttons(self, session_state: dict[str, Any]) -> Any:
        return _gr().Row(visible=bool(session_state.get("pending")))

    async def approve(self, messages: list[Any], session_state: dict[str, Any]):
        async for chat in self.decide(True, messages, session_state):
            yield chat

    async def deny(self, messages: list[Any], session_state: dict[str, Any]):
        async for chat in self.decide(False, messages, session_state):
            yield chat

    def stop(self, session_state: dict[str, Any]) -> None:
        """Interrupt this session's run (it ends with state "cancelled")."""
        agent = session_state.get("agent")
        if agent is not None:
            agent.interrupt()
            if getattr(agent, "store", None) is None:
                # A call waiting for a click would wait forever: it is denied, and the run then stops.
                session_state.get("pending", []).clear()
                for future in session_state.pop("futures", {}).values():
                    future.get_loop().call_soon_threadsafe(_settle, future, "the run was stopped")

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
            with gr.Row(visible=False, elem_id="approval-row") as approval_row:
                approve_btn = gr.Button("Approve", variant="primary", elem_id="approve-btn")
                deny_btn = gr.Button("Deny", variant="stop", elem_id="deny-btn")
            approve_btn.click(self.approve, [chatbot, session_state], [chatbot], concurrency_limit=None).then(
                self._buttons, [session_state], [approval_row]
            )
            deny_btn.click(self.deny, [chatbot, session_state], [chatbot], concurrency_limit=None).then(
                self._buttons, [session_state], [approval_row]
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
                ).then(
                    self._interact_with_buttons,
                    [stored_messages, chatbot, session_state],
                    [chatbot, approval_row],
                    # One session's run waiting for a click must not queue the other sessions' runs.
                    concurrency_limit=None,
                ).then(unlock, None, [text_input, submit_btn])
            stop_btn.click(self.stop, [session_state], None)
        return demo

    def launch(self, share: bool = False, **kwargs: Any) -> Any:
        """Start the app on 127.0.0.1 (``server_name`` to change); ``share=True`` asks Gradio for a public
        link. Other arguments go to ``gr.Blocks.launch`` (``server_port``, ``prevent_thread_lock``...)."""
        launch_defaults(kwargs)
        allowed = [str(self.image_dir)] + ([str(self.file_upload_folder)] if self.file_upload_folder else [])
        kwargs["allowed_paths"] = [*kwargs.get("allowed_paths", []), *allowed]
        self.demo = self.create_app()
        return self.demo.launch(share=share, **kwargs)

    def close(self) -> None:
        demo = getattr(self, "demo", None)
        if demo is not None:
            demo.close()

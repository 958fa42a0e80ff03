"""The Gradio chat in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), against the
loopback model server: a task streams its steps and final answer, a file upload reaches the agent, Stop
ends a run, two browser contexts do not share runs; plus stream_to_gradio and the `codeloop ui` command.
The test keeps a screenshot (in pytest's temp dir; CODELOOP_UPDATE_DOCS=1 also copies it to docs/)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from codeloop.agents import CodeAgent, LogLevel  # noqa: E402
from codeloop.models import OpenAIModel  # noqa: E402
from codeloop.testing import OpenAICompatibleServer, Reply  # noqa: E402
from codeloop.tools import tool  # noqa: E402
from codeloop.ui import GradioUI, session_agent, stream_to_gradio  # noqa: E402
from codeloop.ui.command import load_agent  # noqa: E402

# gradio's queue calls pandas APIs that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: what to look up
    """
    return {"greeting": "Hello"}.get(key, "unknown")


@tool
def read_upload(path: str) -> str:
    """Read an uploaded text file.

    Args:
        path: the file's path
    """
    return Path(path).read_text()


@tool
def make_image() -> object:
    """Draw a small picture."""
    from PIL import Image

    return Image.new("RGB", (24, 24), (30, 140, 90))


def _code(src: str) -> str:
    return f"Thought: I will work on it step by step.\n<code>\n{src}\n</code>"


def _user_text(request: dict) -> str:
    parts = []
    for message in request["messages"]:
        if message["role"] == "user":
            content = message["content"]
            parts += [content] if isinstance(content, str) else [p.get("text", "") for p in content]
    return "\n".join(parts)


SENT: list[int] = []


@tool
def send_coins(amount: int) -> str:
    """Send coins (needs a person's approval).

    Args:
        amount: how many
    """
    SENT.append(amount)
    return f"{amount} coins sent"


def handler(request: dict):
    text = _user_text(request)
    task = text.split("New task:")[-1]
    last = str(request["messages"][-1]["content"])
    if "send coins" in task:
        if "denied by a person" in last:
            return _code("final_answer('the model saw the denial')")
        if "coins sent" in last:
            return _code("final_answer('done: ' + r)")
        return _code("r = send_coins(amount=5)\nprint(r)")
    files = re.search(r"helpful or not: \['([^']+)'\]", task)
    if "broken" in task:
        return Reply.error(400, "the model refuses")
    if "slow" in task:
        return Reply(content=_code("final_answer('too late')"), delay=30)
    if "picture" in task:
        return _code("final_answer(make_image())")
    if files:
        return _code(f"final_answer('File says: ' + read_upload({files.group(1)!r}))")
    if "second" in task:
        return _code("final_answer('second answer')")
    if "hello" in task:
        if "Execution logs" not in str(request["messages"][-1]["content"]):
            return Reply(content=_code("x = lookup('greeting')\nprint(x, 'world')"), chunk_delay=0.01)
        return _code("final_answer(x + ' from codeloop')")
    return _code("final_answer('?')")


@pytest.fixture(scope="module")
def server():
    with OpenAICompatibleServer(handler=handler, chunk_size=12) as server:
        yield server


def make_agent(server, **options) -> CodeAgent:
    model = OpenAIModel(
        "loopback-model",
        api_base=server.base_url,
        api_key="k",
        max_retries=0,
        prices={"input": 1.0, "output": 2.0},
    )
    return CodeAgent(
        tools=[lookup, read_upload, make_image, send_coins],
        model=model,
        executor_type="inprocess",
        verbosity_level=LogLevel.OFF,
        stream_outputs=True,
        max_steps=4,
        **options,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    ui = GradioUI(make_agent(server), file_upload_folder=str(uploads))
    _, url, share_url = ui.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True)
    try:
        assert url.startswith("http://127.0.0.1:") and share_url is None
        yield ui, url
    finally:
        ui.close()


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: scripts/install-os-deps.sh installs Debian's chromium")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def _open(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.locator("#task-input textarea").wait_for()
    return context, page


def _ask(page, text):
    page.locator("#task-input textarea").fill(text)
    page.locator("#submit-btn").click()


def _chat(page):
    return page.locator("#chat")


def test_chat_streams_steps_and_final_answer_and_sessions_are_separate(
    app, browser, server, tmp_path_factory
):
    ui, url = app
    context, page = _open(browser, url)
    other_context, other = _open(browser, url)
    try:
        _ask(page, "hello there")
        chat = _chat(page)
        chat.get_by_text("Hello from codeloop").wait_for(timeout=30_000)
        for shown in (
            "Used tool python_interpreter",
            "Called tool lookup",
            "Execution logs",
            "Step 1 | Input tokens",
            "Step 2 | Input tokens",
            "I will work on it step by step",
        ):
            assert chat.get_by_text(shown).count() >= 1, shown
        # Titled items are collapsed: open the tool call and the logs to see what they hold.
        chat.get_by_text("Called tool lookup").first.click()
        chat.get_by_text("Execution logs").first.click()
        chat.get_by_text("Hello world").wait_for(timeout=5_000)
        chat.get_by_text("Result: Hello").wait_for(timeout=5_000)
        page.wait_for_timeout(500)  # let the opened boxes finish their animation before the screenshot
        artifacts = tmp_path_factory.getbasetemp() / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shot = artifacts / "ui-chat.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"
        if os.environ.get("CODELOOP_UPDATE_DOCS") == "1":
            shutil.copy(shot, ROOT / "docs" / "ui-chat.png")
        # The other browser context has its own session: an empty chat, and its run sees nothing of ours.
        assert _chat(other).get_by_text("Hello from codeloop").count() == 0
        before = len(server.chat_requests)
        _ask(other, "second question")
        _chat(other).get_by_text("second answer").wait_for(timeout=30_000)
        sent = [_user_text(r["json"]) for r in server.chat_requests[before:]]
        assert sent and all("hello there" not in s for s in sent)
        assert chat.get_by_text("second answer").count() == 0
        # The first session's conversation continues (reset_agent_memory=False): its memory has "hello".
        before = len(server.chat_requests)
        _ask(page, "second round")
        chat.get_by_text("second answer").wait_for(timeout=30_000)
        assert "hello there" in _user_text(server.chat_requests[before]["json"])
    finally:
        context.close()
        other_context.close()


def test_upload_image_and_stop(app, browser, tmp_path):
    ui, url = app
    context, page = _open(browser, url)
    try:
        note = tmp_path / "notes.txt"
        note.write_text("the meeting is at noon")
        page.locator("#upload input[type=file]").set_input_files(str(note))
        page.locator("#upload-status textarea").wait_for()
        page.wait_for_function(
            "() => document.querySelector('#upload-status textarea').value.startsWith('File uploaded')"
        )
        assert (ui.file_upload_folder / "notes.txt").read_text() == "the meeting is at noon"
        _ask(page, "what does my file say?")
        chat = _chat(page)
        chat.get_by_text("File says: the meeting is at noon").wait_for(timeout=30_000)
        page.locator("#submit-btn:not([disabled])").wait_for(timeout=10_000)
        _ask(page, "draw a picture")
        image = chat.locator("img[src*='.png']").last
        image.wait_for(state="attached", timeout=30_000)
        image.scroll_into_view_if_needed()
        # The picture the tool drew (24x24) is served back and decoded by the browser.
        page.wait_for_function("el => el.complete && el.naturalWidth === 24", arg=image.element_handle())
        page.locator("#submit-btn:not([disabled])").wait_for(timeout=10_000)
        # Stop ends a run that would take 30 s, well before that.
        _ask(page, "slow task")
        chat.get_by_text("slow task").wait_for(timeout=10_000)
        page.wait_for_timeout(500)
        page.locator("#stop-btn").click()
        chat.get_by_text("Run stopped").wait_for(timeout=10_000)
        chat.get_by_text("Run cancelled").wait_for(timeout=5_000)
        assert chat.get_by_text("too late").count() == 0
        page.locator("#submit-btn:not([disabled])").wait_for(timeout=10_000)
    finally:
        context.close()


def test_stream_to_gradio_yields_smolagents_items(server):
    import gradio as gr

    agent = make_agent(server)
    items = list(stream_to_gradio(agent, "hello again"))
    drafts = [i for i in items if isinstance(i, str)]
    messages = [i for i in items if isinstance(i, gr.ChatMessage)]
    assert drafts and "I will work" in drafts[-1]  # streamed reply, without its code
    assert "Hello from codeloop" in messages[-2].content  # final answer, then the run summary
    assert messages[-1].content.count("Run success")
    titles = [m.metadata.get("title") for m in messages]
    assert "Called tool lookup" in titles and "Execution logs" in titles
    clone = session_agent(agent)
    assert clone.model is agent.model and clone.last_run is None and agent.last_run is not None


def test_ui_command_loads_agents_and_refuses_bad_ones(tmp_path, server):
    (tmp_path / "agent.py").write_text(
        "from codeloop import CodeAgent, ScriptedModel\n"
        "def make_agent():\n    return CodeAgent(tools=[], model=ScriptedModel(['x']), name='from_dir')\n"
    )
    assert load_agent(str(tmp_path)).name == "from_dir"
    assert load_agent(str(tmp_path / "agent.py")).name == "from_dir"
    (tmp_path / "bad.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="make_agent"):
        load_agent(str(tmp_path / "bad.py"))
    from codeloop.cli import main

    assert main(["ui", "--agent", str(tmp_path / "missing.py")]) == 2


def test_codeloop_ui_command_serves_the_chat_on_localhost(server):
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [
        sys.executable,
        "-m",
        "codeloop.cli",
        "ui",
        "--api-base",
        server.base_url,
        "--model-id",
        "loopback-model",
        "--executor",
        "inprocess",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        page = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert page is not None and page.status_code == 200, process.poll()
        assert "codeloop" in page.text
        config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=5).json()
        assert config.get("share_url") in (None, "")
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_failed_run_shows_one_error_and_sessions_get_their_own_agent(server):
    from codeloop._sync import run_sync  # works beside Playwright's loop in this thread

    ui = GradioUI(make_agent(server))

    async def chat(prompt: str, state: dict) -> list:
        return [list(c) async for c in ui.interact_with_agent(prompt, [], state)]

    state: dict = {}
    final = run_sync(chat("broken please", state))[-1]
    failures = [m for m in final if m.metadata.get("title") == "Run failed"]
    assert len(failures) == 1 and "the model refuses" in failures[0].content
    assert final[0].role == "user" and final[0].content == "broken please"
    other: dict = {}
    run_sync(chat("second one", other))
    assert state["agent"] is not other["agent"] and state["agent"] is not ui.agent
    assert state["agent"].last_run.task.startswith("broken") and other["agent"].last_run.task == "second one"
    assert ui.agent.last_run is None  # the configured agent itself never runs


def test_renderer_shows_compaction_and_hides_code_being_streamed():
    from codeloop.events import ContextCompacted, ModelDelta
    from codeloop.messages import ChatMessageStreamDelta
    from codeloop.ui import ChatRenderer

    renderer = ChatRenderer()
    (line,) = renderer.render(ContextCompacted(tokens_before=9000, tokens_after=2500, folded_steps=[1, 2]))
    assert "9,000 → 2,500 tokens, 2 steps summarized" in line.content
    renderer.render(ModelDelta(delta=ChatMessageStreamDelta(content="Thought: go.\n<code>\nx = ")))
    (draft,) = renderer.render(ModelDelta(delta=ChatMessageStreamDelta(content="1")))
    assert draft == "Thought: go."


async def _never_called(request):  # the UI gives each session its own handler
    raise AssertionError("the configured agent's handler was called")


@pytest.mark.parametrize("with_store", [False, True], ids=["handler", "store"])
def test_approval_buttons_approve_and_deny(server, browser, tmp_path, with_store):
    options: dict = {"approval": ["send_coins"]}
    if with_store:
        options["store"] = str(tmp_path / "runs.sqlite")
    else:
        options["approval_handler"] = _never_called
    ui = GradioUI(make_agent(server, **options))
    _, url, _ = ui.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True)
    contexts = []
    try:
        SENT.clear()
        pages = []
        for _ in range(2):  # two browser sessions, one approves, one denies
            context, page = _open(browser, url)
            contexts.append(context)
            pages.append(page)
            _ask(page, "please send coins")
        for page in pages:
            chat = _chat(page)
            chat.get_by_text("Approval needed: send_coins").wait_for(timeout=30_000)
            page.locator("#approve-btn").wait_for(state="visible", timeout=10_000)
            chat.get_by_text("Approval needed: send_coins").click()
            chat.get_by_text("Arguments: {'amount': 5}").wait_for(timeout=5_000)
        assert SENT == []  # nothing runs before a person says yes
        approver, denier = pages
        approver.locator("#approve-btn").click()
        _chat(approver).get_by_text("done: 5 coins sent").wait_for(timeout=30_000)
        assert SENT == [5]
        approver.locator("#approve-btn").wait_for(state="hidden", timeout=10_000)
        denier.locator("#deny-btn").click()
        _chat(denier).get_by_text("the model saw the denial").wait_for(timeout=30_000)
        assert SENT == [5]  # the denied call never ran
        assert _chat(denier).get_by_text("coins sent").count() == 0
        if with_store:  # each session's run was stored, paused for approval, then resumed to the end
            runs = ui.agent.store.list_runs()
            assert len(runs) == 2 and {r.state for r in runs} == {"success"}
            assert sorted(str(r.output) for r in runs) == ["done: 5 coins sent", "the model saw the denial"]
    finally:
        for context in contexts:
            context.close()
        ui.close()


def test_stop_while_a_call_waits_for_approval_denies_it_and_ends_the_run(server):
    from codeloop._sync import run_sync  # works beside Playwright's loop in this thread

    ui = GradioUI(make_agent(server, approval=["send_coins"], approval_handler=_never_called))
    state: dict = {}

    async def scenario() -> list:
        chats = []

        async def chat() -> None:
            async for c in ui.interact_with_agent("please send coins", [], state):
                chats.append(list(c))

        task = asyncio.create_task(chat())
        while not state.get("pending"):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(ui.stop, state)  # Gradio calls the sync Stop handler from a thread
        await asyncio.wait_for(task, 30)
        return chats[-1]

    SENT.clear()
    final = run_sync(scenario())
    assert SENT == [] and state["pending"] == []
    assert any("Run stopped." in str(m.content) for m in final)

"""``launch_gradio_demo(tool)``: the form is served on 127.0.0.1 and a real Gradio client calls the tool
through it (JSON-typed inputs parsed, the tool's own validation applied); fields follow the input types."""

from __future__ import annotations

import os
import socket

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

gr = pytest.importorskip("gradio", reason="the ui extra is part of the test install")
from gradio_client import Client  # noqa: E402

from codeloop import launch_gradio_demo  # noqa: E402
from codeloop.tools import tool  # noqa: E402
from codeloop.ui import tool_demo  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

CALLS: list[tuple[str, int, list[int]]] = []


@tool
def repeat(word: str, times: int, extra: list[int]) -> str:
    """Repeat a word.

    Args:
        word: the word
        times: how many times
        extra: numbers to append
    """
    CALLS.append((word, times, extra))
    return " ".join([word] * times + [str(n) for n in extra])


@tool
def describe(flag: bool, ratio: float, options: dict) -> dict:
    """Describe inputs.

    Args:
        flag: a switch
        ratio: a number
        options: settings
    """
    return {"flag": flag, "ratio": ratio, **options}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_form_calls_the_tool_through_a_real_gradio_client() -> None:
    demo = launch_gradio_demo(repeat, server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        url = demo.local_url
        assert url.startswith("http://127.0.0.1:")
        client = Client(url, verbose=False)
        assert client.predict("hi", 3, "[7, 8]", api_name="/predict") == "hi hi hi 7 8"
        assert CALLS[-1] == ("hi", 3, [7, 8])
        with pytest.raises(Exception, match="must be JSON"):
            client.predict("hi", 1, "[7,", api_name="/predict")
        assert len(CALLS) == 1, "a malformed JSON input never reaches the tool"
    finally:
        demo.close()


def test_fields_follow_the_input_and_output_types() -> None:
    demo = tool_demo(describe)
    fields = [type(c).__name__ for c in demo.input_components]
    assert fields == ["Checkbox", "Number", "Textbox"]
    assert demo.input_components[2].label == "options (JSON)"
    assert [type(c).__name__ for c in demo.output_components] == ["JSON"]
    assert demo.fn(True, 0.5, '{"mode": "fast"}') == {"flag": True, "ratio": 0.5, "mode": "fast"}
    number = tool_demo(repeat).input_components[1]
    assert number.precision == 0, "an integer input gives an int, not a float"

"""AgentImage and AgentAudio: inputs, to_raw/to_string, pickling, and their handling by agents."""

from __future__ import annotations

import io
import pickle
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codeloop import AgentAudio, AgentImage, CodeAgent, ToolCallingAgent, tool
from codeloop.agents import LogLevel
from codeloop.messages import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction
from codeloop.models.scripted import ScriptedModel
from codeloop.tools import AgentType, handle_agent_output_types


def red(size=(2, 3)) -> Image.Image:
    return Image.new("RGB", size, (255, 0, 0))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_agent_image_from_pil_bytes_path_array_and_itself(tmp_path):
    from_pil = AgentImage(red())
    assert isinstance(from_pil, Image.Image) and isinstance(from_pil, AgentType)
    assert from_pil.size == (2, 3) and from_pil.getpixel((1, 1)) == (255, 0, 0)
    path = from_pil.to_string()
    assert Path(path).read_bytes()[:4] == b"\x89PNG" and from_pil.to_string() == path
    from_bytes = AgentImage(png_bytes(red((4, 4))))
    assert from_bytes.to_raw().size == (4, 4)
    file = tmp_path / "x.png"
    red((5, 1)).save(file)
    from_path = AgentImage(str(file))
    assert from_path.to_string() == str(file) and from_path.to_raw().size == (5, 1)
    from_array = AgentImage(np.zeros((3, 2, 3), dtype=np.uint8))
    assert from_array.size == (2, 3)
    again = AgentImage(from_pil)
    assert again == from_pil and again.to_raw() is from_pil.to_raw()
    back = pickle.loads(pickle.dumps(from_pil))
    assert isinstance(back, AgentImage) and back.getpixel((0, 0)) == (255, 0, 0)
    assert from_pil._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(TypeError, match="AgentImage takes"):
        AgentImage(12)


def test_agent_audio_from_samples_bytes_and_path(tmp_path):
    audio = AgentAudio(np.array([0.0, 0.5, -0.5], dtype=np.float32), samplerate=8000)
    assert isinstance(audio, str) and audio == audio.to_string() and audio.to_string().endswith(".wav")
    with wave.open(audio.to_string()) as w:
        assert w.getframerate() == 8000 and w.getnframes() == 3
    decoded = AgentAudio(audio.to_bytes())
    assert decoded.samplerate == 8000
    assert np.allclose(decoded.to_raw(), [0.0, 0.5, -0.5], atol=1e-3)
    from_path = AgentAudio(audio.to_string())
    assert np.allclose(from_path.to_raw(), [0.0, 0.5, -0.5], atol=1e-3) and from_path.samplerate == 8000
    stereo = AgentAudio((16000, np.zeros((4, 2))))
    assert stereo.to_raw().shape == (4, 2) and stereo.samplerate == 16000
    assert pickle.loads(pickle.dumps(decoded)).samplerate == 8000


def test_output_types_are_wrapped_like_smolagents():
    assert isinstance(handle_agent_output_types(red(), "image"), AgentImage)
    assert isinstance(handle_agent_output_types(red(), None), AgentImage)
    assert isinstance(handle_agent_output_types([0.1, 0.2], "audio"), AgentAudio)
    assert handle_agent_output_types(3, "integer") == 3


@tool
def draw(width: int) -> Image.Image:
    """Draw a red rectangle.

    Args:
        width: its width in pixels
    """
    return red((width, 2))


def test_tool_calling_agent_keeps_images_in_state_for_final_answer():
    def call(name, args, i):
        return ChatMessage(
            role="assistant",
            content=None,
            tool_calls=[ChatMessageToolCall(id=f"c{i}", type="function",
                                            function=ChatMessageToolCallFunction(name=name, arguments=args))],
        )

    model = ScriptedModel([call("draw", {"width": 7}, 1), call("final_answer", {"answer": "image.png"}, 2)])
    agent = ToolCallingAgent(tools=[draw], model=model, verbosity_level=LogLevel.OFF)
    result = agent.run("draw it")
    assert isinstance(result, AgentImage) and result.size == (7, 2)
    assert "Stored 'image.png' in memory." in agent.memory.steps[1].observations


def test_code_agent_gets_tool_images_in_the_isolated_worker():
    reply = "Thought: draw.\n<code>\nimg = draw(width=9)\nprint(img.size)\nfinal_answer(img.size[0])\n</code>"
    agent = CodeAgent(tools=[draw], model=ScriptedModel([reply]), executor_type="local",
                      verbosity_level=LogLevel.OFF)
    assert agent.run("draw") == 9

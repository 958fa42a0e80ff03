"""More smolagents behaviours that migrated code relies on (issue #16, models/tools/agents side).

Each test pins, with codeloop's own components and no alias, one behaviour that smolagents' own suite
checks in the compatibility tier (scripts/compat-smolagents.sh).
"""

from __future__ import annotations

import ast
import base64
import io

import pytest
from PIL import Image

from codeloop import ChatMessage, CodeAgent, InferenceClientModel, MessageRole, PythonInterpreterTool, tool
from codeloop.agents.sharing import create_agent_gradio_app_template
from codeloop.errors import ModelConfigurationError
from codeloop.messages import encode_image_base64
from codeloop.models import convert, get_clean_message_list
from codeloop.models.scripted import ScriptedModel
from codeloop.tools.validation import validate_tool_attributes


def test_clean_message_list_encodes_images_with_encode_image_base64(monkeypatch):
    picture = Image.new("RGB", (3, 2), (10, 20, 30))
    png = io.BytesIO()
    picture.save(png, format="PNG")
    encoded = base64.b64encode(png.getvalue()).decode()
    assert encode_image_base64(picture) == encoded and encode_image_base64(b"\x01") == "AQ=="
    message = ChatMessage(role=MessageRole.USER, content=[{"type": "image", "image": picture}])
    assert get_clean_message_list([message])[0]["content"] == [{"type": "image", "image": encoded}]
    as_url = get_clean_message_list([message], convert_images_to_image_urls=True)[0]["content"]
    assert as_url == [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + encoded}}]
    # the helper is looked up through the module, as in smolagents, so a patch of it takes effect
    seen = []
    monkeypatch.setattr(convert, "encode_image_base64", lambda image: seen.append(image) or "stub")
    assert get_clean_message_list([message])[0]["content"] == [{"type": "image", "image": "stub"}]
    assert seen == [picture]


def test_model_configuration_errors_are_value_errors_with_smolagents_phrase():
    with pytest.raises(ValueError, match="Received both `token` and `api_key` arguments"):
        InferenceClientModel(model_id="m", token="abc", api_key="def")
    assert InferenceClientModel(model_id="m", token="abc", api_key="abc").api_key == "abc"
    assert issubclass(ModelConfigurationError, ValueError)


def test_agent_type_mapping_names_the_wrapper_of_each_output_type():
    from codeloop.tools.agent_media import AgentAudio, AgentImage
    from codeloop.tools.agent_types import _AGENT_TYPE_MAPPING, AGENT_TYPE_MAPPING, AgentText

    assert _AGENT_TYPE_MAPPING is AGENT_TYPE_MAPPING
    assert dict(AGENT_TYPE_MAPPING) == {"string": AgentText, "image": AgentImage, "audio": AgentAudio}
    with pytest.raises(KeyError):
        AGENT_TYPE_MAPPING["number"]
    tool = PythonInterpreterTool()
    output = tool("2 * 2", sanitize_inputs_outputs=True)
    assert isinstance(output, AGENT_TYPE_MAPPING[tool.output_type]) and "4" in output


def test_agent_app_template_renders_smolagents_variables_and_saved_apps_parse(tmp_path):
    agent_dict = {
        "class": "CodeAgent",
        "model": {"class": "OpenAIModel", "data": {"class": "OpenAIModel", "model_id": "m"}},
        "tools": [],
        "managed_agents": {},
        "requirements": [],
        "prompt_templates": {},
        "max_steps": 3,
        "authorized_imports": ["json"],
    }
    code = create_agent_gradio_app_template().render(
        agent_name="agent_x", class_name="CodeAgent", agent_dict=agent_dict, tools={}, managed_agents={},
        managed_agent_relative_path="",
    )
    ast.parse(code)
    assert "class=" not in code and "    max_steps=3,\n" in code and "model_id='m'" in code
    assert "additional_authorized_imports=['json']" in code and "GradioUI(agent_x).launch()" in code

    @tool
    def shout(text: str) -> str:
        """Shouts.

        Args:
            text: what to shout
        """
        return text.upper()

    helper = CodeAgent(tools=[], model=ScriptedModel(["x"]), name="helper", description="Helps.")
    CodeAgent(tools=[shout], model=ScriptedModel(["x"]), managed_agents=[helper], name="boss").save(tmp_path)
    app = (tmp_path / "app.py").read_text()
    ast.parse(app)
    assert "from tools.shout import SimpleTool as Tool_shout" in app  # a @tool is saved as class SimpleTool
    assert "from managed_agents.helper.app import agent_helper" in app and "agent_boss = CodeAgent(" in app
    assert "managed_agents=[agent_helper]," in app and "    name='boss',\n" in app
    ast.parse((tmp_path / "managed_agents" / "helper" / "app.py").read_text())


def test_the_class_of_a_tool_function_validates():
    @tool
    def double(x: int) -> int:
        """Doubles.

        Args:
            x: a number
        """
        return 2 * x

    assert validate_tool_attributes(type(double)) is None
    assert double.__name__ == "double" and double.to_dict()["name"] == "double"

    class Unnamed(type(double)):  # a subclass is checked like any Tool class
        pass

    with pytest.raises(ValueError, match="name"):
        validate_tool_attributes(Unnamed)

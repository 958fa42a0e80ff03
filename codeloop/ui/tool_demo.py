"""``launch_gradio_demo(tool)``: a web form for one tool (smolagents' name; a saved tool's Space runs it).

Layer 7 (faces). One field per tool input, chosen from the input's type, and one for the output. Inputs
typed ``array``, ``object`` or ``any`` are typed as JSON text (Gradio has no editable JSON field) and
parsed before the call, so the tool gets the value its schema describes; the call goes through the tool's
own validation (``sanitize_inputs_outputs=True``), as an agent's call does.
"""

from __future__ import annotations

import json
from typing import Any

from .render import _gr, launch_defaults

__all__ = ["launch_gradio_demo", "tool_demo"]

_JSON_TYPES = frozenset({"array", "object", "any"})


def _input_field(gr: Any, name: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    label, info = name, spec.get("description") or None
    if kind == "boolean":
        return gr.Checkbox(label=label, info=info)
    if kind == "integer":
        return gr.Number(label=label, info=info, precision=0)
    if kind == "number":
        return gr.Number(label=label, info=info)
    if kind == "image":
        return gr.Image(label=label, type="pil")
    if kind == "audio":
        return gr.Audio(label=label, type="filepath")
    if kind in _JSON_TYPES:
        return gr.Textbox(label=f"{label} (JSON)", info=info)
    return gr.Textbox(label=label, info=info)


def _output_field(gr: Any, output_type: str) -> Any:
    if output_type == "image":
        return gr.Image(label="Output")
    if output_type == "audio":
        return gr.Audio(label="Output")
    if output_type in _JSON_TYPES:
        return gr.JSON(label="Output")
    return gr.Textbox(label="Output")


def _parse(name: str, spec: dict[str, Any], value: Any) -> Any:
    if spec.get("type") not in _JSON_TYPES or not isinstance(value, str):
        return value
    if value.strip() == "" and spec.get("nullable"):
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise _gr().Error(f"Input '{name}' must be JSON ({exc.msg} at character {exc.pos}).") from None


def tool_demo(tool: Any) -> Any:
    """The ``gr.Interface`` for ``tool``, not started (``launch_gradio_demo`` starts it)."""
    gr = _gr()
    names = list(tool.inputs)

    def call(*values: Any) -> Any:
        kwargs = {name: _parse(name, tool.inputs[name], value) for name, value in zip(names, values, strict=True)}
        result = tool(sanitize_inputs_outputs=True, **kwargs)
        return result.to_raw() if hasattr(result, "to_raw") else result

    return gr.Interface(
        fn=call,
        inputs=[_input_field(gr, name, tool.inputs[name]) for name in names],
        outputs=_output_field(gr, tool.output_type),
        title=tool.name,
        description=tool.description,
        flagging_mode="never",
        api_name="predict",
    )


def launch_gradio_demo(tool: Any, **launch_kwargs: Any) -> Any:
    """Serve a form that calls ``tool``, on 127.0.0.1 unless ``server_name`` says otherwise. Other keyword
    arguments go to ``gr.Interface.launch`` (``server_port``, ``share``, ``prevent_thread_lock``...). Returns
    the started ``gr.Interface`` (``.local_url``, ``.close()``) once ``launch`` returns."""
    demo = tool_demo(tool)
    demo.launch(**launch_defaults(launch_kwargs))
    return demo

"""Turn a model's reply into an action: Python code for a CodeAgent, tool calls for a ToolCallingAgent.

Layer 5 (agents). Real replies are messy: code in ``<code>`` tags or Markdown fences (labelled or not),
a missing closing tag because the stop sequence cut it, several blocks, fences in the thought before the
code, prose after it, ``<end_code>`` markers, hidden ``<think>`` sections, or plain Python with no fence.
The functions here accept all of that and, when there really is no action, raise
:class:`~codeloop.errors.AgentParsingError` with a message that tells the model exactly what to write;
the loop shows that message to the model as the step's observation.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from typing import Any

from ..errors import AgentParsingError
from ..models.toolcall_parsing import extract_json_values, parse_arguments

__all__ = [
    "DEFAULT_CODE_BLOCK_TAGS",
    "MARKDOWN_CODE_BLOCK_TAGS",
    "CodeParsingError",
    "resolve_code_block_tags",
    "extract_code_from_text",
    "parse_code_blobs",
    "parse_json_tool_calls",
    "reply_excerpt",
]

DEFAULT_CODE_BLOCK_TAGS: tuple[str, str] = ("<code>", "</code>")
MARKDOWN_CODE_BLOCK_TAGS: tuple[str, str] = ("```python", "```")

# Fence labels that mean "this is Python". Gemini writes ``tool_code``; notebooks-trained models ``ipython``.
_PYTHON_LABELS = frozenset({"python", "py", "python3", "py3", "ipython", "tool_code", "pycon"})
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w.+#-]*)[^\n`]*$")
_END_CODE = "<end_code>"
# A model that runs on past its action often invents the next observation; nothing after it is its code.
_HALLUCINATED_OBSERVATION = re.compile(r"^[ \t]*(Observation|Execution logs)[ \t]*:", re.MULTILINE)
_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_EXCERPT_CHARS = 600


class CodeParsingError(AgentParsingError, ValueError):
    """No code could be found in a reply.

    It is also a ValueError because smolagents' ``parse_code_blobs`` raised ValueError and user code may
    catch that.
    """


def resolve_code_block_tags(code_block_tags: tuple[str, str] | list[str] | str | None) -> tuple[str, str]:
    """Normalise the ``code_block_tags`` option as CodeAgent accepts it (None, "markdown" or a pair)."""
    if code_block_tags is None:
        return DEFAULT_CODE_BLOCK_TAGS
    if isinstance(code_block_tags, str):
        if code_block_tags == "markdown":
            return MARKDOWN_CODE_BLOCK_TAGS
        raise ValueError(
            f"code_block_tags={code_block_tags!r} is not supported: pass None (for <code>...</code>), "
            "'markdown' (for ```python ... ```) or a pair of strings such as ('<code>', '</code>')."
        )
    tags = tuple(code_block_tags)
    if len(tags) != 2 or not all(isinstance(t, str) and t for t in tags):
        raise ValueError(f"code_block_tags must be a pair of non-empty strings, got {code_block_tags!r}.")
    return tags  # type: ignore[return-value]


def reply_excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """The reply as shown in an error: whole when short, else its head and tail."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-(limit - head) :]}"


# ----------------------------------------------------------------------------------------------------------
# Code extraction
# ----------------------------------------------------------------------------------------------------------


def _strip_think(text: str) -> str:
    """Drop closed ``<think>`` sections: code a reasoning model only considered is not its action."""
    stripped = _THINK.sub("", text)
    return stripped if stripped.strip() else text


def _tag_regex(tag: str, text: str) -> re.Pattern[str]:
    """Match ``tag`` literally, or as a regex when it is one (smolagents' tags were regexes)."""
    if tag in text or re.escape(tag) == tag:
        return re.compile(re.escape(tag))
    try:
        return re.compile(tag)
    except re.error:
        return re.compile(re.escape(tag))


def _blocks_between_tags(text: str, opening: str, closing: str) -> list[str]:
    """Every block between the tags, in order. An unclosed last block runs to the end of the text.

    When an opening tag is mentioned in the thought before the real one, the block starts at the opening
    tag nearest to its closing tag.
    """
    open_re, close_re = _tag_regex(opening, text), _tag_regex(closing, text)
    blocks: list[str] = []
    pos = 0
    while True:
        start = open_re.search(text, pos)
        if start is None:
            return blocks
        end = close_re.search(text, start.end())
        # Restart at the last opening before the closing tag (or before the end, when unclosed).
        limit = end.start() if end else len(text)
        while (again := open_re.search(text, start.end(), limit)) is not None:
            start = again
        if end is None:
            blocks.append(text[start.end() :])
            return blocks
        blocks.append(text[start.end() : end.start()])
        pos = end.end()


def _markdown_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced blocks as (label, body), in order. A fence must open a line; inline ``` is prose."""
    lines = text.split("\n")
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, label = m.group(1), m.group(2).lower()
        body: list[str] = []
        j = i + 1
        closed = False
        while j < len(lines):
            line = lines[j]
            bare = line.strip()
            if (
                bare.startswith(fence[0] * len(fence))
                and not bare.lstrip(fence[0]).replace(_END_CODE, "").strip()
            ):
                closed = True
                break
            if bare.endswith(_END_CODE) or bare.endswith(fence):
                # Closing glued to the last code line: ``print(x)``` `` or ``print(x)<end_code>``.
                body.append(line.rstrip().removesuffix(_END_CODE).rstrip().removesuffix(fence))
                closed = True
                break
            body.append(line)
            j += 1
        blocks.append((label, "\n".join(body)))
        i = j + 1 if closed else len(lines)
    return blocks


def _parses(source: str) -> bool:
    try:
        ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _looks_like_code(source: str) -> bool:
    """True when ``source`` parses and does something; a lone word or literal is prose that happens to parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # the parser gives up on odd long prose
        return False
    if not tree.body:
        return False
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(
            node.value, ast.Constant | ast.Name | ast.Attribute | ast.List | ast.Tuple | ast.Set | ast.Dict
        ):
            continue
        # ``Thought: something`` parses as an annotation without a value.
        if isinstance(node, ast.AnnAssign) and node.value is None:
            continue
        return True
    return False


def _clean_block(block: str) -> str:
    """Tidy one extracted block: inner fences, markers, a hallucinated observation, common indentation."""
    block = block.replace(_END_CODE, "")
    m = _HALLUCINATED_OBSERVATION.search(block)
    # Cut an invented observation off an unclosed block, but never a line of a string the code holds.
    if m is not None and m.start() > 0 and not _parses(block) and _parses(block[: m.start()]):
        block = block[: m.start()]
    lines = block.strip("\n").split("\n")
    # A Markdown fence nested in a tag block (<code>\n```python\n...\n```\n</code>), or a language name
    # right after the opening tag (<code>python\n...).
    if lines and (_FENCE_OPEN.match(lines[0]) or lines[0].strip().lower() in _PYTHON_LABELS):
        lines = lines[1:]
    if lines and lines[-1].strip() and set(lines[-1].strip()) <= {"`", "~"}:
        lines = lines[:-1]  # a stray closing fence before the closing tag
    return textwrap.dedent("\n".join(lines)).strip()


def _from_markdown(text: str) -> list[str]:
    blocks = _markdown_blocks(text)
    python = [body for label, body in blocks if label in _PYTHON_LABELS]
    if python:
        return python
    unlabelled = [body for label, body in blocks if not label]
    # Unlabelled fences may hold sample output or data; keep the ones that are code, else let the
    # executor report the syntax error of whatever the model meant as code.
    code = [body for body in unlabelled if _looks_like_code(_clean_block(body))]
    return code or unlabelled


def _after_code_heading(text: str) -> list[str]:
    """``Code:`` on its own line followed by unfenced code (old ReAct format)."""
    m = re.search(r"^[ \t]*(?:\*\*)?Code(?:\*\*)?:?(?:\*\*)?[ \t]*\n", text, re.MULTILINE)
    if m is None:
        return []
    rest = text[m.end() :]
    return [rest] if _looks_like_code(_clean_block(rest)) else []


def _bare_python(text: str) -> str | None:
    """The reply is plain Python, maybe after a thought or before a remark, with no fence at all."""
    if _looks_like_code(text):
        return text
    lines = text.strip().split("\n")
    if len(lines) > 300:  # the line search below is quadratic; long replies have fences anyway
        return None
    for start in range(1, len(lines)):  # prose first, then code to the end
        if lines[start][:1].isspace():
            continue
        candidate = "\n".join(lines[start:])
        if _looks_like_code(candidate):
            return candidate
    for stop in range(len(lines) - 1, 0, -1):  # code first, then prose to the end
        candidate = "\n".join(lines[:stop])
        if _looks_like_code(candidate):
            return candidate
    return None


def _no_code_message(text: str, tags: tuple[str, str]) -> str:
    opening, closing = tags
    if not text.strip():
        problem = "The model's reply was empty: it contained no code."
    else:
        labels = sorted(
            {label for label, _ in _markdown_blocks(text) if label and label not in _PYTHON_LABELS}
        )
        found = f" (found only {', '.join(labels)} blocks, which are not Python)" if labels else ""
        problem = f"No Python code block found in the reply{found}."
    lowered = text.lower()
    json_call = _json_call_as_code(text)
    if json_call:
        example = json_call
        hint = "Tools are Python functions here: call them in code instead of writing JSON:"
    elif "final answer" in lowered or "final_answer" in lowered:
        example = 'final_answer("your answer")'
        hint = "To give the final answer, call final_answer in code:"
    else:
        example = "result = 2 + 2\nprint(result)"
        hint = "Write one short thought, then your code, exactly like this:"
    message = (
        f"{problem} Put the code between the tags {opening} and {closing}. {hint}\n"
        f"Thought: <one line on what the code does>\n{opening}\n{example}\n{closing}"
    )
    if text.strip():
        message += f"\nYour reply was:\n{reply_excerpt(text)}"
    return message


def _json_call_as_code(text: str) -> str | None:
    """A JSON tool call the model wrote instead of code, rewritten as the Python call it meant."""
    if "{" not in text:
        return None
    try:
        calls = parse_json_tool_calls(text)
    except AgentParsingError:
        return None
    lines = []
    for call in calls:
        args = call["arguments"]
        if isinstance(args, dict) and all(isinstance(k, str) and k.isidentifier() for k in args):
            lines.append(f"{call['name']}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
        else:
            lines.append(f"{call['name']}({args!r})")
    return "\n".join(lines)


def _strip_dangling_closing(text: str, tags: tuple[str, str]) -> str:
    """Drop a closing tag that ends the reply without any opening tag.

    The loop appends the closing tag when the stop sequence cut it off, also to replies that used another
    style (```python fences, or bare code); left in place it would end up inside the code.
    """
    for opening, closing in (tags, DEFAULT_CODE_BLOCK_TAGS):
        stripped = text.rstrip()
        if stripped.endswith(closing) and opening not in text:
            text = stripped[: -len(closing)]
    return text


def extract_code_from_text(text: str, code_block_tags: tuple[str, str] | str | None = None) -> str:
    """Return the Python code in a model reply; several blocks are joined in order, to run in order.

    Tried in turn: the agent's ``code_block_tags`` (default ``<code>``/``</code>``), the other tag style,
    Markdown fences (Python-labelled first, else unlabelled blocks that are code), a ``Code:`` heading,
    then a reply that is plain Python. Raises :class:`CodeParsingError` (an AgentParsingError) when none
    holds code, with a message that shows the expected tags and an example.
    """
    tags = resolve_code_block_tags(code_block_tags)
    original = _strip_think((text or "").replace("\r\n", "\n"))
    source = _strip_dangling_closing(original, tags)
    # A model that ignored the stop sequence goes on with an invented observation and more steps; those
    # steps rely on results it never saw, so only the code before the first such observation runs.
    code = _code_blocks(source, tags)
    for m in _HALLUCINATED_OBSERVATION.finditer(source):
        head = _code_blocks(source[: m.start()], tags)
        # Only a cut between blocks counts: one inside a block (a string in the code) changes that block.
        if head and head == code[: len(head)]:
            return "\n\n".join(head)
    if code:
        return "\n\n".join(code)
    bare = _bare_python(_clean_block(source)) if source.strip() else None
    if bare is not None:
        return bare.strip()
    raise CodeParsingError(_no_code_message(original, tags))


def _code_blocks(source: str, tags: tuple[str, str]) -> list[str]:
    """The cleaned, non-empty code blocks of ``source`` in order, by the first style that has any."""
    blocks: list[str] = []
    for opening, closing in (tags, DEFAULT_CODE_BLOCK_TAGS):
        if opening.startswith(("```", "~~~")):
            continue  # fenced tags are handled by the Markdown scanner, which knows labels
        blocks = _blocks_between_tags(source, opening, closing)
        if blocks:
            break
    if not blocks:
        blocks = _from_markdown(source)
    if not blocks:
        blocks = _after_code_heading(source)
    return [c for c in (_clean_block(b) for b in blocks) if c]


def parse_code_blobs(text: str, code_block_tags: tuple[str, str] | str | None = None) -> str:
    """smolagents-compatible name for :func:`extract_code_from_text` (raises a ValueError subclass)."""
    return extract_code_from_text(text, code_block_tags)


# ----------------------------------------------------------------------------------------------------------
# Tool calls written as JSON in text
# ----------------------------------------------------------------------------------------------------------

# The model-layer parser (shared with Model.parse_tool_calls) finds and leniently decodes the JSON; what is
# agent-specific here is the ReAct ``action``/``action_input`` shape, <tool_call> tags, <think> sections and
# an error message written for the model.
_NAME_KEYS = ("name", "tool_name", "action", "tool", "function_name", "function")
_ARG_KEYS = ("arguments", "tool_arguments", "action_input", "parameters", "args", "input", "tool_input")
_TOOL_CALL_TAG = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
# LangChain-style ReAct text: "Action: tool_name" then "Action Input: {...}" (or a plain string).
_REACT_ACTION = re.compile(
    r"^[ \t]*Action[ \t]*:[ \t]*`?([A-Za-z_][\w.-]*)`?[ \t]*\n[ \t]*Action[ \t]+Input[ \t]*:[ \t]*(.*?)"
    r"(?=^[ \t]*(?:Observation|Thought|Action)[ \t]*:|\Z)",
    re.MULTILINE | re.DOTALL,
)
_JSON_EXAMPLE = '{"name": "web_search", "arguments": {"query": "population of Paris"}}'


def _calls_from_value(value: Any) -> list[dict[str, Any]]:
    """The tool calls a parsed JSON value describes (empty when it describes none)."""
    if isinstance(value, list):
        return [call for item in value for call in _calls_from_value(item)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("tool_calls"), list):
        return _calls_from_value(value["tool_calls"])
    name_key = next((k for k in _NAME_KEYS if k in value), None)
    if name_key is None:
        return []
    name = value[name_key]
    if isinstance(name, dict):  # OpenAI shape: {"type": "function", "function": {"name", "arguments"}}
        return _calls_from_value(name)
    if not isinstance(name, str) or not name.strip():
        return []
    arg_key = next((k for k in _ARG_KEYS if k in value), None)
    arguments: Any = value[arg_key] if arg_key else {}
    arguments = parse_arguments(arguments)  # JSON in a string is decoded; a plain string stays
    if arguments is None:
        arguments = {}
    call: dict[str, Any] = {"name": name.strip(), "arguments": arguments}
    if isinstance(value.get("id"), str):
        call["id"] = value["id"]
    return [call]


def _react_calls(text: str) -> list[dict[str, Any]]:
    calls = []
    for m in _REACT_ACTION.finditer(text):
        raw = m.group(2).strip().strip("`").strip()
        values = extract_json_values(raw) if raw[:1] in "{[" else []
        arguments: Any = values[0] if values else raw.strip('"')
        calls.append({"name": m.group(1), "arguments": arguments})
    return calls


def _json_candidates(text: str) -> list[str]:
    tagged = [m.group(1) for m in _TOOL_CALL_TAG.finditer(text)]
    return tagged or [text]  # Hermes/Qwen write <tool_call>{...}</tool_call>


def _first_json_error(text: str) -> str | None:
    """Why the first bracketed span in ``text`` is not JSON (for the model), or None when there is none."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    span = text[min(starts) :]
    try:
        json.JSONDecoder().raw_decode(span)
    except json.JSONDecodeError as e:
        return f"{e.msg} at line {e.lineno} column {e.colno} of {reply_excerpt(span, 200)!r}"
    return None


def parse_json_tool_calls(text: str) -> list[dict[str, Any]]:
    """Tool calls a model wrote as JSON in its text, as ``[{"name": str, "arguments": Any}, ...]``.

    Accepts fenced or bare JSON with prose around it, ``<tool_call>`` tags, trailing commas, Python
    literals, several calls (a list, or several objects), and the shapes ``{"name", "arguments"}``,
    ``{"tool_name", "tool_arguments"}``, ``{"action", "action_input"}`` and OpenAI's
    ``{"function": {"name", "arguments"}}``. String arguments holding JSON are decoded. Raises
    AgentParsingError saying what was expected when no call can be read.
    """
    source = _strip_think(text or "")
    values = [v for candidate in _json_candidates(source) for v in extract_json_values(candidate)]
    calls = [call for value in values for call in _calls_from_value(value)]
    if calls:
        return calls
    react = _react_calls(source)
    if react:
        return react
    expected = f"Expected a tool call as a JSON object with the tool name and its arguments, for example:\n{_JSON_EXAMPLE}"
    keys = sorted({k for v in values if isinstance(v, dict) for k in v})
    decode_error = None if values else _first_json_error(source)
    if keys:
        problem = (
            f"The JSON in the reply names no tool (its keys are {keys}); use the keys 'name' and 'arguments'."
        )
    elif values:
        problem = "The JSON in the reply holds no tool call."
    elif decode_error:
        problem = f"The tool call is not valid JSON: {decode_error}."
    elif not source.strip():
        problem = "The model's reply was empty: it held no tool call."
    else:
        problem = "No tool call found in the reply."
    message = f"{problem}\n{expected}"
    if source.strip():
        message += f"\nYour reply was:\n{reply_excerpt(source)}"
    raise AgentParsingError(message)

"""The answer in the model's closing "answer now" reply (the call made after ``max_steps``).

Layer 5 (agents). That call asks for a plain answer, but a model that spent the run replying in a structured
format often keeps to it: a structured CodeAgent's model answers ``{"thought": ..., "code":
"final_answer(42)"}``, a ToolCallingAgent's model a ``{"name": "final_answer", "arguments": {...}}`` call.
smolagents returns such a reply as it is, so the caller gets JSON text instead of the answer. Here a reply
of exactly one of those shapes gives the answer it carries; any other reply (plain text, JSON of another
shape, code whose answer is not a literal) is returned unchanged: nothing is guessed or executed.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from ..errors import AgentParsingError
from .parsing import extract_code_from_text

__all__ = ["answer_from_final_reply"]

_FENCED_JSON = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)
_NO_ANSWER = object()


def answer_from_final_reply(text: Any) -> Any:
    """The answer carried by a structured "answer now" reply, else ``text`` unchanged."""
    if not isinstance(text, str):
        return text
    data = _leading_json_object(text)
    if data is None:
        return text
    answer: Any = _NO_ANSWER
    if set(data) <= {"thought", "code"} and isinstance(data.get("code"), str):
        try:  # as a structured step reads its code: tags or fences inside the string are allowed
            code = extract_code_from_text(data["code"]) or data["code"]
        except AgentParsingError:
            code = data["code"]
        answer = _literal_final_answer(code)
    elif data.get("name") == "final_answer" and set(data) <= {"name", "arguments", "id", "type"}:
        arguments = data.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = {"answer": arguments}
        if isinstance(arguments, dict) and set(arguments) == {"answer"}:
            answer = arguments["answer"]
    return text if answer is _NO_ANSWER else answer


def _leading_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object the reply starts with (in a ```json fence or not); the rest of the reply is what a
    model that runs on writes after its action (an invented observation...), and is ignored."""
    fenced = _FENCED_JSON.match(text)
    body = fenced.group(1) if fenced else text.lstrip()
    if not body.startswith("{"):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _literal_final_answer(code: str) -> Any:
    """The literal argument of a ``final_answer(...)`` call that is the code's last statement."""
    try:
        tree = ast.parse(code.strip())
    except SyntaxError:
        return _NO_ANSWER
    last = tree.body[-1] if tree.body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        return _NO_ANSWER
    call = last.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "final_answer"):
        return _NO_ANSWER
    arguments = list(call.args) + [k.value for k in call.keywords if k.arg == "answer"]
    if len(arguments) != 1 or len(call.args) + len(call.keywords) != 1:
        return _NO_ANSWER
    try:
        return ast.literal_eval(arguments[0])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_ANSWER

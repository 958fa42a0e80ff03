"""Action parsing against a corpus of messy replies, in the shapes GPT, Claude, Llama, Qwen and Gemini
models really produce. Each case states the exact code the agent must run, or the exact observation
the model must be shown."""

from __future__ import annotations

import pytest

from codeloop.agents.parsing import (
    CodeParsingError,
    extract_code_from_text,
    parse_code_blobs,
    parse_json_tool_calls,
    resolve_code_block_tags,
)
from codeloop.errors import AgentParsingError

FENCE = "```"

# (id, reply, code_block_tags, expected code)
CODE_CASES: list[tuple[str, str, object, str]] = [
    (
        "smolagents-default-tags",
        "Thought: I need to multiply the numbers and return the result.\n<code>\nresult = 5 * 3\n"
        "final_answer(result)\n</code>",
        None,
        "result = 5 * 3\nfinal_answer(result)",
    ),
    (
        "stop-sequence-cut-closing-tag",
        'Thought: Let me search for the population first.\n<code>\nres = web_search(query="Paris population")\n'
        "print(res)\n",
        None,
        'res = web_search(query="Paris population")\nprint(res)',
    ),
    (
        "react-code-heading-end-code",
        "Thought: I will use the tool `search` to find the date.\nCode:\n```py\n"
        'date = search(query="first moon landing date")\nprint(date)\n```<end_code>',
        None,
        'date = search(query="first moon landing date")\nprint(date)',
    ),
    (
        "gpt4o-python-fence-prose-after",
        "Let me calculate this step by step.\n\n```python\nx = 2 ** 10\nprint(x)\n```\n\n"
        "This will print 1024, which I'll then use for the final answer.",
        None,
        "x = 2 ** 10\nprint(x)",
    ),
    (
        "bare-fence",
        "```\nimport math\nprint(math.sqrt(2))\n```",
        None,
        "import math\nprint(math.sqrt(2))",
    ),
    (
        "missing-closing-fence",
        "I'll greet the user.\n```python\nprint('hi')\nfinal_answer('hi')\n",
        None,
        "print('hi')\nfinal_answer('hi')",
    ),
    (
        "two-python-blocks-run-in-order",
        "First I define a helper:\n```python\ndef double(x):\n    return x * 2\n```\nThen I use it:\n"
        "```python\nprint(double(21))\n```",
        None,
        "def double(x):\n    return x * 2\n\nprint(double(21))",
    ),
    (
        "json-sample-in-thought-before-code",
        'Thought: The last observation was:\n```json\n{"temperature": 21, "unit": "C"}\n```\n'
        "I'll convert it to Fahrenheit.\n```python\nf = 21 * 9 / 5 + 32\nfinal_answer(f)\n```",
        None,
        "f = 21 * 9 / 5 + 32\nfinal_answer(f)",
    ),
    (
        "inline-triple-backticks-in-thought",
        "Thought: I'll call ```wiki``` again with a better query.\n<code>\n"
        'page = wiki(query="Eiffel Tower height")\nprint(page)\n</code>',
        None,
        'page = wiki(query="Eiffel Tower height")\nprint(page)',
    ),
    (
        "custom-markdown-tags",
        "Thought: compute the mean.\n```python\nimport statistics\nprint(statistics.mean([1, 2, 3]))\n```",
        ("```python", "```"),
        "import statistics\nprint(statistics.mean([1, 2, 3]))",
    ),
    (
        "markdown-option-but-model-used-code-tags",
        "Thought: done.\n<code>\nfinal_answer(42)\n</code>",
        "markdown",
        "final_answer(42)",
    ),
    (
        "smolagents-regex-tags",
        "Thought: go.\n```py\nprint('regex tags')\n```",
        ("```(?:python|py)", "\n```"),
        "print('regex tags')",
    ),
    (
        "custom-xml-tags",
        "Thought: add.\n<python>\ntotal = 1 + 2\nprint(total)\n</python>",
        ("<python>", "</python>"),
        "total = 1 + 2\nprint(total)",
    ),
    (
        "pure-python-no-fence",
        "result = sum(range(10))\nfinal_answer(result)",
        None,
        "result = sum(range(10))\nfinal_answer(result)",
    ),
    (
        "thought-then-unfenced-code",
        "Thought: I will compute the sum now.\nresult = sum([1, 2, 3])\nfinal_answer(result)",
        None,
        "result = sum([1, 2, 3])\nfinal_answer(result)",
    ),
    (
        "unfenced-code-then-remark",
        "print(len('hello'))\nThis prints the length of the word.",
        None,
        "print(len('hello'))",
    ),
    (
        "qwen-think-section-ignored",
        "<think>\nMaybe I could do\n```python\nx = 1\n```\nbut the tool is better.\n</think>\n"
        "Thought: use the tool.\n<code>\nfinal_answer(lookup('x'))\n</code>",
        None,
        "final_answer(lookup('x'))",
    ),
    (
        "claude-hallucinated-observation-after-close",
        "I'll start by searching.\n\nThought: Search for the population.\n<code>\n"
        'pop = web_search("Paris population 2024")\nprint(pop)\n</code>\n\nObservation: 2.1 million',
        None,
        'pop = web_search("Paris population 2024")\nprint(pop)',
    ),
    (
        "llama-end-code-then-observation",
        "```python\nprint(1 + 1)\n```<end_code>\nObservation: 2",
        None,
        "print(1 + 1)",
    ),
    (
        "unclosed-code-runs-into-invented-observation",
        "Thought: print it.\n<code>\nprint(2)\nObservation:\n2\n",
        None,
        "print(2)",
    ),
    (
        "fence-nested-in-code-tags",
        "Thought: nested.\n<code>\n```python\nprint(3)\n```\n</code>",
        None,
        "print(3)",
    ),
    (
        "language-name-after-code-tag",
        "Thought: label.\n<code>python\nprint('labelled')\n</code>",
        None,
        "print('labelled')",
    ),
    (
        "stray-closing-fence-before-closing-tag",
        "Thought: stray.\n<code>\nprint('stray')\n```\n</code>",
        None,
        "print('stray')",
    ),
    (
        "indented-block",
        "Here you go:\n```python\n    x = 4\n    if x:\n        print(x)\n```",
        None,
        "x = 4\nif x:\n    print(x)",
    ),
    (
        "code-heading-without-fence",
        "Thought: add the numbers.\nCode:\nx = 1 + 1\nfinal_answer(x)\n<end_code>",
        None,
        "x = 1 + 1\nfinal_answer(x)",
    ),
    (
        "closing-fence-glued-to-code",
        "```py\nfinal_answer('done')```",
        None,
        "final_answer('done')",
    ),
    (
        "code-tag-mentioned-in-thought",
        "Thought: I must put my code in <code> tags this time.\n<code>\nprint(4)\n</code>",
        None,
        "print(4)",
    ),
    (
        "several-code-tag-blocks",
        "Thought: two parts.\n<code>\na = 1\n</code>\nAnd then:\n<code>\nprint(a + 1)\n</code>",
        None,
        "a = 1\n\nprint(a + 1)",
    ),
    (
        "capitalised-label",
        "```Python\nname = 'Ada'\nprint(name.upper())\n```",
        None,
        "name = 'Ada'\nprint(name.upper())",
    ),
    (
        "four-backtick-fence-holding-triple-backticks",
        '````python\ns = "```"\nprint(s)\n````',
        None,
        's = "```"\nprint(s)',
    ),
    (
        "unlabelled-output-sample-then-code",
        "The list is:\n```\n[1, 2, 3]\n```\nso I sum it:\n```\nprint(sum([1, 2, 3]))\n```",
        None,
        "print(sum([1, 2, 3]))",
    ),
    (
        "gemini-tool-code-label",
        "```tool_code\nprint(get_weather(city='Oslo'))\n```",
        None,
        "print(get_weather(city='Oslo'))",
    ),
    (
        "bold-code-heading-markdown",
        "**Thought:** I need the date.\n\n**Code:**\n```python\nimport datetime\nprint(datetime.date.today())\n```",
        None,
        "import datetime\nprint(datetime.date.today())",
    ),
    (
        "windows-line-endings",
        "Thought: crlf.\r\n<code>\r\nprint('x')\r\nfinal_answer('x')\r\n</code>\r\n",
        None,
        "print('x')\nfinal_answer('x')",
    ),
    (
        "python-fence-preferred-over-bash",
        "Install first:\n```bash\npip install requests\n```\nThen:\n```python\nimport requests\nprint(requests)\n```",
        None,
        "import requests\nprint(requests)",
    ),
    (
        "code-tags-with-multiline-string-holding-fence",
        'Thought: write a readme.\n<code>\ntext = """\n```python\nprint(1)\n```\n"""\nfinal_answer(text)\n</code>',
        None,
        'text = """\n```python\nprint(1)\n```\n"""\nfinal_answer(text)',
    ),
    (
        "loop-appended-closing-tag-after-fence",
        "Thought: sum.\n```python\nprint(sum([1, 2]))\n```</code>",
        None,
        "print(sum([1, 2]))",
    ),
    (
        "loop-appended-closing-tag-to-unclosed-fence",
        "Thought: sum.\n```python\nprint(sum([1, 2]))\n</code>",
        None,
        "print(sum([1, 2]))",
    ),
    (
        "loop-appended-closing-tag-to-bare-code",
        "final_answer(3)</code>",
        None,
        "final_answer(3)",
    ),
    (
        "loop-appended-fence-to-code-tags-with-markdown-option",
        "Thought: x.\n<code>\nprint('a')\n</code>```",
        "markdown",
        "print('a')",
    ),
    (
        "loop-appended-fence-to-bare-code-with-markdown-option",
        "x = 5\nfinal_answer(x)```",
        "markdown",
        "x = 5\nfinal_answer(x)",
    ),
    (
        "stop-sequence-ignored-invented-observation-and-next-step",
        "Thought: compute.\n<code>\nx = 2\nprint(x)\n</code>\nObservation: 2\nThought: done.\n<code>\n"
        "final_answer(x)\n</code>",
        None,
        "x = 2\nprint(x)",
    ),
    (
        "observation-line-inside-a-string-of-the-code",
        'Thought: report.\n<code>\nreport = """\nObservation: all good\nExecution logs: none\n"""\n'
        "final_answer(report)\n</code>",
        None,
        'report = """\nObservation: all good\nExecution logs: none\n"""\nfinal_answer(report)',
    ),
    (
        "unclosed-block-with-observation-in-string",
        'Thought: r.\n<code>\nr = """\nObservation: fine\n"""\nprint(r)\n',
        None,
        'r = """\nObservation: fine\n"""\nprint(r)',
    ),
    (
        "output-heading-in-thought-before-code",
        "Output: I will print a greeting.\n```python\nprint('hello')\n```",
        None,
        "print('hello')",
    ),
]

# (id, reply, code_block_tags, exact observation)
ERROR_CASES: list[tuple[str, str, object, str]] = [
    (
        "prose-only",
        "I think the answer is 42.",
        None,
        "No Python code block found in the reply. Put the code between the tags <code> and </code>. "
        "Write one short thought, then your code, exactly like this:\n"
        "Thought: <one line on what the code does>\n<code>\nresult = 2 + 2\nprint(result)\n</code>\n"
        "Your reply was:\nI think the answer is 42.",
    ),
    (
        "final-answer-in-prose",
        "The final answer is Paris.",
        None,
        "No Python code block found in the reply. Put the code between the tags <code> and </code>. "
        "To give the final answer, call final_answer in code:\n"
        'Thought: <one line on what the code does>\n<code>\nfinal_answer("your answer")\n</code>\n'
        "Your reply was:\nThe final answer is Paris.",
    ),
    (
        "empty-reply",
        "   \n",
        None,
        "The model's reply was empty: it contained no code. Put the code between the tags <code> and </code>. "
        "Write one short thought, then your code, exactly like this:\n"
        "Thought: <one line on what the code does>\n<code>\nresult = 2 + 2\nprint(result)\n</code>",
    ),
    (
        "only-a-bash-block-markdown-tags",
        "Run this:\n```bash\npip install x\n```",
        "markdown",
        "No Python code block found in the reply (found only bash blocks, which are not Python). "
        "Put the code between the tags ```python and ```. "
        "Write one short thought, then your code, exactly like this:\n"
        "Thought: <one line on what the code does>\n```python\nresult = 2 + 2\nprint(result)\n```\n"
        "Your reply was:\nRun this:\n```bash\npip install x\n```",
    ),
    (
        "json-tool-call-instead-of-code",
        '{"name": "web_search", "arguments": {"query": "tallest tower"}}',
        None,
        "No Python code block found in the reply. Put the code between the tags <code> and </code>. "
        "Tools are Python functions here: call them in code instead of writing JSON:\n"
        "Thought: <one line on what the code does>\n<code>\nweb_search(query='tallest tower')\n</code>\n"
        'Your reply was:\n{"name": "web_search", "arguments": {"query": "tallest tower"}}',
    ),
    (
        "single-word",
        "Hello",
        None,
        "No Python code block found in the reply. Put the code between the tags <code> and </code>. "
        "Write one short thought, then your code, exactly like this:\n"
        "Thought: <one line on what the code does>\n<code>\nresult = 2 + 2\nprint(result)\n</code>\n"
        "Your reply was:\nHello",
    ),
    (
        "thought-heading-only",
        "Thought: I should look this up first",
        None,
        "No Python code block found in the reply. Put the code between the tags <code> and </code>. "
        "Write one short thought, then your code, exactly like this:\n"
        "Thought: <one line on what the code does>\n<code>\nresult = 2 + 2\nprint(result)\n</code>\n"
        "Your reply was:\nThought: I should look this up first",
    ),
]


@pytest.mark.parametrize(
    ("reply", "tags", "expected"), [c[1:] for c in CODE_CASES], ids=[c[0] for c in CODE_CASES]
)
def test_code_corpus(reply: str, tags: object, expected: str) -> None:
    assert extract_code_from_text(reply, tags) == expected


@pytest.mark.parametrize(
    ("reply", "tags", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_error_corpus(reply: str, tags: object, expected: str) -> None:
    with pytest.raises(AgentParsingError) as info:
        extract_code_from_text(reply, tags)
    assert str(info.value) == expected


def test_corpus_size() -> None:
    assert len(CODE_CASES) + len(ERROR_CASES) >= 30
    assert len({c[0] for c in CODE_CASES + ERROR_CASES}) == len(CODE_CASES) + len(ERROR_CASES)


def test_parse_code_blobs_is_compatible() -> None:
    assert parse_code_blobs("<code>\nprint(1)\n</code>", ("<code>", "</code>")) == "print(1)"
    # smolagents callers catch ValueError; codeloop's loop catches AgentParsingError: both work.
    with pytest.raises(ValueError):
        parse_code_blobs("no code here at all", ("<code>", "</code>"))
    with pytest.raises(CodeParsingError):
        parse_code_blobs("no code here at all", ("<code>", "</code>"))


def test_long_reply_excerpt_is_cut() -> None:
    reply = "word " * 2000
    with pytest.raises(AgentParsingError) as info:
        extract_code_from_text(reply)
    message = str(info.value)
    assert "characters cut" in message
    assert len(message) < 1200


def test_resolve_code_block_tags() -> None:
    assert resolve_code_block_tags(None) == ("<code>", "</code>")
    assert resolve_code_block_tags("markdown") == ("```python", "```")
    assert resolve_code_block_tags(["<py>", "</py>"]) == ("<py>", "</py>")
    with pytest.raises(ValueError, match="'markdown'"):
        resolve_code_block_tags("html")
    with pytest.raises(ValueError, match="pair"):
        resolve_code_block_tags(("<a>",))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# JSON tool calls in text (ToolCallingAgent with a model that has no native tool calling)
# ----------------------------------------------------------------------------------------------------------

JSON_CASES: list[tuple[str, str, list[dict]]] = [
    (
        "plain-name-arguments",
        '{"name": "web_search", "arguments": {"query": "Paris"}}',
        [{"name": "web_search", "arguments": {"query": "Paris"}}],
    ),
    (
        "fenced-with-prose",
        'I will search for it.\n```json\n{"name": "web_search", "arguments": {"query": "Paris"}}\n```\nLet me know.',
        [{"name": "web_search", "arguments": {"query": "Paris"}}],
    ),
    (
        "smolagents-action-shape",
        'Action:\n{\n  "action": "final_answer",\n  "action_input": {"answer": "insert final answer"}\n}',
        [{"name": "final_answer", "arguments": {"answer": "insert final answer"}}],
    ),
    (
        "action-input-plain-string",
        '{"action": "final_answer", "action_input": "Paris"}',
        [{"name": "final_answer", "arguments": "Paris"}],
    ),
    (
        "tool-name-tool-arguments-trailing-commas",
        '{"tool_name": "get_weather", "tool_arguments": {"city": "Oslo", "unit": "C",},}',
        [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}],
    ),
    (
        "list-of-calls",
        '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]',
        [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}],
    ),
    (
        "several-objects-in-prose",
        'First {"name": "a", "arguments": {"n": 1}} then {"name": "b", "arguments": {"n": 2}}.',
        [{"name": "a", "arguments": {"n": 1}}, {"name": "b", "arguments": {"n": 2}}],
    ),
    (
        "hermes-tool-call-tags",
        '<tool_call>\n{"name": "lookup", "arguments": {"id": 7}}\n</tool_call>\n'
        '<tool_call>\n{"name": "lookup", "arguments": {"id": 8}}\n</tool_call>',
        [{"name": "lookup", "arguments": {"id": 7}}, {"name": "lookup", "arguments": {"id": 8}}],
    ),
    (
        "openai-function-shape-string-arguments",
        '{"type": "function", "function": {"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}}',
        [{"name": "add", "arguments": {"a": 1, "b": 2}}],
    ),
    (
        "python-literals-and-braces-in-strings",
        '{"name": "note", "arguments": {"text": "use {braces} and ] here", "urgent": True, "tag": None}}',
        [{"name": "note", "arguments": {"text": "use {braces} and ] here", "urgent": True, "tag": None}}],
    ),
    (
        "single-quoted-python-dict",
        "{'name': 'final_answer', 'arguments': {'answer': 3}}",
        [{"name": "final_answer", "arguments": {"answer": 3}}],
    ),
    (
        "think-section-ignored",
        '<think>maybe {"name": "wrong", "arguments": {}}</think>{"name": "right", "arguments": {}}',
        [{"name": "right", "arguments": {}}],
    ),
    (
        "langchain-react-action-input-json",
        'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Oslo"}\nObservation:',
        [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
    ),
    (
        "langchain-react-action-input-string",
        "Thought: I know it.\nAction: final_answer\nAction Input: Paris is the capital.",
        [{"name": "final_answer", "arguments": "Paris is the capital."}],
    ),
    (
        "tool-calls-wrapper",
        '{"tool_calls": [{"id": "call_1", "name": "a", "arguments": {"q": "x"}}]}',
        [{"name": "a", "arguments": {"q": "x"}, "id": "call_1"}],
    ),
]

JSON_ERROR_CASES: list[tuple[str, str, str]] = [
    (
        "no-json",
        "I don't know which tool to use.",
        "No tool call found in the reply.\nExpected a tool call as a JSON object with the tool name and its "
        'arguments, for example:\n{"name": "web_search", "arguments": {"query": "population of Paris"}}\n'
        "Your reply was:\nI don't know which tool to use.",
    ),
    (
        "json-without-tool-name",
        '{"query": "Paris"}',
        "The JSON in the reply names no tool (its keys are ['query']); use the keys 'name' and 'arguments'.\n"
        "Expected a tool call as a JSON object with the tool name and its arguments, for example:\n"
        '{"name": "web_search", "arguments": {"query": "population of Paris"}}\n'
        'Your reply was:\n{"query": "Paris"}',
    ),
    (
        "broken-json",
        '{"name": "web_search", "arguments": {"query": "Paris" "limit": 3}}',
        "The tool call is not valid JSON: Expecting ',' delimiter at line 1 column 55 of "
        '\'{"name": "web_search", "arguments": {"query": "Paris" "limit": 3}}\'.\n'
        "Expected a tool call as a JSON object with the tool name and its arguments, for example:\n"
        '{"name": "web_search", "arguments": {"query": "population of Paris"}}\n'
        'Your reply was:\n{"name": "web_search", "arguments": {"query": "Paris" "limit": 3}}',
    ),
]


@pytest.mark.parametrize(("reply", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_json_tool_calls(reply: str, expected: list[dict]) -> None:
    assert parse_json_tool_calls(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"), [c[1:] for c in JSON_ERROR_CASES], ids=[c[0] for c in JSON_ERROR_CASES]
)
def test_json_tool_call_errors(reply: str, expected: str) -> None:
    with pytest.raises(AgentParsingError) as info:
        parse_json_tool_calls(reply)
    assert str(info.value) == expected

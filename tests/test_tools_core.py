"""Tool calling (sync, async, in a running loop), setup, sanitizing, prompts, to_dict, builtins, collections."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import subprocess
import sys
import threading
import time

import pytest

from codeloop.errors import ToolDefinitionError
from codeloop.tools import AgentText, FinalAnswerTool, Tool, ToolCollection, UserInputTool, load_tool, tool


@tool
async def slow_double(x: int, delay: float = 0.0) -> int:
    """Double a number after a pause.

    Args:
        x: The number.
        delay: Seconds to wait first.
    """
    await asyncio.sleep(delay)
    return 2 * x


@tool
def blocking_sleep(seconds: float) -> str:
    """Sleep in the calling thread.

    Args:
        seconds: How long.
    """
    time.sleep(seconds)
    return threading.current_thread().name


# --------------------------------------------------------------------------- async and sync calling


def test_async_tool_called_from_sync_code():
    assert slow_double(4) == 8
    assert slow_double(x=5, delay=0.001) == 10


async def test_async_tool_acall_from_running_loop():
    assert await slow_double.acall(3) == 6
    results = await asyncio.gather(*(slow_double.acall(i, delay=0.05) for i in range(10)))
    assert results == [2 * i for i in range(10)]


async def test_sync_call_of_async_tool_inside_running_loop():
    # A sync caller inside a running loop (e.g. code run by an executor on the loop thread) still works.
    assert slow_double(21) == 42


async def test_sync_forward_runs_in_thread_and_does_not_block_loop():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    name = await blocking_sleep.acall(0.2)
    task.cancel()
    assert name != threading.current_thread().name
    assert ticks >= 5  # the loop kept running while the tool slept


async def test_nonblocking_tool_runs_inline():
    class Inline(Tool):
        name = "inline"
        description = "d"
        inputs = {}
        output_type = "string"
        blocking = False

        def forward(self):
            return threading.current_thread().name

    assert await Inline().acall() == threading.current_thread().name


def test_async_forward_in_subclass():
    class Fetch(Tool):
        name = "fetch"
        description = "d"
        inputs = {"url": {"type": "string", "description": "U."}}
        output_type = "string"

        async def forward(self, url: str) -> str:
            await asyncio.sleep(0)
            return url.upper()

    fetch = Fetch()
    assert fetch("a") == "A"
    assert asyncio.run(fetch.acall("b")) == "B"


# --------------------------------------------------------------------------- setup


class Counting(Tool):
    name = "counting"
    description = "Counts setups."
    inputs = {"x": {"type": "integer", "description": "X."}}
    output_type = "integer"

    def __init__(self):
        super().__init__()
        self.setups = 0

    def setup(self):
        import time  # inside the method, so the class's source can be saved on its own

        time.sleep(0.05)  # long enough for concurrent first calls to overlap
        self.setups += 1

    def forward(self, x: int) -> int:
        return x + self.setups


def test_setup_lazy_and_once():
    counting = Counting()
    assert counting.setups == 0 and not counting.is_initialized
    assert counting(1) == 2
    assert counting(1) == 2
    assert counting.setups == 1 and counting.is_initialized


async def test_setup_once_under_concurrent_acalls():
    counting = Counting()
    results = await asyncio.gather(*(counting.acall(i) for i in range(8)))
    assert counting.setups == 1
    assert results == [i + 1 for i in range(8)]


def test_setup_once_under_threads():
    counting = Counting()
    threads = [threading.Thread(target=counting, args=(1,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counting.setups == 1


# --------------------------------------------------------------------------- sanitize, coercion


def test_sanitize_inputs_outputs():
    @tool
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: T.
        """
        assert type(text) is str
        return text + "!"

    out = echo(AgentText("hi"), sanitize_inputs_outputs=True)
    assert isinstance(out, AgentText) and out == "hi!"
    plain = echo("hi")
    assert type(plain) is str
    assert FinalAnswerTool()(3, sanitize_inputs_outputs=True) == 3


@dataclasses.dataclass
class Box:
    width: float
    height: float = 1.0


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


def test_json_arguments_become_declared_types():
    @tool
    def area(box: Box, shade: Shade, corner: tuple[int, int], boxes: list[Box] | None = None) -> str:
        """Area.

        Args:
            box: A box.
            shade: A shade.
            corner: A corner.
            boxes: More boxes.
        """
        extra = sum(b.width for b in boxes or [])
        return f"{type(box).__name__}:{box.width * box.height}:{shade.name}:{type(corner).__name__}:{extra}"

    assert area({"width": 2.0, "height": 3}, "dark", [1, 2], [{"width": 5}]) == "Box:6.0:DARK:tuple:5"
    assert area(Box(2.0), Shade.LIGHT, (0, 0)) == "Box:2.0:LIGHT:tuple:0"


def test_pydantic_argument_becomes_model():
    pydantic = pytest.importorskip("pydantic")

    class Query(pydantic.BaseModel):
        text: str
        top_k: int = 3

    @tool
    def run_query(query: Query) -> str:
        """Run.

        Args:
            query: The query.
        """
        return f"{type(query).__name__}:{query.text}:{query.top_k}"

    assert run_query({"text": "q"}) == "Query:q:3"
    assert run_query.inputs["query"]["required"] == ["text"]


# --------------------------------------------------------------------------- prompts and dicts


@tool
def get_weather(city: str, unit: str = "celsius", days: int | None = None) -> dict[str, float]:
    """Get the weather forecast.

    Args:
        city: The city name.
        unit: Temperature unit (choices: ["celsius", "fahrenheit"])
        days: Number of days, all when None.

    Returns:
        Temperature per day.
    """
    return {}


def test_to_code_prompt_text():
    assert get_weather.to_code_prompt() == (
        "def get_weather(city: str, unit: Literal['celsius', 'fahrenheit'] = 'celsius', days: int | None = None)"
        " -> dict[str, float]:\n"
        '    """Get the weather forecast.\n'
        "\n"
        "    Args:\n"
        "        city: The city name.\n"
        "        unit: Temperature unit\n"
        "        days: Number of days, all when None.\n"
        "\n"
        "    Returns:\n"
        "        dict[str, float]: Temperature per day.\n"
        '    """'
    )


def test_to_code_prompt_with_output_schema():
    @dataclasses.dataclass
    class Reading:
        value: float
        unit: str

    @tool
    def read(sensor: str) -> Reading:
        """Read a sensor.

        Args:
            sensor: Sensor id.

        Returns:
            The reading.
        """
        return Reading(1.0, "C")

    text = read.to_code_prompt()
    assert text.startswith("def read(sensor: str) -> Reading:\n")
    assert "Reading: The reading. It is a Reading object whose attributes follow this JSON schema" in text
    assert '"required": [\n' in text and '"value"' in text
    assert read.output_schema["required"] == ["value", "unit"]


def test_to_tool_calling_prompt():
    text = FinalAnswerTool().to_tool_calling_prompt()
    assert text == (
        "final_answer: Provides a final answer to the given problem.\n"
        "    Takes inputs: {'answer': {'type': 'any', 'description': 'The final answer to the problem'}}\n"
        "    Returns an output of type: any"
    )


def test_to_tool_schema_of_final_answer():
    schema = FinalAnswerTool().to_tool_schema()
    assert schema == {
        "type": "function",
        "function": {
            "name": "final_answer",
            "description": "Provides a final answer to the given problem.",
            "parameters": {
                "type": "object",
                "properties": {
                    "answer": {"type": "string", "description": "The final answer to the problem"}
                },
                "required": ["answer"],
            },
        },
    }


def test_to_dict_function_tool():
    data = get_weather.to_dict()
    assert data["name"] == "get_weather"
    assert data["output_type"] == "object"
    assert data["inputs"] == get_weather.inputs
    assert data["code"].startswith("@tool\ndef get_weather(")
    assert data["requirements"] == []
    assert "output_schema" not in data


def test_to_dict_subclass_tool():
    data = Counting().to_dict()
    assert data["name"] == "counting" and data["description"] == "Counts setups."
    assert data["code"].startswith("class Counting(Tool):")


# --------------------------------------------------------------------------- builtins and collections


def test_final_answer_tool():
    final = FinalAnswerTool()
    assert final.name == "final_answer"
    assert final.inputs == {"answer": {"type": "any", "description": "The final answer to the problem"}}
    assert final.output_type == "any"
    assert final({"a": 1}) == {"a": 1}
    assert final(answer=None) is None


def test_user_input_tool_pluggable():
    asked = []

    def fake_input(prompt: str) -> str:
        asked.append(prompt)
        return "blue"

    user = UserInputTool(input_fn=fake_input)
    assert user.name == "user_input" and user.output_type == "string"
    assert user(question="Favourite colour?") == "blue"
    assert asked == ["Favourite colour? => Type your answer here:"]


async def test_user_input_tool_async_input_fn():
    async def answer(prompt: str) -> str:
        await asyncio.sleep(0)
        return prompt[:3]

    assert await UserInputTool(input_fn=answer).acall("Why?") == "Why"


def test_user_input_tool_reads_stdin(monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: f"typed after {prompt!r}")
    assert UserInputTool()("Q") == "typed after 'Q => Type your answer here:'"


def test_tool_collection():
    collection = ToolCollection([get_weather, FinalAnswerTool()])
    assert collection.names == ["get_weather", "final_answer"]
    assert len(collection) == 2 and "final_answer" in collection
    assert collection["get_weather"] is get_weather
    assert [t.name for t in collection] == collection.names
    assert collection.tools[0] is get_weather
    with pytest.raises(KeyError, match="No tool named 'nope'"):
        collection["nope"]
    with pytest.raises(ToolDefinitionError, match="two tools named 'final_answer'"):
        ToolCollection([FinalAnswerTool(), FinalAnswerTool()])
    with pytest.raises(ToolDefinitionError, match="Wrap functions with @tool"):
        ToolCollection([len])


def test_tool_collection_remote_sources_say_not_available():
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        with ToolCollection.from_mcp({"url": "http://127.0.0.1:9/mcp"}):
            pass
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # refused before any request
        ToolCollection.from_hub("org/collection")


def test_tool_decorator_with_options():
    @tool(name="sum_two", description="Adds two numbers.")
    def add(a: int, b: int) -> int:
        """Ignored description.

        Args:
            a: A.
            b: B.
        """
        return a + b

    assert add.name == "sum_two" and add.description == "Adds two numbers."
    assert add(2, 3) == 5
    assert repr(add) == "<FunctionTool sum_two(a, b) -> integer>"


def test_import_is_light():
    code = "import sys, codeloop.tools; print(sorted(m for m in ('pydantic', 'openai', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tools_copy_and_pickle():
    import copy
    import pickle

    counting = Counting()
    clone = copy.deepcopy(counting)
    assert clone(1) == 2 and counting.setups == 0
    final = pickle.loads(pickle.dumps(FinalAnswerTool()))
    assert final("x") == "x"
    assert copy.copy(get_weather).name == "get_weather"


def test_round_trip_through_to_dict():
    data = get_weather.to_dict()
    again = Tool.from_dict(data)
    assert again.name == "get_weather" and again.inputs == get_weather.inputs
    assert again.output_type == get_weather.output_type
    assert again.to_code_prompt() == get_weather.to_code_prompt()
    code = (
        "class Shout(Tool):\n"
        "    name = 'shout'\n"
        "    description = 'Upper-case text.'\n"
        "    inputs = {'text': {'type': 'string', 'description': 'T.'}}\n"
        "    output_type = 'string'\n\n"
        "    def forward(self, text):\n"
        "        return text.upper()\n"
    )
    assert Tool.from_code(code)("hey") == "HEY"
    with pytest.raises(ToolDefinitionError, match="must contain 'code' key"):
        Tool.from_dict({"name": "x"})
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # refused before any request
        Tool.from_hub("org/tool")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load_tool("org/tool")


def test_local_types_with_string_annotations():
    @dataclasses.dataclass
    class Item:
        name: str

    @tool
    def pick(item: Item | None, items: list[Item]) -> Item | None:
        """Pick an item.

        Args:
            item: Preferred item.
            items: Candidates.
        """
        return item or (items[0] if items else None)

    assert pick.inputs["item"]["nullable"] is True
    assert pick.inputs["items"]["items"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }
    assert pick.output_schema == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }
    chosen = pick(items=[{"name": "a"}, {"name": "b"}])
    assert isinstance(chosen, Item) and chosen.name == "a"


async def test_blocking_sync_tools_are_not_served_a_few_at_a_time():
    # Twenty concurrent calls of a blocking tool must all be in flight at once: each waits for all the
    # others at a barrier. On the loop's small default thread pool (min(32, cpus + 4) threads, 6 here)
    # the barrier could never fill and every call would fail with BrokenBarrierError.
    import asyncio
    import threading

    barrier = threading.Barrier(20, timeout=10)

    @tool
    def meet(i: int) -> int:
        """Wait for the other callers.

        Args:
            i: Caller number.
        """
        barrier.wait()
        return i

    results = await asyncio.gather(*(meet.acall(i) for i in range(20)))
    assert sorted(results) == list(range(20))

"""Size of codeloop's rendered system prompts next to smolagents' for the same tools.

Run with a Python that has smolagents installed (kept out of the project venv), codeloop on the path:

    PYTHONPATH=. /tmp/smolvenv/bin/python benchmarks/prompt_size.py

Both prompts are rendered with the *same* smolagents tool objects (their ``to_code_prompt`` /
``to_tool_calling_prompt``), so the difference is the template text alone. Tokens are counted with
tiktoken's o200k_base when it can load offline, else estimated as characters / 4.
"""

from __future__ import annotations

import sys


def count_tokens(text: str) -> tuple[int, str]:
    try:
        import tiktoken

        return len(tiktoken.get_encoding("o200k_base").encode(text)), "tiktoken o200k_base"
    except Exception:
        return round(len(text) / 4), "chars/4 estimate"


def search_fn(query: str) -> str:
    """Searches the web and returns the top results as text.

    Args:
        query: What to search for.
    """
    return ""


def weather_fn(city: str, unit: str = "C") -> str:
    """Current weather of a city.

    Args:
        city: Name of the city.
        unit: "C" or "F".
    """
    return ""


def main() -> int:
    try:
        import smolagents
        from smolagents import CodeAgent, Model, ToolCallingAgent, tool
    except ImportError:
        print("smolagents is not importable here; run with /tmp/smolvenv/bin/python (see module docstring).")
        return 1

    from codeloop.agents.prompts import load_prompt_templates, render_system_prompt

    web_search, get_weather = tool(search_fn), tool(weather_fn)

    class NoModel(Model):
        def generate(self, *args, **kwargs):  # never called: only the prompt is rendered
            raise NotImplementedError

    tool_sets = {"no tools": [], "2 tools": [web_search, get_weather]}
    imports = ["math", "statistics"]
    print(f"smolagents {smolagents.__version__}")
    worst = 0.0
    for label, tools in tool_sets.items():
        for kind, cls in (("code", CodeAgent), ("toolcalling", ToolCallingAgent)):
            kwargs = {"additional_authorized_imports": imports} if cls is CodeAgent else {}
            agent = cls(tools=list(tools), model=NoModel(model_id="none"), **kwargs)
            theirs = agent.initialize_system_prompt()
            ours = render_system_prompt(
                load_prompt_templates(kind),
                tools=agent.tools,
                managed_agents={},
                custom_instructions=None,
                authorized_imports=agent.authorized_imports if cls is CodeAgent else None,
                code_block_tags=agent.code_block_tags if cls is CodeAgent else None,
            )
            (t_ours, how), (t_theirs, _) = count_tokens(ours), count_tokens(theirs)
            ratio = len(ours) / len(theirs)
            worst = max(worst, ratio)
            print(
                f"{kind:12s} {label:9s} codeloop {len(ours):6d} chars ~{t_ours:5d} tok | "
                f"smolagents {len(theirs):6d} chars ~{t_theirs:5d} tok | ratio {ratio:.2f} ({how})"
            )
    # Each library end to end: its own agent classes, its own Tool rendering, its own default imports.
    try:
        from codeloop.agents import CodeAgent as ClCodeAgent
        from codeloop.agents import ToolCallingAgent as ClToolCallingAgent
        from codeloop.models import ScriptedModel
        from codeloop.tools import tool as cl_tool
    except ImportError as e:
        print(f"(codeloop agents not importable here: {e})")
    else:
        cl_tools = [cl_tool(search_fn), cl_tool(weather_fn)]
        for kind, theirs_cls, ours_cls in (
            ("code", CodeAgent, ClCodeAgent),
            ("toolcalling", ToolCallingAgent, ClToolCallingAgent),
        ):
            kwargs = {"additional_authorized_imports": imports} if kind == "code" else {}
            theirs = theirs_cls(tools=tool_sets["2 tools"], model=NoModel(model_id="none"), **kwargs)
            ours = ours_cls(tools=cl_tools, model=ScriptedModel(["unused"]), **kwargs)
            a, b = ours.initialize_system_prompt(), theirs.initialize_system_prompt()
            (t_ours, how), (t_theirs, _) = count_tokens(a), count_tokens(b)
            ratio = len(a) / len(b)
            worst = max(worst, ratio)
            print(
                f"{kind:12s} own-agents codeloop {len(a):5d} chars ~{t_ours:5d} tok | "
                f"smolagents {len(b):6d} chars ~{t_theirs:5d} tok | ratio {ratio:.2f} ({how})"
            )
    print(f"largest ratio codeloop/smolagents: {worst:.2f} (target <= 0.80)")
    return 0 if worst <= 0.80 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run by tests_smolagents/ with smolagents 1.26.0's interpreter (.venv-smolagents, no codeloop there).

It loads what codeloop saved and pushed, runs it, pushes a tool of its own, and prints one JSON line of
results. HF_ENDPOINT points at the test's loopback Hub; the saved agents' OpenAIModel at its model server.
"""

import importlib.util
import json
import sys
from pathlib import Path

import smolagents
from smolagents import CodeAgent, Tool, load_tool, tool

assert importlib.util.find_spec("codeloop") is None, "codeloop must not be importable here"
args = json.loads(sys.argv[1])
out: dict = {"version": smolagents.__version__}

# folders codeloop saved: smolagents has no Tool.from_folder; its loaders read tool.py with Tool.from_code
shout = Tool.from_code(Path(args["shout_dir"], "tool.py").read_text())
vowels = Tool.from_code(Path(args["vowels_dir"], "tool.py").read_text())
out["tool_classes"] = [isinstance(t, smolagents.Tool) for t in (shout, vowels)]
out["shout"] = shout(text="hey", times=3)
out["vowels"] = vowels("education")
out["shout_inputs"] = shout.inputs
agent = CodeAgent.from_folder(args["agent_dir"])
out["agent_tools"] = sorted(agent.tools)
out["agent_managed"] = sorted(agent.managed_agents)
out["agent_model"] = [type(agent.model).__name__, agent.model.model_id]
out["agent_answer"] = agent.run("Shout yo twice, then count the vowels of banana with your helper.")
# the folder's app.py (its Gradio Space; it launches only as __main__) builds the same agent here
sys.path.insert(0, args["agent_dir"])
app_spec = importlib.util.spec_from_file_location("saved_app", Path(args["agent_dir"], "app.py"))
app = importlib.util.module_from_spec(app_spec)
app_spec.loader.exec_module(app)
built = app.agent_shouter
out["app_agent"] = [type(built).__name__, sorted(built.tools), sorted(built.managed_agents), built.max_steps,
                    "json" in built.additional_authorized_imports, type(built.model).__name__]

# the Hub: what codeloop pushed
hub_tool = load_tool("me/shout", trust_remote_code=True, token="tok")
out["hub_shout"] = hub_tool(text="hub", times=2)
hub_agent = CodeAgent.from_hub("me/shouter", trust_remote_code=True, token="tok")
out["hub_agent_answer"] = hub_agent.run("Count the vowels of education.")


# and smolagents pushes its own tool (create_repo, metadata_update, upload_folder) for codeloop to load
@tool
def reverse(text: str) -> str:
    """Reverses a text.

    Args:
        text: the text to reverse
    """
    return text[::-1]


out["smol_push"] = str(reverse.push_to_hub("me/smol-reverse", token="tok"))
print(json.dumps(out))

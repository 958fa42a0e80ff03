"""Stored runs and shared agents: resume, fork (codeloop.runs) and smolagents' folder/Hub format.

Layer 5 (agents). Thin methods of :class:`~codeloop.agents.base.MultiStepAgent` (a mixin); the work is in
``codeloop/runs/resume.py`` and ``codeloop/agents/sharing.py``, imported when used.
"""

from __future__ import annotations

from typing import Any

from .._sync import run_sync
from ..usage_limits import UsageLimits
from .run import RunResult

__all__ = ["StoredRuns"]


class StoredRuns:
    # ---- stored runs (codeloop.runs) ----
    async def aresume(
        self, run_id: str, approvals: dict[str, Any] | None = None, usage_limits: UsageLimits | None = None
    ) -> RunResult:
        """Continue a stored run (after a crash, with answers to its pending approvals, or, after a
        UsageLimitExceeded, with higher ``usage_limits``: they count on from the stored run's usage)."""
        from ..runs.resume import aresume

        return await aresume(self, run_id, approvals, usage_limits=usage_limits)

    def resume(
        self, run_id: str, approvals: dict[str, Any] | None = None, usage_limits: UsageLimits | None = None
    ) -> RunResult:
        return run_sync(self.aresume(run_id, approvals, usage_limits))

    async def afork(self, run_id: str, at_step: int, task: str | None = None, new_run_id: str | None = None) -> RunResult:
        """A new run from a copy of the first ``at_step`` action steps of a stored run, then live."""
        from ..runs.resume import afork

        return await afork(self, run_id, at_step, task, new_run_id)

    def fork(self, run_id: str, at_step: int, task: str | None = None, new_run_id: str | None = None) -> RunResult:
        return run_sync(self.afork(run_id, at_step, task, new_run_id))

    # ---- sharing (smolagents' folder format; codeloop/agents/sharing.py) ----
    def save(self, output_dir: Any, relative_path: str | None = None) -> None:
        """Write the agent as a folder: agent.json, prompts.yaml, tools/, managed_agents/, app.py."""
        from .sharing import save_agent

        save_agent(self, output_dir, relative_path)

    @classmethod
    def from_folder(cls, folder: Any, **kwargs: Any) -> Any:
        """Load an agent saved by ``save`` (codeloop or smolagents); runs its tools' code. kwargs override."""
        from .sharing import agent_from_folder

        return agent_from_folder(cls, folder, **kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str = "Upload agent",
        private: bool | None = None,
        token: Any = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the saved folder as a Gradio Space; returns the commit URL."""
        from .sharing import push_agent_to_hub

        return push_agent_to_hub(self, repo_id, commit_message, private, token, create_pr)

    @classmethod
    def from_hub(
        cls, repo_id: str, token: str | None = None, trust_remote_code: bool = False, **kwargs: Any
    ) -> Any:
        """Download an agent's Space and load it; runs its code, so pass trust_remote_code=True."""
        from .sharing import agent_from_hub

        return agent_from_hub(cls, repo_id, token=token, trust_remote_code=trust_remote_code, **kwargs)

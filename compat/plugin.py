"""pytest plugin of the compatibility tier: alias, exclusions, and the tier's figure.

Loaded with ``-p plugin`` by ``scripts/compat-smolagents.sh``. With ``--compat-target=codeloop`` (the
default) it installs the ``smolagents`` -> codeloop alias before any test file is imported, deselects the
tests in ``exclusions.txt`` and the tests that do not pass on smolagents itself (``smolagents-passed.txt``),
and prints "passed on codeloop / passed by smolagents itself". With ``--compat-target=smolagents`` it runs
the same files on a real smolagents install and writes the ids of the tests that passed, which is how
``smolagents-passed.txt`` is measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# The same test with the same parameters, whose pytest id differs only because pytest names a parameter
# after its value's __name__: codeloop id -> smolagents id. The tier counts and reports such a test under
# its smolagents id (_sid).
RENAMED_IDS = {
    # the class of a @tool instance: FunctionTool in codeloop, a generated SimpleTool class in smolagents
    "tests/test_tool_validation.py::test_validate_tool_attributes_valid[FunctionTool]":
        "tests/test_tool_validation.py::test_validate_tool_attributes_valid[SimpleTool]",
    # a codeloop @tool instance carries its function's __name__; smolagents' has none (pytest uses argname+index)
    "tests/test_tool_validation.py::test_tool_to_dict_validation_with_multiple_assignments"
    "[tool_function_with_multiple_assignments]":
        "tests/test_tool_validation.py::test_tool_to_dict_validation_with_multiple_assignments[tool_instance1]",
    "tests/test_utils.py::test_instance_to_source[valid_tool_function-expected_tool_source1]":
        "tests/test_utils.py::test_instance_to_source[tool1-expected_tool_source1]",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compat")
    group.addoption("--compat-target", default="codeloop", choices=["codeloop", "smolagents"])
    group.addoption("--compat-record", default=None, help="write the ids of passing tests to this file")
    group.addoption(
        "--compat-run-excluded",
        action="store_true",
        help="also run the excluded tests and list those that pass (to prune exclusions.txt)",
    )


def _read_ids(path: Path, need_reason: bool) -> dict[str, str]:
    ids: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = line.partition(" # ")
        if need_reason and not reason.strip():
            raise pytest.UsageError(f"{path.name}:{number}: an exclusion needs a reason after ' # '")
        ids[test_id.strip()] = reason.strip()
    return ids


def _sid(nodeid: str) -> str:
    """The id smolagents' own run gives the test that codeloop's run collects as ``nodeid``."""
    return RENAMED_IDS.get(nodeid, nodeid)


def _matches(nodeid: str, listed: str) -> bool:
    # a listed id without [params] stands for all parametrizations of that test
    return nodeid == listed or nodeid.partition("[")[0] == listed


class _Tier:
    def __init__(self, config: pytest.Config):
        self.target = config.getoption("--compat-target")
        self.record = config.getoption("--compat-record")
        self.passed: list[str] = []
        self.baseline = _read_ids(HERE / "smolagents-passed.txt", need_reason=False) if self.target == "codeloop" else {}
        self.exclusions = _read_ids(HERE / "exclusions.txt", need_reason=True) if self.target == "codeloop" else {}
        self.excluded_passing = 0
        self.not_on_smolagents = 0
        self.ignored_files: set[str] = set()
        self.not_collected: list[str] = []
        self.run_excluded = config.getoption("--compat-run-excluded")
        self.excluded_ids: set[str] = set()

    @pytest.hookimpl
    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        # a whole file is listed when it cannot even be imported on codeloop (the reason says why)
        rel = collection_path.relative_to(config.rootpath).as_posix()
        if rel in self.exclusions:
            self.ignored_files.add(rel)
            return True
        return None

    @pytest.hookimpl
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.target != "codeloop":
            return
        keep, drop = [], []
        used: set[str] = set()
        for item in items:
            sid = _sid(item.nodeid)
            hit = next((x for x in self.exclusions if _matches(sid, x)), None)
            if hit is not None:
                used.add(hit)
                self.excluded_ids.add(sid)
                (keep if self.run_excluded else drop).append(item)
                self.excluded_passing += sid in self.baseline
            elif sid not in self.baseline:
                drop.append(item)
                self.not_on_smolagents += 1
            else:
                keep.append(item)
        collected_files = {item.nodeid.partition("::")[0] for item in items}
        collected = {_sid(item.nodeid) for item in items}
        self.not_collected = sorted(
            x for x in self.baseline
            if x.partition("::")[0] in collected_files and x not in collected
            and not any(_matches(x, e) for e in self.exclusions)
        )
        stale = sorted(
            x for x in set(self.exclusions) - used - self.ignored_files if x.partition("::")[0] in collected_files
        )
        self.excluded_passing += sum(
            1 for x in self.baseline if x.partition("::")[0] in self.ignored_files
        )
        if stale:
            raise pytest.UsageError("exclusions.txt lists tests that do not exist: " + ", ".join(stale))
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.passed.append(_sid(report.nodeid) if self.target == "codeloop" else report.nodeid)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.record:
            header = (
                "# Tests of smolagents 1.26.0's own suite that pass on smolagents itself, measured by\n"
                "# `scripts/compat-smolagents.sh --measure-smolagents`: a throwaway venv with smolagents==1.26.0,\n"
                "# pytest, numpy, pandas, pillow, mcp, ipython and openai (no litellm/transformers/torch), the same\n"
                "# test files, fixtures (compat/conftest.py) and markers as the codeloop run, no network.\n"
                f"# {len(self.passed)} tests.\n"
            )
            Path(self.record).write_text(header + "".join(f"{x}\n" for x in sorted(self.passed)))
        if self.target != "codeloop":
            terminalreporter.write_line(f"smolagents itself: {len(self.passed)} passed")
            return
        if self.run_excluded:
            for x in sorted(set(self.passed) & self.excluded_ids):
                terminalreporter.write_line(f"excluded but passes now: {x}")
        ours = sum(1 for x in self.passed if x in self.baseline and x not in self.excluded_ids)
        total = len(self.baseline)
        terminalreporter.write_line(
            f"smolagents 1.26.0 compatibility: {ours} passed on codeloop / {total} passed by smolagents itself "
            f"on the same files ({100 * ours / max(total, 1):.1f}%); {self.excluded_passing} excluded with a "
            f"reason in compat/exclusions.txt; {self.not_on_smolagents} not run (they do not pass on smolagents "
            f"itself here); {len(self.not_collected)} not collected on codeloop"
        )
        for x in self.not_collected:
            terminalreporter.write_line(f"passes on smolagents but was not collected on codeloop: {x}")


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # the alias must be in place before the suite's conftest imports smolagents
    if early_config.known_args_namespace.compat_target == "codeloop":
        import alias

        alias.install()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Tier(config), "compat-tier")

"""Schema extraction: run the signature table, check each schema, print time per signature.

Usage: .venv/bin/python benchmarks/schema_extraction.py [--repeat N]

Each row of tests/test_tools_signature_table.py is turned into a tool with ``@tool`` (docstring parsing,
type hints -> schema, definition checks) ``N`` times; the median time per signature is printed in µs.
When smolagents is importable in the same interpreter, its ``@tool`` is timed on the rows it supports
and the ratio is printed too (it is not a codeloop dependency: run this file with an interpreter that
has both, e.g. ``PYTHONPATH=. /tmp/smolvenv/bin/python benchmarks/schema_extraction.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_tools_signature_table import SIGNATURES  # noqa: E402

from codeloop.tools import tool  # noqa: E402


def _median_us(make: Any, func: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        make(func)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    try:
        from smolagents import tool as smol_tool
    except ImportError:
        smol_tool = None

    correct = 0
    total_us = 0.0
    smol_total = codeloop_on_smol_rows = 0.0
    print(f"{'signature':<24}{'codeloop µs':>12}{'smolagents µs':>15}  result")
    same_rows = agreeing = 0
    for row_id, func, inputs, output_type, output_schema, versus_smolagents in SIGNATURES:
        made = tool(func)
        ok = made.inputs == inputs and made.output_type == output_type and made.output_schema == output_schema
        correct += ok
        us = _median_us(tool, func, args.repeat)
        total_us += us
        smol_text = "-"
        if smol_tool is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    theirs = smol_tool(func)
                    smol_us = _median_us(smol_tool, func, args.repeat)
                if versus_smolagents == "same":
                    same_rows += 1
                    agreeing += (theirs.inputs, theirs.output_type) == (inputs, output_type)
                smol_total += smol_us
                codeloop_on_smol_rows += us
                smol_text = f"{smol_us:.1f}"
            except Exception:
                smol_text = "raises"
        print(f"{row_id:<24}{us:>12.1f}{smol_text:>15}  {'ok' if ok else 'WRONG'}")
    n = len(SIGNATURES)
    print(f"schema extraction: {correct}/{n} signatures correct")
    print(f"mean time per signature: {total_us / n:.1f} µs")
    if smol_tool is not None:
        print(f"rows marked 'same' that smolagents reproduces exactly: {agreeing}/{same_rows}")
    if smol_tool is not None and codeloop_on_smol_rows:
        print(
            f"smolagents/codeloop time ratio on rows both support: {smol_total / codeloop_on_smol_rows:.2f}x"
        )
    _call_overhead()
    if correct != n:
        sys.exit(1)


def _call_overhead(repeat: int = 2000) -> None:
    """Per-call cost of the tool wrapper (binding + validation) against calling the function itself."""
    import asyncio

    def add(a: int, b: int = 1) -> int:
        """Add.

        Args:
            a: A.
            b: B.
        """
        return a + b

    async def aadd(a: int, b: int = 1) -> int:
        """Add.

        Args:
            a: A.
            b: B.
        """
        return a + b

    sync_tool, async_tool = tool(add), tool(aadd)

    def per_call(fn: Any) -> float:
        start = time.perf_counter()
        for i in range(repeat):
            fn(i)
        return (time.perf_counter() - start) / repeat * 1e6

    async def per_acall(fn: Any, n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            await fn(i)
        return (time.perf_counter() - start) / n * 1e6

    raw = per_call(add)
    wrapped = per_call(sync_tool)
    raw_async = asyncio.run(per_acall(aadd, repeat))
    acall_async = asyncio.run(per_acall(async_tool.acall, repeat))
    acall_thread = asyncio.run(per_acall(sync_tool.acall, 300))
    print(f"call overhead: raw function {raw:.2f} µs, tool(...) {wrapped:.2f} µs ({wrapped / raw:.0f}x)")
    print(f"async: raw await {raw_async:.2f} µs, await tool.acall(...) {acall_async:.2f} µs")
    print(f"sync forward via acall (worker thread): {acall_thread:.1f} µs per call")


if __name__ == "__main__":
    main()

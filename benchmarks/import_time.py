"""Cold import time of ``import codeloop`` (target: <= 150 ms, no optional extra imported).

Runs ``python -X importtime -c "import codeloop"`` several times in fresh interpreters and prints the
cumulative time of the ``codeloop`` package (what the import adds), the whole process wall time next to a
bare interpreter's, and which heavy third-party modules got imported (should be none).

    .venv/bin/python benchmarks/import_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7
HEAVY = ("openai", "httpx", "pydantic", "jinja2", "rich", "yaml", "numpy", "anthropic")


def codeloop_cumulative_us() -> int:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import codeloop"], capture_output=True, text=True, check=True
    )
    for line in proc.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "codeloop":
            return int(parts[1])
    raise RuntimeError("codeloop not found in -X importtime output")


def wall_ms(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    cumulative = [codeloop_cumulative_us() / 1000 for _ in range(RUNS)]
    bare = [wall_ms("pass") for _ in range(RUNS)]
    with_pkg = [wall_ms("import codeloop") for _ in range(RUNS)]
    heavy = subprocess.run(
        [sys.executable, "-c", f"import sys, codeloop; print([m for m in {HEAVY!r} if m in sys.modules])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    med = statistics.median(cumulative)
    print("| figure | value |\n|---|---|")
    print(f"| codeloop cumulative import (-X importtime, median of {RUNS}) | {med:.2f} ms |")
    print(f"| interpreter start, bare (median) | {statistics.median(bare):.1f} ms |")
    print(f"| interpreter start + import codeloop (median) | {statistics.median(with_pkg):.1f} ms |")
    print(f"| heavy modules imported | {heavy} |")
    print(f"target <= 150 ms: {'met' if med <= 150 else 'NOT met'}")


if __name__ == "__main__":
    main()

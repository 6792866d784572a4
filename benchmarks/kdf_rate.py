"""Measure the extraction-code KDF rate on this machine and estimate offline attack times.

Run from the repository root: `python benchmarks/kdf_rate.py [--rounds N]`.

The estimate assumes that the attacker has the public protection record and
tests guesses on cores as fast as one core here, with no shortcut through
scrypt. GPUs or dedicated hardware may be faster per unit of cost. Each of the
attacker's parallel derivations also needs the scrypt memory printed below.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography  # noqa: E402

from registry_index.extraction import (  # noqa: E402
    CODE_MIN_LENGTH,
    DEFAULT_N,
    DEFAULT_P,
    DEFAULT_R,
    derive,
    new_protection,
)

ALPHABETS = (
    ("62 alphanumerics [A-Za-z0-9]", 62),
    ("94 printable ASCII without space (what the code rules accept in ASCII)", 94),
    ("95 printable ASCII with space", 95),
)
ATTACKER_CORES = (1, 1_000)


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform data where that file is missing."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def format_duration(seconds: float) -> str:
    """Format a duration in the largest unit that keeps the number at least 1."""
    units = (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60))
    for name, size in units:
        if seconds >= size:
            return f"{seconds / size:,.1f} {name}"
    return f"{seconds:.1f} seconds"


def measure(rounds: int) -> list[float]:
    """Time `rounds` derivations at the default parameters, on one core, in seconds each."""
    protection, _ = new_protection("Kindo7")
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        derive("Kindo7", protection)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="number of timed derivations (default 10)")
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")

    times = measure(arguments.rounds)
    median = statistics.median(times)
    rate = 1 / median
    memory_mib = 128 * DEFAULT_N * DEFAULT_R // (1024 * 1024)

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"software: Python {platform.python_version()}, cryptography {cryptography.__version__}")
    print(f"KDF: scrypt n=2**{DEFAULT_N.bit_length() - 1}, r={DEFAULT_R}, p={DEFAULT_P}, {memory_mib} MiB per derivation")
    print(
        f"time per derivation over {len(times)} rounds: median {median:.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s"
    )
    print(f"rate: {rate:.2f} derivations per second per core")
    print()
    print(f"Estimated time to try every {CODE_MIN_LENGTH}-character code (half of it on average to find one):")
    for label, size in ALPHABETS:
        codes = size**CODE_MIN_LENGTH
        print(f"  {label}: {size}**{CODE_MIN_LENGTH} = {codes:.3e} codes")
        for cores in ATTACKER_CORES:
            seconds = codes / (rate * cores)
            noun = "core" if cores == 1 else "cores"
            print(f"    {cores:>5,} {noun}: {format_duration(seconds)}")


if __name__ == "__main__":
    main()

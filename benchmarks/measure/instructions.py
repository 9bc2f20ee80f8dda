"""Instructions of one call, counted by valgrind's callgrind: a cost that does not move
when the machine is busy, so a CI gate can see a 1% change on a shared runner.

The process runs under ``valgrind --tool=callgrind --instr-atstart=no
--collect-atstart=no`` (see ``benchmarks.callgrind_executor``: one valgrind process
per run, torch imported once). ``count`` has callgrind instrument the code only for
the counted call (``callgrind_control -i on``: everything else, importing torch
included, runs about six times faster than instrumented), switches collection on
around the call with torch's callgrind client requests, dumps the counts and reads
them back. As ``torch.utils.benchmark``
does, the garbage collector is off during the call and CPython's dictionary lookups
of names (hash-dependent) are left out of the total ("denoised"); the child runs
with a fixed ``PYTHONHASHSEED``. Under valgrind the CPU offers at most AVX2, so
oneDNN and MKL take the same kernels on any x86-64 machine that has it.
"""

from __future__ import annotations

import gc
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

OUT_ENV = "ARCHBENCH_CALLGRIND_OUT"  # callgrind's --callgrind-out-file, set by the executor
NOISY = ("lookdict_unicode", "lookup_unicode")  # CPython's name lookups (3.10, 3.11+)
CONTROL_TIMEOUT_S = 60


class NotUnderCallgrind(RuntimeError):
    """``count`` was called in a process that callgrind does not run."""


def count(call: Callable[[], object]) -> int:
    """Instructions of one ``call`` (denoised), in a process callgrind runs."""
    out = os.environ.get(OUT_ENV)
    if not out:
        raise NotUnderCallgrind(
            "instructions are counted in archbench's callgrind process (run --measure instructions)"
        )
    gc.collect()
    gc.disable()
    instrument(True)
    try:
        torch._C._valgrind_toggle()
        call()
        torch._C._valgrind_toggle_and_dump_stats()
    finally:
        instrument(False)
        gc.enable()
    dump = latest_dump(Path(out))
    try:
        return denoised_total(self_costs(dump.read_text()))
    finally:
        dump.unlink()


def instrument(on: bool) -> None:
    """Have callgrind instrument the code from now on, or stop. callgrind_control
    talks to this process's valgrind, which answers while the process runs code: so
    this process waits busily, not in a blocking call."""
    control = subprocess.Popen(
        ["callgrind_control", "--instr=" + ("on" if on else "off"), str(os.getpid())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + CONTROL_TIMEOUT_S
    while control.poll() is None:
        if time.monotonic() > deadline:
            control.kill()
            raise RuntimeError(f"callgrind_control did not answer in {CONTROL_TIMEOUT_S} s")
    said = control.communicate()[0]
    if "OK" not in said:
        raise RuntimeError(f"callgrind_control: {said.strip().splitlines()[-1:]}")


def latest_dump(out: Path) -> Path:
    """The newest of callgrind's numbered dumps (OUT.1, OUT.2, ...)."""
    dumps = [path for path in out.parent.glob(out.name + ".*") if path.suffix[1:].isdigit()]
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump next to {out}")
    return max(dumps, key=lambda path: int(path.suffix[1:]))


def self_costs(text: str) -> dict[str, int]:
    """Instructions spent in each function itself, from a callgrind dump written with
    ``--compress-strings=no --compress-pos=no``: cost lines count to the current
    ``fn=``, except the line after ``calls=`` (the callee's inclusive cost)."""
    costs: dict[str, int] = {}
    function, after_call = "", False
    for line in text.splitlines():
        if line.startswith("fn="):
            function = line[3:]
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit():
            if after_call:
                after_call = False
            else:
                costs[function] = costs.get(function, 0) + int(line.split()[1])
    return costs


def denoised_total(costs: dict[str, int]) -> int:
    """The total without CPython's name lookups, whose cost follows string hashes."""
    return sum(n for function, n in costs.items() if not any(x in function for x in NOISY))

"""Time from ``jaxpg train`` (defaults, or the options given) to its first output line.

Prints the wall-clock seconds and the CPU seconds the command used until then
(on a shared machine the CPU seconds are the comparable figure), then stops the
run.

  python scripts/time_to_first_result.py
  python scripts/time_to_first_result.py --preset acrobot-ppo

``--cache-pairs N`` measures the persistent compilation cache (``jaxpg.compile_cache``)
instead: N times, a first call into a new, empty cache directory and then a second
identical call that finds the first one's entries; it prints each pair and the medians
of the second call's time as a fraction of the first's. With ``--no-compile-cache`` in
the options both calls compile.

  python scripts/time_to_first_result.py --cache-pairs 3 --total-timesteps 640 \
      --num-envs 4 --num-steps 16
"""

from __future__ import annotations

import os
import resource
import selectors
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def first_output(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """``(wall s, CPU s, first line)`` of one ``jaxpg train`` until its first output."""
    out_dir = tempfile.mkdtemp(prefix="jaxpg-ttfr-")
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxpg", "train", "--out", os.path.join(out_dir, "run"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    first = None
    while first is None:
        for key, _ in sel.select(timeout=1):
            text = os.read(key.fileobj.fileno(), 4096).decode(errors="replace")
            if text and "warn" not in text.lower():  # library warnings are not results
                first = (time.perf_counter() - t0, text.strip()[:160])
        if first is None and proc.poll() is not None:
            first = (time.perf_counter() - t0, f"(exited with {proc.returncode})")
    proc.kill()
    proc.wait()
    return first[0], _children_cpu() - cpu0, first[1]


def cache_pairs(n: int, argv: list[str]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    ratios_wall, ratios_cpu = [], []
    for i in range(n):
        env["JAXPG_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="jaxpg-cache-")
        w1, c1, line = first_output(argv, env)
        w2, c2, _ = first_output(argv, env)
        ratios_wall.append(w2 / w1)
        ratios_cpu.append(c2 / c1)
        print(
            f"pair {i + 1}: first call {w1:.1f} s wall ({c1:.1f} s CPU), second {w2:.1f} s "
            f"wall ({c2:.1f} s CPU): {w2 / w1:.0%} wall, {c2 / c1:.0%} CPU; {line!r}",
            flush=True,
        )
    print(
        f"median second/first over {n} pairs: {statistics.median(ratios_wall):.0%} wall, "
        f"{statistics.median(ratios_cpu):.0%} CPU"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--cache-pairs"]:
        cache_pairs(int(argv[1]), argv[2:])
        return 0
    wall, cpu, line = first_output(argv)
    print(f"first output after {wall:.1f} s wall, {cpu:.1f} s CPU: {line!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Time from ``jaxpg train`` (defaults, or the options given) to its first output line.

Prints the wall-clock seconds and the CPU seconds the command used until then
(on a shared machine the CPU seconds are the comparable figure), then stops the
run.

  python scripts/time_to_first_result.py
  python scripts/time_to_first_result.py --preset acrobot-ppo
"""

from __future__ import annotations

import os
import resource
import selectors
import subprocess
import sys
import tempfile
import time


def main(argv: list[str]) -> int:
    out_dir = tempfile.mkdtemp(prefix="jaxpg-ttfr-")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["jaxpg", "train", "--out", os.path.join(out_dir, "run"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"first output after {first[0]:.1f} s wall, {cpu.ru_utime + cpu.ru_stime:.1f} s CPU: "
        f"{first[1]!r}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

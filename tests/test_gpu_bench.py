"""scripts/gpu_bench.py, the accelerator run, proven on CPU (docs/gpu.md).

The default run checks the set-up (installing wheels into a ``--target`` folder, the
version-range check), the orchestration (a part per process, time limits, budget,
JSON and page written) and two real parts at smoke sizes; the ``slow`` test runs every
part (``--smoke``), which takes minutes on a 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_bench.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gb = _load()


def _run(tmp_path: Path, *extra: str, timeout: int = 240) -> dict:
    out = tmp_path / "out"
    tmp_path.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--out-dir", str(out),
           "--wheels", str(tmp_path / "no-wheels"), *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = out.glob("gpu-*.json")
    assert path.with_suffix(".md").exists()
    return json.loads(path.read_text())


def _fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid pure-Python wheel holding one module ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.py", "VALUE = 42\n")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{info}/RECORD", "")
    return path


def test_install_skips_present_and_installs_missing(tmp_path):
    wheels = tmp_path / "wheels"
    _fake_wheel(wheels, "jaxpg_fake_dep", "1.2.3")
    _fake_wheel(wheels, "numpy", "0.0.1")  # present in this interpreter: not installed
    report = gb.install(wheels, tmp_path / "site")
    assert report["installed"] == ["jaxpg_fake_dep-1.2.3-py3-none-any.whl"]
    assert "numpy" in report["present"]
    assert (tmp_path / "site" / "jaxpg_fake_dep.py").read_text() == "VALUE = 42\n"
    assert "error" in gb.install(tmp_path / "none", tmp_path / "site2")


def test_install_without_pip_unpacks(tmp_path, monkeypatch):
    _fake_wheel(tmp_path / "wheels", "jaxpg_fake_dep", "1.2.3")
    failed = subprocess.CompletedProcess([], 1, "", "No module named pip")
    monkeypatch.setattr(gb.subprocess, "run", lambda *a, **k: failed)
    report = gb.install(tmp_path / "wheels", tmp_path / "site")
    assert report["method"].startswith("unzip") and "No module named pip" in report["method"]
    assert (tmp_path / "site" / "jaxpg_fake_dep.py").exists()


def test_version_ranges_are_checked_and_advice_names_the_range():
    rows = gb.check_ranges([])
    names = {r["name"] for r in rows}
    assert {"jax", "flax", "optax", "numpy", "gymnax"} <= names
    jax_row = next(r for r in rows if r["name"] == "jax")
    assert jax_row["ok"] is True  # this interpreter runs the tests, so its jax is admitted
    advice = gb._range_advice([{"name": "flax", "range": "<0.13,>=0.12", "found": "0.13.1",
                                "ok": False}])  # fmt: skip
    assert len(advice) == 1 and "flax 0.13.1" in advice[0] and "<0.13,>=0.12" in advice[0]


def test_cpu_choices_read_from_jaxpg():
    opts, where, flag, flag_src = gb._cpu_choices()
    assert opts and where != "fallback (gpu_bench.py)"
    assert flag.startswith("--xla_cpu") and "fallback" not in flag_src


def test_time_limit_and_budget(tmp_path):
    # A part over its limit is killed and reported; one started too late is skipped.
    r = _run(tmp_path / "a", "--parts", "learns", "--part-limit", "1")
    assert r["parts"]["learns"]["status"].startswith("timeout")
    r = _run(tmp_path / "b", "--parts", "learns,seeds", "--budget", "1")
    assert all(p["status"].startswith("skipped") for p in r["parts"].values())
    assert r["peer"]["skipped"]  # no rejax wheels given: the peer is skipped, and said so


def test_smoke_parts_write_json_and_page(tmp_path):
    r = _run(tmp_path, "--parts", "learns,ab_blocking")
    assert r["smoke"] and r["machine"]["backend"] == "cpu"
    learns = r["parts"]["learns"]
    assert learns["status"] == "ok" and learns["final_return"] > 0 and learns["run_s"] > 0
    (ab,) = r["parts"]["ab_blocking"]["rows"]
    assert set(ab["median_s"]) == {"cache_chunks", "none"} and ab["faster"] in ab["median_s"]
    assert ab["chunk"] < ab["minibatch"]  # the chunked variant really chunks
    assert ab["jaxpg_default_here"] == "cache_chunks"  # on CPU jaxpg chunks such a batch
    page = next((tmp_path / "out").glob("*.md")).read_text()
    assert "CPU figures" in page and "Learns" in page and "blocking.auto_chunks" in page


def test_committed_page_is_the_generated_one(tmp_path):
    # docs/gpu.md comes from the script (no measurement yet, or the committed JSON).
    page = (ROOT / "docs" / "gpu.md").read_text()
    marker = "<!-- Made by scripts/gpu_bench.py from "
    source = page.split(marker, 1)[1].split(";", 1)[0]
    data = None if source == "none" else json.loads((ROOT / "docs" / "bench" / source).read_text())
    gb.write_page(data, source, tmp_path / "gpu.md")
    assert (tmp_path / "gpu.md").read_text() == page


@pytest.mark.slow
def test_full_smoke_every_part(tmp_path):
    r = _run(tmp_path, timeout=1200)
    assert all(p["status"] == "ok" for p in r["parts"].values()), r["parts"]
    assert len(r["parts"]["ppo_peer"]["rows"]) == 2
    assert len(r["parts"]["variance"]["rows"]) == 2
    assert r["parts"]["sweep"]["runs"] == 4

"""The XLA:CPU workaround of jaxpg.xla_flags: set on import, user's choice kept,
and the vmapped MinAtar rollout that deadlocked under jaxlib 0.10.2 finishes."""

import os
import subprocess
import sys

from jaxpg import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, xla_flags_value: str | None, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags_value is not None:
        env["XLA_FLAGS"] = xla_flags_value
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", code], env=env, timeout=timeout, capture_output=True, text=True
    )


def test_flag_appended_only_for_jaxlib_0_10_and_never_over_the_users_value():
    env = {}
    assert xla_flags.apply_cpu_workarounds(env, "0.10.2")
    assert env["XLA_FLAGS"] == f"{xla_flags.SCHEDULER_FLAG}=false"
    mine = {
        "XLA_FLAGS": f"{xla_flags.SCHEDULER_FLAG}=true --xla_force_host_platform_device_count=2"
    }
    assert not xla_flags.apply_cpu_workarounds(mine, "0.10.2")
    assert mine["XLA_FLAGS"].startswith(f"{xla_flags.SCHEDULER_FLAG}=true")
    newer = {}
    assert not xla_flags.apply_cpu_workarounds(newer, "0.11.2") and newer == {}


def test_cpu_options_appended_on_cpu_only_and_never_over_the_users_value():
    flags = xla_flags.cpu_option_flags()
    env = {}
    assert xla_flags.apply_cpu_options(env, "0.11.2", accelerator=False) == flags
    assert env["XLA_FLAGS"] == " ".join(flags)
    assert xla_flags.apply_cpu_options(env, "0.11.2", accelerator=False) == []  # named now
    mine = {"XLA_FLAGS": "--xla_backend_optimization_level=2"}
    assert xla_flags.apply_cpu_options(mine, "0.10.2", accelerator=False) == flags[1:]
    assert mine["XLA_FLAGS"].split()[0] == "--xla_backend_optimization_level=2"
    for env, version, accelerator in [({}, "0.12.0", False), ({}, "0.10.2", True)]:
        assert xla_flags.apply_cpu_options(env, version, accelerator) == [] and env == {}
    # JAX_PLATFORMS decides when set; else an installed accelerator plugin does.
    assert not xla_flags._accelerator_expected({"JAX_PLATFORMS": "cpu"})
    assert xla_flags._accelerator_expected({"JAX_PLATFORMS": "cuda,cpu"})


def test_import_jaxpg_sets_the_flag_before_the_backend_starts():
    import importlib.metadata

    code = "import os, jaxpg; print(os.environ.get('XLA_FLAGS', ''))"
    out = _python(code, "--xla_force_host_platform_device_count=2", 60)
    assert out.returncode == 0, out.stderr
    want = importlib.metadata.version("jaxlib").startswith("0.10.")
    assert (f"{xla_flags.SCHEDULER_FLAG}=false" in out.stdout) == want
    assert "--xla_force_host_platform_device_count=2" in out.stdout
    assert "RuntimeWarning" not in out.stderr


def test_late_import_warns():
    code = "import jax; jax.numpy.ones(1).block_until_ready(); import jaxpg"
    out = _python(code, None, 60)
    assert out.returncode == 0, out.stderr
    import importlib.metadata

    if importlib.metadata.version("jaxlib").startswith("0.10."):
        assert "imported after JAX's backend started" in out.stderr


def test_vmapped_minatar_rollout_does_not_deadlock():
    """Under jaxlib 0.10.2's default scheduler this hangs in every trial."""
    script = os.path.join(ROOT, "scripts", "xla_cpu_hang.py")
    out = subprocess.run(
        [sys.executable, script, "--trials", "1", "--timeout", "240", "--only", "jaxpg"],
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "jaxpg: hung in 0 of 1 trials" in out.stdout, out.stdout

"""jaxpg.compile_cache: entries are sealed, a damaged entry is recompiled and never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest
from jax._src import compilation_cache as cc

from jaxpg import checkpoint, compile_cache

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """This test's own empty cache directory; the session's cache is restored after."""
    old_dir = jax.config.jax_compilation_cache_dir
    old_min = jax.config.jax_persistent_cache_min_compile_time_secs
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "cache"))
    yield tmp_path / "cache"
    jax.config.update("jax_enable_compilation_cache", True)
    if old_dir:
        compile_cache.enable(Path(old_dir).parent, min_compile_time_secs=old_min)
    else:
        jax.config.update("jax_compilation_cache_dir", None)
        cc.reset_cache()


def _damage(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    i = len(blob) // 2
    blob[i] ^= 0xFF  # one byte inside the compiled executable
    path.write_bytes(bytes(blob))


def test_sealed_file_cache_round_trip_and_damage(tmp_path):
    cache = compile_cache._cache_class()(tmp_path)
    cache.put("key", b"executable bytes")
    assert cache.get("key") == b"executable bytes"
    assert cache.get("other") is None
    before = compile_cache.STATS["rejected"]
    entry = tmp_path / "key.jaxpg"
    _damage(entry)
    assert cache.get("key") is None  # flipped byte: digest mismatch
    entry.write_bytes(entry.read_bytes()[:20])
    assert cache.get("key") is None  # truncated
    entry.write_bytes(b"\x28\xb5\x2f\xfd" + b"x" * 64)  # jax's own (unsealed) format
    assert cache.get("key") is None
    assert compile_cache.STATS["rejected"] == before + 3
    cache.put("key", b"executable bytes")  # a write replaces the damaged entry
    assert cache.get("key") == b"executable bytes"
    assert not list(tmp_path.glob(".tmp-*"))  # atomic writes leave no temporary file


def test_an_unwritable_directory_only_costs_a_compile(own_cache):
    own_cache.parent.mkdir(parents=True, exist_ok=True)
    own_cache.write_text("a file where the cache directory should be")
    compile_cache.enable(min_compile_time_secs=0)
    np.testing.assert_allclose(jax.jit(lambda x: x * 3.0 + 2.0)(jnp.ones(3)), 5.0)


def test_least_recently_used_entries_go_first(tmp_path):
    cache = compile_cache._cache_class()(tmp_path, max_bytes=300)  # two entries of 146 bytes
    for i, key in enumerate(["a", "b"]):
        cache.put(key, bytes(100))
        os.utime(tmp_path / f"{key}.jaxpg", (1_000 + i, 1_000 + i))
    assert cache.get("a") == bytes(100)  # "a" is now the most recently used
    cache.put("c", bytes(100))
    assert sorted(p.stem for p in tmp_path.glob("*.jaxpg")) == ["a", "c"]


def test_directory_is_keyed_by_jax_and_jaxlib_versions(tmp_path):
    path = compile_cache.versioned(tmp_path)
    assert path.parent == tmp_path
    assert path.name == f"jax-{jax.__version__}-jaxlib-{jaxlib.__version__}"


def test_a_damaged_entry_is_recompiled_not_used(own_cache):
    path = compile_cache.enable(min_compile_time_secs=0)
    assert path == compile_cache.versioned(own_cache).resolve()

    def program(x):
        return jnp.sin(x) @ x.T + 1.0

    x = jnp.arange(12.0).reshape(3, 4)
    expected = np.sin(np.arange(12.0).reshape(3, 4)) @ np.arange(12.0).reshape(3, 4).T + 1.0
    np.testing.assert_allclose(jax.jit(program)(x), expected, rtol=1e-5)
    entries = sorted(path.glob("jit_program-*.jaxpg"))
    assert len(entries) == 1

    jax.clear_caches()  # the next call looks in the persistent cache again
    hits = compile_cache.STATS["hits"]
    np.testing.assert_allclose(jax.jit(program)(x), expected, rtol=1e-5)
    assert compile_cache.STATS["hits"] == hits + 1  # a good entry is used

    _damage(entries[0])
    jax.clear_caches()
    hits, rejected = compile_cache.STATS["hits"], compile_cache.STATS["rejected"]
    np.testing.assert_allclose(jax.jit(program)(x), expected, rtol=1e-5)
    assert compile_cache.STATS["rejected"] == rejected + 1
    assert compile_cache.STATS["hits"] == hits  # never handed to jax
    assert compile_cache._unseal(entries[0].read_bytes()) is not None  # rewritten, sealed


def test_environment_variable_and_switches(own_cache, monkeypatch, tmp_path):
    assert compile_cache.enable() == compile_cache.versioned(own_cache).resolve()
    monkeypatch.setenv(compile_cache.ENV, "")
    assert compile_cache.enable() is None  # an empty value: off
    monkeypatch.delenv(compile_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform not in ("win32", "darwin"):
        assert compile_cache.user_cache_dir() == tmp_path / "xdg" / "jaxpg"
    jax.config.update("jax_compilation_cache_dir", None)
    assert compile_cache.configure_cli(enabled=True) == (
        compile_cache.versioned(compile_cache.user_cache_dir()).resolve()
    )
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "users-jax-cache"))
    assert compile_cache.configure_cli(enabled=True) is None  # jax's own setting is kept
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "users-jax-cache")
    assert compile_cache.configure_cli(enabled=False) is None
    assert not jax.config.jax_enable_compilation_cache


def test_every_command_has_no_compile_cache():
    from jaxpg.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        assert "--no-compile-cache" in command.format_help(), name


def test_cli_second_run_recompiles_damaged_entries(tmp_path):
    """Two identical `jaxpg train` calls; every entry damaged in between."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        compile_cache.ENV: str(tmp_path / "cache"),
    }
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    args = "--total-timesteps 256 --num-envs 4 --num-steps 16 --num-minibatches 2".split()
    args += "--num-epochs 1 --hidden-sizes 16 --quiet".split()

    def train(out):
        proc = subprocess.run(
            [sys.executable, "-m", "jaxpg", "train", *args, "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc

    train(tmp_path / "a")
    entries = sorted(compile_cache.versioned(tmp_path / "cache").glob("*.jaxpg"))
    assert entries  # the run's programs were written
    for entry in entries:
        _damage(entry)
    second = train(tmp_path / "b")
    assert "cache" not in second.stderr.lower()  # no warning: the entries were not read
    assert all(compile_cache._unseal(e.read_bytes()) is not None for e in entries)
    final = [
        checkpoint.read(checkpoint.list_checkpoints(d / "checkpoints")[-1][1])[0]
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    for x, y in zip(jax.tree.leaves(final[0]), jax.tree.leaves(final[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

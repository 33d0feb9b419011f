"""Every code example in README.md and docs/*.md is checked by this file.

* ```python blocks run, in order, in one namespace per document, in a fresh
  working directory (so an example that writes files writes them there).
* ```bash blocks: each ``jaxpg ...`` command is parsed by the real command-line
  parser and, for ``train``/``sweep``, its ``Config`` is resolved and validated
  (an unknown option, a bad value or an invalid config fails here). Blocks
  marked ``<!-- docs-test: run -->`` are executed for real, in order, in the
  same working directory (they are written with budgets small enough to run
  here). ``python scripts/X.py ...`` lines are checked to start (``--help``).
* A block marked ``<!-- docs-test: write FILE -->`` is written to FILE in the
  working directory and imported (a module that later examples use).
* A document whose example needs an optional extra that is not installed (an
  environment suite) is skipped with the install command; CI installs the extras
  and runs the suite tests separately.
* Other languages (toml, plain text) are shown, not run. A command with a
  placeholder (``NAME``, ``...``, ``RUN_DIR``) is parsed only up to it.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:<!-- docs-test: (?P<directive>[^>]*?) -->[ \t]*\n)?"
    r"^[ \t]*```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^[ \t]*```",
    re.S | re.M,
)
PLACEHOLDERS = ("NAME", "...", "RUN_DIR", "PATH", "FILE")


def blocks(doc: Path):
    """``(lang, directive, body)`` of every fenced block of ``doc``."""
    for m in BLOCK.finditer(doc.read_text()):
        body = m.group("body")
        indent = min(
            (len(line) - len(line.lstrip()) for line in body.splitlines() if line.strip()),
            default=0,
        )
        body = "\n".join(line[indent:] for line in body.splitlines())
        yield m.group("lang"), (m.group("directive") or "").strip(), body


def shell_commands(body: str) -> list[str]:
    """The commands of a bash block: comments dropped, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def _env(cwd: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(cwd), env.get("PYTHONPATH", "")])
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def check_jaxpg_command(words: list[str]) -> None:
    """Parse a ``jaxpg`` command line with the real parser; resolve its Config."""
    from jaxpg.cli import build_parser
    from jaxpg.commands.common import resolve_config

    cut = next((i for i, w in enumerate(words) if any(p in w for p in PLACEHOLDERS)), None)
    if cut is not None:
        return  # a placeholder: nothing concrete to check past the command name
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:
        raise AssertionError(f"`jaxpg {' '.join(words)}` does not parse") from exc
    if words[0] in ("train", "sweep") and not getattr(args, "resume", None):
        if getattr(args, "config", None) and not Path(args.config).exists():
            return  # an example config file the reader writes
        resolve_config(args)


def run_shell(command: str, cwd: Path, execute: bool) -> None:
    if "&&" in command:  # a chain: each part in turn
        for part in command.split("&&"):
            run_shell(part.strip(), cwd, execute)
        return
    words = shlex.split(command)
    redirect = next((i for i, w in enumerate(words) if w in (">", ">>", "|", "2>")), None)
    if redirect is not None and not execute:
        words = words[:redirect]  # parse the command; its output's destination is shell
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # VAR=value prefixes
    if not words or words[0] == "pip":
        return  # installing is what .ci/run does
    if words[0] == "jaxpg":
        if execute:
            cmd = [sys.executable, "-m", "jaxpg", *words[1:]]
            done = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True)
            assert done.returncode == 0, f"`{command}` failed:\n{done.stderr[-3000:]}"
        else:
            check_jaxpg_command(words[1:])
        return
    if words[0] == "python" and len(words) > 1 and words[1].startswith("scripts/"):
        script = ROOT / words[1]
        done = subprocess.run(
            [sys.executable, str(script), "--help"], cwd=ROOT, env=_env(cwd),
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, f"{script.name} --help failed:\n{done.stderr[-2000:]}"
        return
    if words[0] == "python":
        return  # e.g. `python -m pytest`: the test run itself
    raise AssertionError(f"unknown command in a docs example: {command!r}")


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_examples_run(doc: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = types.ModuleType(f"docs_{doc.stem}")  # a real module: dataclasses need one
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for lang, directive, body in blocks(doc):
        if directive.startswith("write "):
            name = directive.split(None, 1)[1]
            (tmp_path / name).write_text(body)
            importlib.import_module(Path(name).stem)
            monkeypatch.delitem(sys.modules, Path(name).stem)
        elif lang == "python":
            try:
                exec(compile(body, f"{doc.name}:python", "exec"), module.__dict__)  # noqa: S102
            except ImportError as exc:
                if 'pip install "jaxpg[' in str(exc):  # an optional extra this run lacks
                    pytest.skip(f"{doc.name} needs an optional extra: {exc}")
                raise
        elif lang in ("bash", "sh", "console"):
            for command in shell_commands(body):
                run_shell(command, tmp_path, execute=directive == "run")


def test_block_parser_sees_every_fence():
    # A fence the regex missed would silently skip an example: count them.
    for doc in DOCS:
        fences = sum(1 for line in doc.read_text().splitlines() if line.strip().startswith("```"))
        assert fences == 2 * len(list(blocks(doc))), doc.name

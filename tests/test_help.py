"""``--help`` text: whole sentences, no docstring markup, values as they are typed."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from jaxpg.cli import build_parser
from jaxpg.commands.common import _field_help, _plain, format_value
from jaxpg.config import Config

# Markup and Python reprs that must never reach a user's terminal.
FORBIDDEN = [
    r"``",
    r":(class|func|mod|meth|attr):",
    r"\*\w+\*",
    r"\(64, 64\)",
    r"\bNone\b",
    r"\bTrue\b",
    r"\bFalse\b",
]


def _raw_entries() -> dict[str, str]:
    """Each field's docstring entry, read by a parser independent of the CLI's."""
    doc = inspect.cleandoc(Config.__doc__ or "")  # Python 3.13 dedents __doc__ itself
    section = doc.split("Attributes:", 1)[1]
    entries = re.split(r"\n {2}(\w+): ", "\n" + section)  # entries sit 2 spaces deep
    return {entries[i]: " ".join(entries[i + 1].split()) for i in range(1, len(entries), 2)}


def _last_word(text: str) -> str:
    return re.findall(r"[A-Za-z0-9]+", text)[-1]


def _help_text(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command].format_help()


def test_every_field_has_its_whole_docstring_entry():
    raw = _raw_entries()
    assert set(raw) == {f.name for f in dataclasses.fields(Config)}
    for name, text in raw.items():
        got, text = _field_help(name), _plain(text)
        # A sentence cut mid-way loses the entry's last word (--grad-chunk stopped at
        # "keeps the activations in", --rollout before "``episodes``: ...").
        assert got and _last_word(got) == _last_word(text), (name, got)
        assert got.endswith((".", ")")), (name, got)
        assert len(got.split()) >= 0.9 * len(text.split()), (name, got)


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_help_has_no_markup_or_python_reprs(command):
    text = _help_text(command)
    for pattern in FORBIDDEN:
        hit = re.search(pattern, text)
        assert hit is None, (
            f"{pattern!r} in {command} --help: ...{text[hit.start() - 60 : hit.end() + 20]!r}"
        )
    assert "(default: 64,64)" in text and "(default: auto)" in text


def test_format_value_is_what_is_typed():
    assert format_value((64, 64)) == "64,64"
    assert format_value(None) == "auto"
    assert format_value(True) == "true" and format_value(False) == "false"
    assert format_value(0.5) == "0.5"


def test_the_forbidden_patterns_catch_the_old_help():
    """The checks above are live: the old help text fails them."""
    old = "(a ``lax.scan``), which keeps the activations in (default: None) (64, 64) *traced*"
    assert sum(re.search(p, old) is not None for p in FORBIDDEN) == 4
    raw = _raw_entries()["grad_chunk"]
    cut = raw.split(" cache:")[0]
    assert _last_word(cut) != _last_word(raw)

"""Package metadata: one version, the license, py.typed, the extras named in messages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jaxpg

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "jaxpg.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", jaxpg.__version__)
    assert f"## [{jaxpg.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_license_file_and_spdx_metadata():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_py_typed_ships_with_the_package():
    assert (ROOT / "jaxpg" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["jaxpg"]
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


def test_every_extra_named_in_a_message_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    named = set()
    for path in (ROOT / "jaxpg").rglob("*.py"):
        named |= set(re.findall(r"jaxpg\[(\w+)\]", path.read_text()))
    assert named and named <= extras, named - extras


def test_python_classifiers_match_requires_python():
    spec = PYPROJECT["project"]["requires-python"]
    low, high = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec).groups()
    listed = {
        int(c.rsplit(".", 1)[1])
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert listed == set(range(int(low), int(high)))

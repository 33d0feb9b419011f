"""The ``jaxpg`` command line: the only module tree that parses arguments, prints or writes.

Subcommands live in ``jaxpg/commands/<name>.py``; each module defines
``register(subparsers)`` (adds its parser and ``set_defaults(func=run)``) and an
integer ``ORDER`` for the help listing. They are discovered, so adding a command
touches no shared list. Every command exits 0 on success and, on bad input,
prints one line ``jaxpg: error: ...`` to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    from jaxpg import __version__, commands

    parser = argparse.ArgumentParser(
        prog="jaxpg",
        description="Vectorized policy-gradient training in JAX on gymnax environments.",
    )
    parser.add_argument("--version", action="version", version=f"jaxpg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_") or info.name == "common":
            continue
        mod = importlib.import_module(f"jaxpg.commands.{info.name}")
        if hasattr(mod, "register"):
            modules.append(mod)
    for mod in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jaxpg.commands.common import CommandError, start_distributed

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        start_distributed(argv)  # before anything starts JAX's backend
    except CommandError as exc:
        print(f"jaxpg: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError) as exc:
        print(f"jaxpg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxpg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``jaxpg`` command line: the only module tree that parses arguments, prints or writes.

Subcommands live in ``jaxpg/commands/<name>.py``; each module defines
``register(subparsers)`` (adds its parser and ``set_defaults(func=run)``) and an
integer ``ORDER`` for the help listing. They are discovered, so adding a command
touches no shared list.

Exit codes: 0 done; 1 the run failed (NaN/inf, a disk fault, only damaged
checkpoints, the run directory in use by another process); 2 usage error (bad
option, value or path, found before anything is written or compiled); 130
interrupted (SIGINT, Ctrl-C) and 143 stopped by SIGTERM (``kill``, a scheduler, a CI
timeout), both after a checkpoint at the next chunk boundary. Errors are one line
``jaxpg: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import signal
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

# A value that starts with "-" but is a number or a list of numbers: -3, -1e-3, -.5, -3,4
_NEGATIVE = re.compile(r"^-\.?\d[\w.+\-]*(,[\w.+\-]*)*$")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``jaxpg train: error: ... (see jaxpg train --help)``."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def join_negative_values(argv: list[str]) -> list[str]:
    """``["--lr", "-1e-3"]`` → ``["--lr=-1e-3"]``: argparse reads ``-1e-3`` as an option.

    Only a long option without ``=`` followed by a token that reads as a number
    (or a comma list of numbers) is joined; everything else, and anything after
    a bare ``--``, is left as it is.

    Args:
      argv: command-line tokens, without the program name.

    Returns:
      A new list of tokens.

    Example:
      >>> join_negative_values(["train", "--lr", "-1e-3", "--seeds", "3"])
      ['train', '--lr=-1e-3', '--seeds', '3']
    """
    out: list[str] = []
    for tok in argv:
        prev = out[-1] if out else ""
        if (
            _NEGATIVE.match(tok)
            and prev.startswith("--")
            and "=" not in prev
            and len(prev) > 2
            and "--" not in out[:-1]
        ):
            out[-1] = f"{prev}={tok}"
        else:
            out.append(tok)
    return out


def build_parser() -> argparse.ArgumentParser:
    from jaxpg import __version__, commands

    parser = _Parser(
        prog="jaxpg",
        description="Vectorized policy-gradient training in JAX on gymnax environments.",
    )
    parser.add_argument("--version", action="version", version=f"jaxpg {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    modules = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_") or info.name == "common":
            continue
        mod = importlib.import_module(f"jaxpg.commands.{info.name}")
        if hasattr(mod, "register"):
            modules.append(mod)
    for mod in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        mod.register(sub)
    for command in sub.choices.values():  # one option of every command: jaxpg.compile_cache
        command.add_argument(
            "--no-compile-cache",
            action="store_true",
            help="do not read or write the persistent compilation cache (default: on, in "
            "$JAXPG_COMPILE_CACHE or the user cache directory)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Known failures (see :func:`exit_code`) print one line ``jaxpg: error: ...``
    on stderr; any other exception propagates (a bug).

    Args:
      argv: tokens without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
      The exit code: :data:`EXIT_OK`, :data:`EXIT_FAILED`, :data:`EXIT_USAGE` or
      :data:`EXIT_INTERRUPTED`.

    Raises:
      SystemExit: on argparse usage errors (code 2), ``--help`` and ``--version``.
    """
    from jaxpg import compile_cache
    from jaxpg.commands.common import CommandError, import_env_module, start_distributed

    argv = join_negative_values(sys.argv[1:] if argv is None else list(argv))
    try:
        start_distributed(argv)  # before anything starts JAX's backend
        import_env_module(argv)  # its estimators become --estimator choices
    except CommandError as exc:
        print(f"jaxpg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    old = _terminate_as_exception()
    try:
        refuse_empty_values(args)
        compile_cache.configure_cli(enabled=not args.no_compile_cache)  # before compiling
        if getattr(args, "json", False):
            from jaxpg.commands.common import json_stdout

            with json_stdout():  # anything else written to stdout goes to stderr
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except Terminated:
        print("jaxpg: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("jaxpg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        print(f"jaxpg: error: {_one_line(exc)}", file=sys.stderr)
        return code
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a run's host loop: unwinds like Ctrl-C (locks released), exit 143."""


def _raise_terminated(signum, frame):
    raise Terminated


def _terminate_as_exception():
    """Make SIGTERM raise :class:`Terminated` (main thread only); the old handler, or None.

    The host loop of ``jaxpg train`` replaces it meanwhile with a graceful stop
    (a checkpoint at the next chunk boundary, see :mod:`jaxpg.run`).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


# Options whose value names a file, directory or preset: an empty string is refused (it
# would otherwise read as "not given" or as the current directory).
NAMED_VALUES = ("resume", "out", "config", "preset", "gif", "path")


def refuse_empty_values(args: argparse.Namespace) -> None:
    """Raise ``CommandError`` for ``--out ''`` and the like (see :data:`NAMED_VALUES`)."""
    from jaxpg.commands.common import CommandError

    for name in NAMED_VALUES:
        value = getattr(args, name, None)
        if isinstance(value, str) and not value.strip():
            opt = "RUN_DIR_OR_CHECKPOINT" if name == "path" else "--" + name
            raise CommandError(
                f"{opt} {value!r} is empty; give a name or a path, or leave the option out"
            )


def exit_code(exc: BaseException) -> int | None:
    """The exit code of an exception the CLI reports as one line, else ``None`` (a bug).

    Args:
      exc: the exception a command raised.

    Returns:
      :data:`EXIT_FAILED` for ``RunFailed``, ``WriteFailed`` and ``LockedError``;
      :data:`EXIT_USAGE` for ``CommandError``, ``ValueError`` and a missing suite
      extra (``jaxpg.suites.MissingExtra``, naming its ``pip install`` line);
      ``None`` otherwise.
    """
    from jaxpg.commands.common import CommandError
    from jaxpg.files import WriteFailed
    from jaxpg.lock import LockedError
    from jaxpg.run import RunFailed
    from jaxpg.suites import MissingExtra

    if isinstance(exc, RunFailed | WriteFailed | LockedError):
        return EXIT_FAILED
    if isinstance(exc, CommandError | ValueError | MissingExtra):
        return EXIT_USAGE
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())

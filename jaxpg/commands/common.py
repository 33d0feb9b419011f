"""Shared CLI pieces: ``Config`` options generated from the dataclass, JSON output.

Options are generated from ``jaxpg.Config``'s fields, so a new field is a new
option with no hand-copied list. Each option defaults to "not given" (``None``)
so that layers compose: defaults < ``--preset`` < ``--config FILE`` < options.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import typing

from jaxpg.files import json_default, write_json_atomic  # noqa: F401 - re-exported for commands


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def _attribute_docs(doc: str) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style docstring: ``{name: text}``.

    An entry starts at the section's indentation with ``name:``; every more
    indented line that follows belongs to it, whatever it starts with.
    """
    lines = doc.splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Attributes:")
    except StopIteration:
        return out
    indent = None
    name = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        m = re.match(r"(\w+):\s*(.*)", line.strip())
        if depth == indent and m:
            name = m.group(1)
            out[name] = m.group(2)
        elif name is not None:
            out[name] += " " + line.strip()
    return out


def _plain(text: str) -> str:
    """Docstring text as a user reads it: no reST markup, ``None`` spelt ``auto``."""
    from jaxpg import config as cfg

    names = {
        n: ", ".join(getattr(cfg, n))
        for n in ("ESTIMATORS", "ACTIVATIONS", "ROLLOUTS", "SHUFFLES", "INITS")
    }
    text = re.sub(r"``None``(?: \(auto\))?", "auto", text)
    text = re.sub(r"``(\w+)``", lambda m: names.get(m.group(1), m.group(1)), text)
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)  # :class:`X` → X
    text = text.replace("``", "")
    text = re.sub(r"\*(\w+)\*", r"\1", text)  # *traced* → traced
    return " ".join(text.split())


def _field_help(name: str) -> str:
    """The help text of ``--NAME``: the field's whole ``Config`` docstring entry, plain."""
    from jaxpg.config import Config

    return _plain(_attribute_docs(Config.__doc__ or "").get(name, ""))


def format_value(value) -> str:
    """A Config value as it is typed on the command line (``64,64``, ``auto``, ``true``)."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 64,64, got {text!r}"
        ) from exc


def _parse_optional_bool(text: str) -> bool | None:
    low = text.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    if low in ("none", "auto"):
        return None
    raise argparse.ArgumentTypeError(f"expected true, false or auto, got {text!r}")


class _Auto:
    """An explicit ``auto`` on the command line: stored as None in the Config, but
    unlike an absent option it overrides a preset or config file."""

    def __repr__(self) -> str:
        return "auto"


_AUTO = _Auto()


def _auto_marker(parse):
    def cli_parse(text: str):
        value = parse(text)
        return _AUTO if value is None else value

    cli_parse.__name__ = parse.__name__
    return cli_parse


def _parse_optional_int(text: str) -> int | None:
    if text.strip().lower() in ("auto", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or auto, got {text!r}") from None


def _parse_optional_float(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "auto"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or off, got {text!r}") from None


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add one ``--field`` option per ``Config`` field, all defaulting to "not given"."""
    from jaxpg.config import (
        ACTIVATIONS,
        ESTIMATORS,
        INITS,
        NETWORKS,
        OPTIMIZERS,
        ROLLOUTS,
        SHUFFLES,
        Config,
    )

    group = parser.add_argument_group("run configuration (jaxpg.Config fields)")
    defaults = Config()
    hints = typing.get_type_hints(Config)
    choices = {
        "estimator": ESTIMATORS,
        "activation": ACTIVATIONS,
        "rollout": ROLLOUTS,
        "weight_init": INITS,
        "minibatch_shuffle": SHUFFLES,
        "network": NETWORKS,
        "optimizer": OPTIMIZERS,
    }
    for f in dataclasses.fields(Config):
        default = getattr(defaults, f.name)
        hint = hints[f.name]
        opt = "--" + f.name.replace("_", "-")
        help_text = f"{_field_help(f.name)} (default: {format_value(default)})"
        help_text = help_text.replace("%", "%%")
        kw: dict = {"dest": f.name, "default": None, "help": help_text}
        if hint is bool:
            group.add_argument(opt, action=argparse.BooleanOptionalAction, **kw)
            continue
        if f.name in ("hidden_sizes", "conv_channels"):
            kw.update(type=_parse_sizes, metavar="N,N")
        elif hint == bool | None:
            kw.update(type=_auto_marker(_parse_optional_bool), metavar="{true,false,auto}")
        elif hint is int:
            kw.update(type=int, metavar="INT")
        elif hint == int | None:
            kw.update(type=_auto_marker(_parse_optional_int), metavar="{INT,auto}")
        elif hint is float:
            kw.update(type=float, metavar="FLOAT")
        elif hint == float | None:
            kw.update(type=_auto_marker(_parse_optional_float), metavar="{FLOAT,off}")
        else:
            kw.update(type=str)
            if f.name in choices:
                kw.update(choices=choices[f.name])
        group.add_argument(opt, **kw)


def config_overrides(args: argparse.Namespace) -> dict:
    """The ``Config`` fields given explicitly on the command line."""
    from jaxpg.config import Config

    out = {}
    for f in dataclasses.fields(Config):
        value = getattr(args, f.name, None)
        if value is _AUTO:
            out[f.name] = None
        elif value is not None:
            out[f.name] = value
    return out


def add_wandb_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--wandb`` and its destination options (see :mod:`jaxpg.wandb_log`).

    Args:
      parser: the subcommand's parser.
      what: what one W&B run holds, for the help text.
    """
    w = parser.add_argument_group("Weights & Biases (pip install 'jaxpg[wandb]')")
    w.add_argument(
        "--wandb",
        action="store_true",
        help=f"log to Weights & Biases: {what}; WANDB_MODE=offline writes the run "
        "locally for a later `wandb sync`",
    )
    w.add_argument("--wandb-project", default="jaxpg", metavar="NAME", help="(default: jaxpg)")
    w.add_argument(
        "--wandb-entity", default=None, metavar="NAME", help="team or user (default: yours)"
    )
    w.add_argument("--wandb-group", default=None, metavar="NAME", help="run group")
    w.add_argument("--wandb-tags", default="", metavar="TAG,TAG", help="comma-separated run tags")


def wandb_options(args: argparse.Namespace):
    """The ``WandbOptions`` of ``--wandb`` (``None`` without it); checks ``wandb`` imports."""
    if not getattr(args, "wandb", False):
        return None
    from jaxpg.wandb_log import WandbOptions, new_run_id, require_wandb

    try:
        require_wandb()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    tags = tuple(t.strip() for t in args.wandb_tags.split(",") if t.strip())
    return WandbOptions(
        project=args.wandb_project,
        entity=args.wandb_entity,
        group=args.wandb_group,
        tags=tags,
        run_id=new_run_id(),
    )


def add_distributed_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--distributed`` and the coordinator options (see :func:`start_distributed`).

    Args:
      parser: the subcommand's parser.
      what: what runs on every host, for the help text (e.g. ``"the same run"``).
    """
    d = parser.add_argument_group("multi-host (jax.distributed)")
    d.add_argument(
        "--distributed",
        action="store_true",
        help=f"call jax.distributed.initialize first; start {what} with the same command "
        "on every host (auto-detected on SLURM/TPU, else give the options below)",
    )
    d.add_argument("--coordinator-address", default=None, metavar="HOST:PORT")
    d.add_argument("--num-processes", type=int, default=None, metavar="INT")
    d.add_argument("--process-id", type=int, default=None, metavar="INT")


def start_distributed(argv: list[str]) -> None:
    """If ``argv`` has ``--distributed``, join the cluster (``jax.distributed.initialize``).

    The CLI calls this before it builds its parser: ``jax.distributed.initialize``
    must come before anything starts JAX's backend, and the parser's ``Config``
    defaults import gymnax, which does.
    """
    if "--distributed" not in argv:
        return
    pre = argparse.ArgumentParser(add_help=False)
    add_distributed_options(pre, "")
    args, _ = pre.parse_known_args(argv)
    from jaxpg.sharding import initialize_distributed

    kw = {
        k: getattr(args, k)
        for k in ("coordinator_address", "num_processes", "process_id")
        if getattr(args, k) is not None
    }
    try:
        initialize_distributed(**kw)
    except (RuntimeError, ValueError) as exc:
        raise CommandError(f"--distributed: {exc}") from None


_JSON_OUT: list = []  # the real stdout while json_stdout() holds it


@contextlib.contextmanager
def json_stdout():
    """Keep stdout for the one JSON document of ``--json``: everything else goes to stderr.

    Suites print on import ("Failed to import warp", pygame's greeting) and C
    libraries write to file descriptor 1, so ``sys.stdout`` and, where it is the
    process's descriptor 1, the descriptor itself point at stderr while the
    command runs; :func:`emit_json` writes to the saved stream.
    """
    real = sys.stdout
    real.flush()
    try:
        fd_level = real.fileno() == 1
    except (AttributeError, OSError, ValueError):  # a captured or replaced stream
        fd_level = False
    saved = None
    if fd_level:
        saved = os.dup(1)
        os.dup2(2, 1)
        out = os.fdopen(os.dup(saved), "w")
    else:
        out = real
    _JSON_OUT.append(out)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        _JSON_OUT.pop()
        if saved is not None:
            out.close()
            os.dup2(saved, 1)
            os.close(saved)


def import_env_module(argv: list[str]) -> None:
    """Import the module ``--env-module`` names before the parser is built.

    The module may register environments and estimators
    (``jaxpg.estimators.register``); importing it first puts its estimators
    among ``--estimator``'s choices. The CLI calls this after
    :func:`start_distributed`.
    """
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # not `--env`
    pre.add_argument("--env-module", dest="env_module", default=None)
    args, _ = pre.parse_known_args(argv)
    if args.env_module is None:
        return
    from jaxpg import envs

    try:
        envs.import_module(args.env_module)
    except ValueError as exc:
        raise CommandError(f"--env-module: {exc}") from None


def emit_json(obj) -> None:
    """Print one JSON document on stdout (the ``--json`` contract)."""
    stream = _JSON_OUT[-1] if _JSON_OUT else sys.stdout
    json.dump(obj, stream, indent=2, sort_keys=True, default=json_default)
    stream.write("\n")
    stream.flush()


def check_memory(
    config,
    devices: int = 1,
    what: str = "the run",
    advice: str = "use fewer envs or steps, more devices, or --skip-memory-check",
) -> None:
    """Refuse a run whose analytic memory estimate exceeds the free device memory.

    Uses :func:`jaxpg.sweep.estimate_run_bytes` (no tracing, no compile) against
    all the free memory of one device (host RAM on CPU), the env batch split
    over ``devices``. Nothing is checked where the free memory cannot be measured.

    Raises:
      CommandError: one line with the estimate and the budget.
    """
    from jaxpg import sharding
    from jaxpg.sweep import estimate_run_bytes

    mesh = sharding.run_mesh(sharding.select_devices(devices))
    budget, source = sharding.device_memory_budget(mesh, 1.0)
    if source == "fallback":
        return
    need = estimate_run_bytes(config) / max(1, devices)
    if need > budget:
        where = "free device memory" if source == "device" else "available host RAM"
        raise CommandError(
            f"{what} needs about {need / 2**30:.2f} GiB per device (analytic estimate for "
            f"num_envs={config.num_envs}, num_steps={config.num_steps}, hidden_sizes="
            f"{config.hidden_sizes}) but the budget is {budget / 2**30:.2f} GiB ({where}); "
            f"{advice}"
        )


def _coerce_field(name: str, value, source: str):
    """Check/convert one config-file value to the ``Config`` field's type.

    The one type check is :func:`jaxpg.config.coerce_field` (the one ``Config``
    itself runs); only the text forms a file may use on top (``"auto"`` for an
    optional field, ``"64,64"`` for a size list) are read here first.
    """
    from jaxpg.config import coerce_field, field_hint

    hint = field_hint(name)
    if isinstance(value, str):
        parse = {bool | None: _parse_optional_bool, int | None: _parse_optional_int}.get(hint)
        if name in ("hidden_sizes", "conv_channels"):
            parse = _parse_sizes
        if parse is not None:
            try:
                value = parse(value)
            except argparse.ArgumentTypeError as exc:
                raise CommandError(f"{source}: {name}={value!r}: {exc}") from None
        elif hint is float and _looks_numeric(value):
            raise CommandError(
                f"{source}: {name}={value!r} is a string, not a number (YAML 1.1 reads "
                f"{value} as text: write it with a dot and a signed exponent, e.g. "
                f"{_yaml_float(value)})"
            )
    try:
        return coerce_field(name, value)
    except ValueError as exc:
        raise CommandError(f"{source}: {exc}") from None


def parse_field_text(name: str, text: str, source: str):
    """A ``Config`` field's value typed as text (``--set lr=1e-3``, ``anneal_lr=false``).

    The text forms are the command line's (``true``/``false``/``auto``, ``64,64``);
    the value then goes through the one type check (:func:`_coerce_field`).

    Raises:
      CommandError: an unknown field, or text that is not a value of its type.
    """
    from jaxpg.config import Config, field_hint

    names = [f.name for f in dataclasses.fields(Config)]
    if name not in names:
        raise CommandError(f"{source}: unknown field {name!r}; allowed: {', '.join(names)}")
    hint = field_hint(name)
    try:
        if hint is bool:
            if text.lower() in ("none", "auto"):
                raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
            try:
                value = _parse_optional_bool(text)
            except argparse.ArgumentTypeError:
                raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None
        elif hint is int:
            value = int(text)
        elif hint is float:
            value = float(text)
        elif hint == str | None and text.lower() in ("none", "auto"):
            value = None
        else:
            value = text
    except ValueError:
        raise CommandError(f"{source}: {name}={text!r} is not {_hint_text(hint)}") from None
    except argparse.ArgumentTypeError as exc:
        raise CommandError(f"{source}: {name}: {exc}") from None
    return _coerce_field(name, value, source)


def _hint_text(hint) -> str:
    return {int: "an integer", float: "a number"}.get(hint, "a value of its type")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml_float(text: str) -> str:
    """``"3e-4"`` → ``"3.0e-4"`` (a form YAML 1.1 reads as a float)."""
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}" if exponent else mantissa


# Top-level keys of the ``config.json`` that ``jaxpg train`` and ``jaxpg sweep`` write
# next to the ``config`` table; ``--config`` reads such a file's ``config`` and skips these.
RECORD_KEYS = frozenset(
    {"kind", "config_sha256"}  # the identity every directory's record carries (jaxpg.rundir)
    | {"num_updates", "run", "versions", "command", "created"}  # a run directory's
    | {"grid", "seeds", "version", "devices", "programs"}  # a sweep directory's
    | {"space", "search", "search_seed", "options"}  # a search's (jaxpg sweep --search)
)


class _DuplicateKey(ValueError):
    """A key given twice in one table of a config file (TOML refuses it; so do we)."""


def _unique_keys(pairs: list) -> dict:
    """``json.loads`` ``object_pairs_hook``: refuse a key given twice."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r} is given twice; keep one")
        out[key] = value
    return out


def _unique_key_yaml_loader(yaml):
    """A ``yaml.SafeLoader`` whose mappings refuse a key given twice."""

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                line = node.value[i][0].start_mark.line + 1
                raise _DuplicateKey(f"key {key!r} is given twice (again on line {line}); keep one")
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_config_data(path) -> dict:
    """The parsed contents of a ``.toml``, ``.yaml``/``.yml`` or ``.json`` config file.

    Raises:
      CommandError: the file cannot be read or parsed, or its type is unknown.
    """
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"--config {path}: not valid TOML: {exc}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            raise CommandError(f"--config {path}: {exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"--config {path}: not valid JSON: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise CommandError(
                f"--config {path}: YAML needs the pyyaml package (pip install 'jaxpg[yaml]'), "
                "or use a .toml or .json file"
            ) from None
        try:
            data = yaml.load(text, Loader=_unique_key_yaml_loader(yaml))  # noqa: S506 (safe)
        except _DuplicateKey as exc:
            raise CommandError(f"--config {path}: {exc}") from None
        except yaml.YAMLError as exc:
            msg = " ".join(str(exc).split())
            raise CommandError(f"--config {path}: not valid YAML: {msg}") from None
        data = {} if data is None else data
    else:
        raise CommandError(
            f"--config {path}: unknown file type {suffix or '(none)'!r}; "
            "allowed: .toml, .yaml, .yml, .json"
        )
    if not isinstance(data, dict):
        raise CommandError(f"--config {path}: expected a table of Config fields")
    return data


def load_config_file(path) -> dict:
    """Read Config fields from a TOML, YAML (``.yaml``/``.yml``) or JSON file.

    The file is a flat table of ``Config`` fields, or a top-level ``config``
    table; the latter may sit beside the other keys of the ``config.json`` a
    run or sweep directory holds (``RECORD_KEYS``), so ``--config
    RUN_DIR/config.json`` reads that run's config. Unknown fields, wrong types
    and parse errors raise :class:`CommandError` naming the file and the problem.

    Args:
      path: the file; its suffix picks the format.

    Returns:
      ``{field: value}`` with each value checked against the field's type.
    """
    import dataclasses as dc

    from jaxpg.config import Config

    data = read_config_data(path)
    if isinstance(data.get("config"), dict) and set(data) - {"config"} <= RECORD_KEYS:
        data = data["config"]
    names = [f.name for f in dc.fields(Config)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise CommandError(
            f"--config {path}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(names)}"
        )
    return {k: _coerce_field(k, v, f"--config {path}") for k, v in data.items()}


def print_config(config) -> None:
    """Print ``config`` as a flat JSON table of its fields (a file ``--config`` reads)."""
    json.dump(config.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def resolve_config(args: argparse.Namespace):
    """Build the ``Config``: defaults < ``--preset`` < ``--config FILE`` < options.

    Returns:
      ``(config, sources)`` where ``sources`` maps each non-default field to
      where its value came from (``preset``, ``file`` or ``option``).
    """
    from jaxpg.config import Config

    fields: dict = {}
    sources: dict[str, str] = {}
    if getattr(args, "preset", None):
        from jaxpg.presets import get_preset

        fields.update(get_preset(args.preset).config.to_dict())
        sources.update(
            {
                k: "preset"
                for k, v in fields.items()
                if getattr(Config(), k) != (tuple(v) if isinstance(v, list) else v)
            }
        )
    if getattr(args, "config", None):
        from_file = load_config_file(args.config)
        fields.update(from_file)
        sources.update(dict.fromkeys(from_file, "file"))
    opts = config_overrides(args)
    fields.update(opts)
    sources.update(dict.fromkeys(opts, "option"))
    try:
        return Config.from_dict(fields), sources
    except ValueError as exc:
        raise CommandError(str(exc)) from None

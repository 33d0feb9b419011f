"""``jaxpg presets``: list the documented presets and the result each reaches."""

from __future__ import annotations

import argparse
import dataclasses

from jaxpg.commands.common import emit_json

ORDER = 50


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "presets",
        help="list presets with their documented results",
        description="Named configurations for `jaxpg train --preset NAME`, each with the "
        "result scripts/reproduce_presets.py measured.",
    )
    p.add_argument(
        "--json", action="store_true", help="print every preset with its full config as JSON"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxpg.presets import PRESETS

    if args.json:
        emit_json(
            {
                name: {
                    "description": p.description,
                    "result": p.result,
                    "target": p.target,
                    "config": dataclasses.asdict(p.config),
                }
                for name, p in PRESETS.items()
            }
        )
        return 0
    width = max(len(n) for n in PRESETS)
    for name, p in PRESETS.items():
        c = p.config
        print(f"{name:<{width}}  {c.env} / {c.estimator}, {c.total_timesteps:,} env steps")
        print(f"{'':<{width}}  {p.description}")
        print(f"{'':<{width}}  result: {p.result}")
    return 0

"""Named, documented configurations with the result each is documented to reach.

Every preset's ``result`` is reproduced by a script under ``scripts/`` (see the
README's presets table); the learning tests check the CartPole ones.
"""

from __future__ import annotations

import dataclasses

from jaxpg.config import Config


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    config: Config
    description: str
    result: str  # the documented outcome, e.g. "eval return 500.0 ± 0.0 over 8 seeds"
    target: float  # return a learning test asserts (mean over seeds)


def _p(name, description, result, target, **fields) -> tuple[str, Preset]:
    return name, Preset(name, Config(**fields), description, result, target)


# --- CartPole-v1: one preset per estimator -----------------------------------
CARTPOLE = dict([
    _p("cartpole-ppo", "PPO with GAE on CartPole-v1 (the Config() defaults).",
       "TBD", 475.0),
])


# --- other environments ------------------------------------------------------
OTHER: dict[str, Preset] = {}


PRESETS: dict[str, Preset] = {**CARTPOLE, **OTHER}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; a clear error lists the allowed names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"preset={name!r} is unknown; allowed: {', '.join(sorted(PRESETS))}"
        ) from None

"""jaxpg: vectorized policy-gradient training in JAX.

Public API: :class:`Config`, :class:`HParams`, :func:`make_train`,
:func:`make_update`, :func:`make_init`, and the modules ``returns``,
``estimators``, ``networks``, ``envs``, ``rollout`` (and ``variance``).
"""

from jaxpg import estimators, returns
from jaxpg.config import ESTIMATORS, Config, HParams
from jaxpg.train import TrainOutput, make_train
from jaxpg.update import TrainState, make_init, make_update

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "Config",
    "HParams",
    "TrainOutput",
    "TrainState",
    "estimators",
    "make_init",
    "make_train",
    "make_update",
    "returns",
]

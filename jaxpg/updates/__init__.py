"""Update kinds: how one update turns Ψ into new parameters (:class:`UpdateKind`).

Built in: :data:`STEP` (one full-batch gradient step), :data:`EPOCHS` (PPO's
clipped minibatch epochs), :data:`TRUST_REGION` (a natural-gradient policy
step, then the critic's epochs). One module per kind; :func:`resolve` turns a
name or a user's own :class:`UpdateKind` into the object an estimator row holds.
"""

from __future__ import annotations

from typing import Any

from jaxpg.updates.base import UpdateKind
from jaxpg.updates.epochs import EPOCHS
from jaxpg.updates.step import STEP
from jaxpg.updates.trust_region import TRUST_REGION

#: The built-in kinds by name.
KINDS: dict[str, UpdateKind] = {k.name: k for k in (STEP, EPOCHS, TRUST_REGION)}


def resolve(update: Any) -> UpdateKind:
    """The :class:`UpdateKind` ``update`` names (or ``update`` itself).

    Args:
      update: ``"step"``, ``"epochs"``, ``"trust_region"`` or an :class:`UpdateKind`.

    Returns:
      The kind.

    Raises:
      ValueError: naming the allowed values.

    Example:
      >>> resolve("epochs") is EPOCHS
      True
    """
    if isinstance(update, UpdateKind):
        return update
    if isinstance(update, str) and update in KINDS:
        return KINDS[update]
    raise ValueError(
        f"update={update!r} is invalid: allowed: {', '.join(KINDS)} or a jaxpg.updates.UpdateKind"
    )


__all__ = ["EPOCHS", "KINDS", "STEP", "TRUST_REGION", "UpdateKind", "resolve"]

"""Static run configuration and the traced hyperparameters that sweeps vmap over.

``Config`` is frozen and hashable: changing any field means a new compile. The
fields that users sweep (``lr``, ``gamma``, ``lam``, ``clip_eps``, ``ent_coef``,
``vf_coef``, ``max_grad_norm``, ``delta``, ``value_clip_eps``, ``target_kl``,
``kl_adaptive_lr``) are copied into :class:`HParams`, a pytree of float32 scalars
passed to the compiled program as *arguments*, so new values never recompile. Every
check on a ``Config`` runs in ``__post_init__``, i.e. before anything is traced or
compiled.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import typing
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpg.estimators import ESTIMATORS, REGISTRY
from jaxpg.updates import EPOCHS

ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu")
ROLLOUTS = ("auto", "segments", "episodes")
SHUFFLES = ("feistel", "sort")
INITS = ("orthogonal", "lecun")
NETWORKS = ("mlp", "cnn", "gru")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


class HParams(NamedTuple):
    """Traced hyperparameters: float32 scalars (or a batch of them under vmap).

    This NamedTuple is the one declaration of which ``Config`` fields are traced:
    :data:`TRACED_FIELDS` is its field list, and sweeps, grids and the CLI read it.
    Build one with :meth:`Config.hparams`, which also broadcasts a batch.
    """

    lr: jax.Array
    gamma: jax.Array
    lam: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    delta: jax.Array
    value_clip_eps: jax.Array
    target_kl: jax.Array
    kl_adaptive_lr: jax.Array

    def valid(self) -> jax.Array:
        """Boolean array (the batch shape): every value in its allowed range
        (:data:`TRACED_RULES`, the same check :meth:`Config.validate` runs).
        Traceable, so a compiled run can refuse bad values (``make_train(guard=True)``).
        """
        ok = jnp.ones(jnp.shape(self.lr), bool)
        for name, rule in TRACED_RULES.items():
            ok &= rule.holds(getattr(self, name), jnp)
        return ok


class Rule(NamedTuple):
    """The allowed range of one traced hyperparameter: ``low < x`` (or ``<=``), ``x <= high``."""

    low: float
    low_inclusive: bool
    high: float = math.inf
    finite: bool = True  # inf refused (``max_grad_norm`` allows it: no clipping)
    text: str = ""

    def holds(self, x: Any, xp: Any = np) -> Any:
        """Elementwise: ``x`` lies in the range (NaN never does); ``xp`` is np or jnp."""
        above = x >= self.low if self.low_inclusive else x > self.low
        ok = above & (x <= self.high)
        return ok & xp.isfinite(x) if self.finite else ok


# The one table of the traced fields' allowed values: Config.validate, Config.hparams
# (on concrete values) and HParams.valid (traced, under guard=True) all read it.
TRACED_RULES = {
    "lr": Rule(0.0, False, text="must be a finite number > 0"),
    "gamma": Rule(0.0, True, 1.0, text="must lie in [0, 1]"),
    "lam": Rule(0.0, True, 1.0, text="must lie in [0, 1]"),
    "clip_eps": Rule(0.0, False, text="must be a finite number > 0"),
    "ent_coef": Rule(0.0, True, text="must be a finite number >= 0"),
    "vf_coef": Rule(0.0, True, text="must be a finite number >= 0"),
    "max_grad_norm": Rule(0.0, False, finite=False, text="must be > 0 (inf disables)"),
    "delta": Rule(0.0, False, text="must be a finite number > 0"),
    # The switched fields (SWITCHED_FIELDS): None in Config is inf here, which never acts.
    "value_clip_eps": Rule(0.0, False, finite=False, text="must be > 0 or None (off)"),
    "target_kl": Rule(0.0, False, finite=False, text="must be > 0 or None (off)"),
    "kl_adaptive_lr": Rule(0.0, False, finite=False, text="must be > 0 or None (off)"),
}


# The Config fields that are traced hyperparameters (vmappable, never recompile).
TRACED_FIELDS: tuple[str, ...] = HParams._fields

# Traced fields that ``None`` switches off. The switch is static (``Config.switched_on``:
# the off program has no trace of the feature); the value is traced, ``None`` → ``inf``.
SWITCHED_FIELDS: tuple[str, ...] = ("value_clip_eps", "target_kl", "kl_adaptive_lr")


def traced_value(value: Any) -> Any:
    """A ``Config`` value as its :class:`HParams` leaf: ``None`` (a switched-off
    field of :data:`SWITCHED_FIELDS`) becomes ``inf``: never clips, stops or adapts."""
    return math.inf if value is None else value


def _fail(field: str, value: object, allowed: str) -> None:
    raise ValueError(f"Config.{field}={value!r} is invalid: {allowed}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a training run. ``Config()`` trains PPO on CartPole-v1.

    The defaults are PPO settings tuned on CartPole-v1 for reliability: every one
    of 8 seeds reaches an evaluation return of 500 in 1M steps (PureJaxRL's
    CartPole settings, 4 envs × 128 steps, lr 2.5e-4, entropy 0.01, 500k steps,
    average ≈ 400 here, with seeds stuck below 200). Fields marked *traced*
    become :class:`HParams`; the rest are static (shapes, names, switches).

    Attributes:
      env: environment id: a gymnax id (``gymnax.registered_envs``), a name
        registered with :func:`jaxpg.envs.register`, or ``suite/name`` for the
        other suites. Ignored when an ``Environment`` instance is passed to
        ``make_train``.
      env_module: a Python module imported before ``env`` and ``estimator`` are
        looked up, which registers them (``jaxpg.envs.register``,
        ``jaxpg.estimators.register``); recorded with the run, so the CLI's
        ``--resume``, ``eval`` and sweeps find a custom environment or estimator
        again. A module in the working directory is found too.
      estimator: one of ``ESTIMATORS``: ``reinforce`` (Ψ = R(τ)),
        ``reward_to_go`` (Ψ = G_t), ``baseline`` (Ψ = G_t − V(s_t)), ``vpg``
        (Ψ = GAE(γ, λ)), ``ppo`` (clipped surrogate with GAE advantages),
        ``npg``/``trpo`` (natural-gradient / trust-region steps, :mod:`jaxpg.natural`),
        ``rloo``/``grpo``/``grpo_nostd`` (group-relative baselines over
        ``group_size`` episodes per start state, :mod:`jaxpg.groups`), or a
        name given to :func:`jaxpg.estimators.register`.
      num_envs: parallel environments B.
      num_steps: rollout segment length T (``segments`` mode). In ``episodes``
        mode T is the environment's episode limit and this field is unused.
      total_timesteps: env-step budget; updates = total // (num_envs × T).
      lr: learning rate (*traced*).
      gamma: discount γ ∈ [0, 1] (*traced*).
      lam: GAE λ ∈ [0, 1] (*traced*; used by ``vpg`` and ``ppo``).
      num_epochs: PPO epochs over each rollout. PPO only: the other estimators
        take exactly one full-batch gradient step per rollout, which keeps them
        on-policy (and so unbiased).
      num_minibatches: PPO minibatches per epoch; must divide num_envs × num_steps.
      minibatch_shuffle: how PPO permutes the batch each epoch, one of
        ``SHUFFLES``. ``feistel`` (default): a keyed pseudo-random bijection
        evaluated elementwise (``jaxpg.shuffle``), O(n) and far cheaper than a
        sort on CPU. ``sort``: ``jax.random.permutation``, exactly uniform over
        all permutations, O(n log n).
      grad_chunk: PPO computes each minibatch's gradient as the mean of the
        gradients of equal chunks of this many samples (a ``lax.scan``), which
        is the same gradient up to float rounding and keeps the activations in
        cache: on a 2-core CPU a 131,072-sample minibatch runs 1.5× faster in
        chunks of 8192. ``None`` (auto): chunks of at most 8192 on CPU when the
        minibatch has more than 16,384 samples, none on GPU/TPU (which want
        the big matmuls) or on a sharded run. An integer must divide the
        minibatch size; ``segments`` rollouts only (their samples are unmasked).
      clip_eps: PPO clip ε (*traced*).
      value_clip_eps: PPO's value clipping (*traced*; ``None``: off): the critic's
        loss becomes ½ E[max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²)], V_old
        the rollout's values, so one update moves V by about ε at most where that
        helps the fit. Any estimator with a critic; the switch (``None`` or a
        number) is static, the number traced (``inf`` keeps it on but never clips).
      target_kl: stop an ``epochs`` update (``ppo``) early (*traced*; ``None``: off):
        each minibatch step first measures the approximate KL E[(ρ − 1) − log ρ]
        of the current policy from the rollout's on that minibatch, and once it
        exceeds ``target_kl`` that step and every remaining step of the update are
        skipped (the parameters and the optimizer state, its step count included,
        stay as they are). The metric ``minibatch_steps`` counts the steps taken.
        Skipped steps are masked, not branched around, so they cost the same time.
      kl_adaptive_lr: a KL-adaptive learning rate for ``epochs`` updates (*traced*;
        ``None``: off), the desired KL d: before each minibatch step the rate's
        multiplier is divided by 1.5 when the approximate KL of that minibatch
        exceeds 2d and multiplied by 1.5 below d/2 (kept in [1e-3, 1e3]); it lives
        in the Optax state (:func:`jaxpg.optimizers.scale_by_kl`) and multiplies
        the schedule's rate (the ``lr`` metric shows the product). Built-in
        optimizers and factories only, not a ready-made transformation.
      ent_coef: entropy bonus coefficient (*traced*).
      vf_coef: critic loss coefficient (*traced*).
      max_grad_norm: global-norm gradient clip over all parameters (*traced*;
        ``inf`` disables it).
      hidden_sizes: hidden layer widths of both the policy and the value MLP
        (after the convolutions for ``network="cnn"``).
      activation: one of ``ACTIVATIONS``.
      network: one of ``NETWORKS``. ``mlp``: observations flattened into dense
        layers. ``cnn``: for image/grid observations ``[H, W, C]`` (MinAtar):
        ``conv_channels`` 3×3 convolutions (stride 1, same padding), then the
        dense layers of ``hidden_sizes``. ``gru``: a recurrent actor-critic for
        partially observed tasks: the dense layers, then a GRU cell of width
        ``hidden_sizes[-1]`` shared by the policy and value heads, its state
        carried through rollouts, zeroed at episode starts and replayed over
        whole sequences in the update (minibatches are groups of envs, so
        ``num_minibatches`` must divide ``num_envs``).
      conv_channels: output channels of each convolution (``network="cnn"``).
      layer_norm: LayerNorm after every hidden layer (dense and convolutional).
      shared_torso: the policy and value heads share one torso (one network with
        two heads, trained on the summed loss) instead of two separate networks.
      optimizer: Optax optimizer by name, one of ``OPTIMIZERS`` (``adam`` and
        ``adamw`` with eps 1e-5). It is chained after
        ``optax.clip_by_global_norm(max_grad_norm)`` and driven by the
        (annealed) learning rate; ``make_train(optimizer=...)`` takes any Optax
        transformation instead.
      weight_decay: decoupled weight decay of ``adamw`` (ignored by the others).
      weight_init: weight initialisation, one of ``INITS``. ``orthogonal`` (default):
        orthogonal kernels with gain √2 for hidden layers, 0.01 for the policy
        head and 1 for the value head (PureJaxRL, CleanRL). ``lecun``: flax's
        default LeCun-normal kernels for every layer (rejax). The small policy
        head starts near the uniform policy and learns more slowly in the first
        few large-batch updates.
      anneal_lr: decay the learning rate linearly to 0 over the run.
      normalize_advantages: subtract the batch mean and divide by the batch std
        of Ψ before the policy loss. This is a same-batch baseline plus a random
        rescaling, so it changes the estimator (slightly biased). ``None`` means
        on for ``ppo``, ``npg`` and ``trpo`` and off for the other estimators.
      normalize_obs: feed the networks observations normalised by the running mean
        and variance of every observation collected so far, clipped to ±10
        (:mod:`jaxpg.normalization`; checkpointed, frozen for evaluation).
      normalize_rewards: divide the update's rewards by the running standard
        deviation of the discounted return (clipped to ±10); returns reported in
        the metrics stay the environment's own.
      rollout: ``auto``, ``segments`` or ``episodes``. ``segments``: fixed-length
        rollouts that continue across updates, bootstrapped from V(final obs).
        ``episodes``: each env runs one complete episode per update, steps after
        its end masked. ``auto`` picks ``episodes`` for reinforce/reward_to_go
        and ``segments`` otherwise.
      log_std_init: initial log standard deviation of Gaussian policies.
      delta: trust-region size δ of ``npg``/``trpo``: the step's mean KL from the
        old policy (*traced*).
      cg_iters: conjugate-gradient iterations of ``npg``/``trpo``.
      cg_damping: λ of the damped Fisher matrix F + λI (``npg``/``trpo``).
      backtrack_iters: line-search candidates βᵏ·step, k < this (``trpo``; β = 0.8).
      group_size: G, episodes per start state of ``rloo``/``grpo``/``grpo_nostd``
        (must divide ``num_envs``; ≥ 2).
      seed: default seed used by the command line (``train(key)`` takes a key).
    """

    env: str = "CartPole-v1"
    env_module: str | None = None
    estimator: str = "ppo"
    num_envs: int = 32
    num_steps: int = 64
    total_timesteps: int = 1_000_000
    lr: float = 1e-3
    gamma: float = 0.99
    lam: float = 0.95
    num_epochs: int = 4
    num_minibatches: int = 8
    minibatch_shuffle: str = "feistel"
    grad_chunk: int | None = None
    clip_eps: float = 0.2
    value_clip_eps: float | None = None
    target_kl: float | None = None
    kl_adaptive_lr: float | None = None
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    network: str = "mlp"
    conv_channels: tuple[int, ...] = (16,)
    layer_norm: bool = False
    shared_torso: bool = False
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    weight_init: str = "orthogonal"
    anneal_lr: bool = True
    normalize_advantages: bool | None = None
    normalize_obs: bool = False
    normalize_rewards: bool = False
    rollout: str = "auto"
    log_std_init: float = 0.0
    seed: int = 0
    delta: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 0.1
    backtrack_iters: int = 10
    group_size: int = 8

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # types first: a field named in every message
            value = getattr(self, f.name)
            typed = _coerce(f.name, _hints()[f.name], value)
            if typed is not value:
                object.__setattr__(self, f.name, typed)
        self.validate()

    # -- validation -----------------------------------------------------------
    def validate(self, check_env: bool = True) -> None:
        """Raise ``ValueError`` naming the field and the allowed values."""
        if check_env:
            from jaxpg import envs  # imports gymnax: only when a Config is checked

            if self.env_module is not None:
                envs.import_module(self.env_module)
            envs.check_id(self.env)
        if self.estimator not in ESTIMATORS and self.env_module is not None and not check_env:
            from jaxpg import envs  # the module may register estimators too

            envs.import_module(self.env_module)
        if self.estimator not in ESTIMATORS:
            _fail(
                "estimator",
                self.estimator,
                f"allowed: {', '.join(ESTIMATORS)}, or a name given to jaxpg.estimators.register",
            )
        if self.activation not in ACTIVATIONS:
            _fail("activation", self.activation, f"allowed: {', '.join(ACTIVATIONS)}")
        if self.rollout not in ROLLOUTS:
            _fail("rollout", self.rollout, f"allowed: {', '.join(ROLLOUTS)}")
        if self.weight_init not in INITS:
            _fail("weight_init", self.weight_init, f"allowed: {', '.join(INITS)}")
        if self.network not in NETWORKS:
            _fail("network", self.network, f"allowed: {', '.join(NETWORKS)}")
        if self.optimizer not in OPTIMIZERS:
            _fail("optimizer", self.optimizer, f"allowed: {', '.join(OPTIMIZERS)}")
        if not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in self.conv_channels
        ):
            _fail("conv_channels", self.conv_channels, "must be a tuple of integers >= 1")
        if not float(self.weight_decay) >= 0.0:
            _fail("weight_decay", self.weight_decay, "must be >= 0")
        if self.minibatch_shuffle not in SHUFFLES:
            _fail("minibatch_shuffle", self.minibatch_shuffle, f"allowed: {', '.join(SHUFFLES)}")
        for name in (
            "num_envs", "num_steps", "num_epochs", "num_minibatches", "total_timesteps",
            "cg_iters", "backtrack_iters", "group_size",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(name, value, "must be an integer >= 1")
        if not self.hidden_sizes or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden_sizes
        ):
            _fail("hidden_sizes", self.hidden_sizes, "must be a non-empty tuple of integers >= 1")
        for name, rule in TRACED_RULES.items():  # the table HParams.valid reads too
            if not rule.holds(float(traced_value(getattr(self, name)))):
                _fail(name, getattr(self, name), rule.text)
        if not math.isfinite(self.log_std_init):
            _fail("log_std_init", self.log_std_init, "must be a finite number")
        if not -(2**63) <= self.seed < 2**63:
            _fail("seed", self.seed, "must fit in a signed 64-bit integer [-2**63, 2**63)")
        if self.value_clip_eps is not None and not REGISTRY[self.estimator].critic:
            _fail(
                "value_clip_eps",
                self.value_clip_eps,
                f"estimator {self.estimator!r} has no critic to clip; use None",
            )
        for name in ("target_kl", "kl_adaptive_lr"):
            if getattr(self, name) is not None and REGISTRY[self.estimator].update is not EPOCHS:
                _fail(
                    name,
                    getattr(self, name),
                    f"acts on the minibatch epochs of update kind 'epochs' (ppo); estimator "
                    f"{self.estimator!r} has kind {REGISTRY[self.estimator].update.name!r}; "
                    "use None",
                )
        self._validate_ladder()
        if self.rollout == "segments" and REGISTRY[self.estimator].episodic:
            _fail(
                "rollout",
                self.rollout,
                f"estimator {self.estimator!r} has no critic to bootstrap cut "
                "episodes, so it needs rollout='episodes' or 'auto'",
            )
        if self.grad_chunk is not None:
            if (
                isinstance(self.grad_chunk, bool)
                or not isinstance(self.grad_chunk, int)
                or self.grad_chunk < 1
            ):
                _fail("grad_chunk", self.grad_chunk, "must be an integer >= 1 or None (auto)")
            if self.rollout_mode != "segments":
                _fail(
                    "grad_chunk",
                    self.grad_chunk,
                    "applies to rollout='segments' only (episodes are masked); use None",
                )
        REGISTRY[self.estimator].update.check_config(self)  # the update kind's rules
        if self.total_timesteps < self.num_envs * (
            self.num_steps if self.rollout_mode == "segments" else 1
        ):
            _fail(
                "total_timesteps",
                self.total_timesteps,
                f"must be at least num_envs*num_steps = "
                f"{self.num_envs * self.num_steps} (one update)",
            )

    def _validate_ladder(self) -> None:
        """The fields of the trust-region and group estimators."""
        if not float(self.cg_damping) >= 0.0:
            _fail("cg_damping", self.cg_damping, "must be >= 0")
        entry = REGISTRY[self.estimator]
        if entry.grouped:
            if self.group_size < 2:
                _fail("group_size", self.group_size, "must be >= 2 (a group baseline)")
            if self.num_envs % self.group_size:
                _fail(
                    "group_size",
                    self.group_size,
                    f"must divide num_envs={self.num_envs} (num_envs/group_size start states)",
                )

    # -- derived values (computed, never written back) -------------------------
    @property
    def rollout_mode(self) -> str:
        if self.rollout != "auto":
            return self.rollout
        return "episodes" if REGISTRY[self.estimator].episodic else "segments"

    def switched_on(self, name: str) -> bool:
        """Whether the switched traced field ``name`` (:data:`SWITCHED_FIELDS`) is on:
        a static fact of the compiled program, the field not ``None``."""
        return getattr(self, name) is not None

    @property
    def uses_critic(self) -> bool:
        return REGISTRY[self.estimator].critic

    @property
    def normalize(self) -> bool:
        if self.normalize_advantages is None:
            return REGISTRY[self.estimator].normalize
        return bool(self.normalize_advantages)

    def hparams(self, **values: Any) -> HParams:
        """The traced hyperparameters: this config's values, with ``values`` overriding.

        Every field becomes float32 and all are broadcast to one shape, so a batch
        given for one field (``lr=[1e-3, 3e-4]``) yields an ``HParams`` whose every
        leaf has that batch shape: ready for ``jax.vmap`` with ``in_axes=0``.

        Args:
          **values: traced fields (``lr``, ``gamma``, ...) as scalars or arrays.

        Returns:
          :class:`HParams` of float32 arrays of the broadcast shape (``()`` if no
          batch is given).

        Raises:
          ValueError: an unknown field name, or shapes that do not broadcast.

        Example:
          >>> hp = Config().hparams(lr=[1e-3, 3e-4, 1e-4])
          >>> hp.lr.shape, hp.gamma.shape
          ((3,), (3,))
        """
        unknown = sorted(set(values) - set(TRACED_FIELDS))
        if unknown:
            raise ValueError(
                f"hparams: unknown field(s) {unknown}; allowed: {', '.join(TRACED_FIELDS)}"
            )
        self.check_switches(values)
        leaves = []
        for f in TRACED_FIELDS:
            value = traced_value(values.get(f, getattr(self, f)))
            try:
                leaf = jnp.asarray(value, jnp.float32)
            except (TypeError, ValueError):
                raise ValueError(
                    f"hparams: {f}={value!r} is invalid: must be a number or an array of numbers"
                ) from None
            if f in values and not isinstance(leaf, jax.core.Tracer):
                bad = ~TRACED_RULES[f].holds(np.asarray(leaf))
                if bad.any():  # the same table Config.validate and HParams.valid read
                    first = np.asarray(leaf).reshape(-1)[np.argmax(bad.reshape(-1))]
                    raise ValueError(
                        f"hparams: {f}={float(first)!r} is invalid: {TRACED_RULES[f].text}"
                    )
            leaves.append(leaf)
        try:
            return HParams(*jnp.broadcast_arrays(*leaves))
        except ValueError as exc:
            raise ValueError(f"hparams: the values' shapes do not broadcast: {exc}") from None

    def check_switches(self, values: Any) -> None:
        """Refuse traced values for a switched field this config has off.

        Args:
          values: ``{traced field: value(s)}`` about to become :class:`HParams`.

        Raises:
          ValueError: naming the field: its switch is static, so the config
            must set it (to any number) for the program to contain the feature.
        """
        for name in SWITCHED_FIELDS:
            if values.get(name) is not None and not self.switched_on(name):
                raise ValueError(
                    f"Config.{name}=None switches it off in the compiled program; set "
                    f"Config.{name} to a number to give or sweep its traced values"
                )

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown Config field(s) {unknown}; allowed: {', '.join(sorted(names))}"
            )
        d = dict(d)
        for name in ("hidden_sizes", "conv_channels"):
            if isinstance(d.get(name), list):  # JSON has no tuples; anything else is checked
                d[name] = tuple(d[name])
        return cls(**d)


@functools.cache
def _hints() -> dict:
    return typing.get_type_hints(Config)


def field_hint(name: str) -> Any:
    """The type hint of ``Config`` field ``name``."""
    return _hints()[name]


def coerce_field(name: str, value: Any) -> Any:
    """``value`` checked and converted to ``Config`` field ``name``'s type.

    The one type check of a field's value: ``Config`` runs it on every field,
    and the CLI's config files run it on every value they read.

    Raises:
      ValueError: ``Config.<name>=<value> is invalid: ...`` naming the type.
    """
    return _coerce(name, _hints()[name], value)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the type of field ``name`` (NumPy scalars to Python, int to float).

    Strings are never parsed here: ``Config(anneal_lr="no")`` is an error, not True.
    """
    optional = hint in (int | None, bool | None, str | None, float | None)
    if value is None and optional:
        return None
    if hint in (float, float | None):
        if isinstance(value, bool | str) or not isinstance(value, numbers.Real):
            _fail(
                name,
                value,
                f"must be a number{' or None' if optional else ''}, not {type(value).__name__}",
            )
        return float(value)
    if hint in (int, int | None):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            _fail(name, value, f"must be an integer{' or None' if optional else ''}")
        return int(value)
    if hint in (bool, bool | None):
        if type(value).__name__ not in ("bool", "bool_"):
            _fail(
                name,
                value,
                f"must be True or False{' or None' if optional else ''} "
                f"(a {type(value).__name__} is not read as a switch)",
            )
        return bool(value)
    if hint in (str, str | None):
        if value is None and hint is not str:
            return None
        if not isinstance(value, str):
            _fail(name, value, f"must be a string, not {type(value).__name__}")
        return value
    if hint == tuple[int, ...]:  # hidden_sizes, conv_channels
        if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
            _fail(name, value, "must be a tuple of integers >= 1 such as (64, 64)")
        if not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) for h in value):
            _fail(name, value, "must be a tuple of integers >= 1 such as (64, 64)")
        return tuple(int(h) for h in value)
    return value

"""A token-sequence task in the spirit of RL fine-tuning of language models.

Each episode is one "prompt → completion": the reset state draws a prompt
(a step size ``k`` ∈ {1, …, V−1} and a first token ``s`` ∈ {0, …, V−1}); the
policy then emits T tokens from a vocabulary of V, one per step, and receives a
single reward at the end from a programmatic scorer. The hidden rule is an
arithmetic progression: token t should be (previous token + k) mod V, with the
previous token of t = 0 being ``s``. The reward is the fraction of the T tokens
that follow the rule (checked against the token actually emitted before), so a
uniformly random policy scores 1/V on average and a perfect one 1.

Observation (float32, size 2V + T): one-hot(k) ‖ one-hot(previous token) ‖
one-hot(position t). Action: a token (``Discrete(V)``). The episode terminates
(a true terminal, no bootstrap) after T tokens; reward is 0 before the last step.

Registered as ``Sequence-v0`` (V = 8, T = 8); build other sizes with
``SequenceTask(vocab, length)`` and :func:`jaxpg.envs.register`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class State(environment.EnvState):
    step_size: jax.Array  # k, int32
    prev: jax.Array  # the previous token (s before the first step), int32
    correct: jax.Array  # tokens so far that followed the rule, float32
    time: int


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 8


class SequenceTask(environment.Environment):
    """Emit ``length`` tokens of a vocabulary of ``vocab`` that follow a hidden rule."""

    def __init__(self, vocab: int = 8, length: int = 8) -> None:
        super().__init__()
        if vocab < 2 or length < 1:
            raise ValueError(f"SequenceTask: vocab={vocab} must be >= 2, length={length} >= 1")
        self.vocab = int(vocab)
        self.length = int(length)

    @property
    def default_params(self) -> Params:
        return Params(max_steps_in_episode=self.length)

    def score(self, step_size: jax.Array, prev: jax.Array, token: jax.Array) -> jax.Array:
        """1.0 where ``token`` follows the rule after ``prev`` (the programmatic scorer)."""
        return (token == (prev + step_size) % self.vocab).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        token = jnp.asarray(action, jnp.int32)
        correct = state.correct + self.score(state.step_size, state.prev, token)
        time = state.time + 1
        done = time >= self.length
        reward = jnp.where(done, correct / self.length, 0.0)
        new = State(step_size=state.step_size, prev=token, correct=correct, time=time)
        return self.get_obs(new), new, reward, done, {}

    def reset_env(self, key, params):
        k_step, k_first = jax.random.split(key)
        state = State(
            step_size=jax.random.randint(k_step, (), 1, self.vocab),
            prev=jax.random.randint(k_first, (), 0, self.vocab),
            correct=jnp.zeros((), jnp.float32),
            time=0,
        )
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.concatenate(
            [
                jax.nn.one_hot(state.step_size, self.vocab),
                jax.nn.one_hot(state.prev, self.vocab),
                jax.nn.one_hot(jnp.minimum(state.time, self.length - 1), self.length),
            ]
        )

    def is_terminal(self, state, params) -> jax.Array:
        return jnp.asarray(state.time >= self.length)

    @property
    def name(self) -> str:
        return "Sequence-v0"

    @property
    def num_actions(self) -> int:
        return self.vocab

    def action_space(self, params=None):
        return spaces.Discrete(self.vocab)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2 * self.vocab + self.length,), jnp.float32)

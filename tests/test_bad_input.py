"""Table of bad inputs: each is one error line naming the field, exit code 2, nothing written.

API cases build a ``Config``; CLI cases call :func:`jaxpg.cli.main` in-process
(argparse errors arrive as ``SystemExit(2)``) from an empty working directory,
which must still be empty afterwards (no run directory, no sweep directory).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from jaxpg.cli import join_negative_values, main
from jaxpg.config import Config

# -- the Python API ------------------------------------------------------------------
API_CASES = [
    # typed coercion: the field is named, strings are never read as numbers or switches
    ({"lr": "abc"}, "Config.lr='abc'"),
    ({"lr": "1e-3"}, "Config.lr='1e-3'"),
    ({"lr": None}, "Config.lr=None"),
    ({"lr": True}, "Config.lr=True"),
    ({"lr": [1e-3]}, "Config.lr=[0.001]"),
    ({"gamma": None}, "Config.gamma=None"),
    ({"gamma": "0.99"}, "Config.gamma='0.99'"),
    ({"lam": "x"}, "Config.lam='x'"),
    ({"clip_eps": None}, "Config.clip_eps=None"),
    ({"ent_coef": "0"}, "Config.ent_coef='0'"),
    ({"vf_coef": None}, "Config.vf_coef=None"),
    ({"max_grad_norm": "inf"}, "Config.max_grad_norm='inf'"),
    ({"log_std_init": None}, "Config.log_std_init=None"),
    ({"hidden_sizes": 64}, "Config.hidden_sizes=64"),
    ({"hidden_sizes": "64,64"}, "Config.hidden_sizes='64,64'"),
    ({"hidden_sizes": (64.0, 64)}, "Config.hidden_sizes=(64.0, 64)"),
    ({"hidden_sizes": (True,)}, "Config.hidden_sizes=(True,)"),
    ({"hidden_sizes": ()}, "Config.hidden_sizes=()"),
    ({"hidden_sizes": (64, 0)}, "Config.hidden_sizes=(64, 0)"),
    ({"normalize_advantages": "false"}, "Config.normalize_advantages='false'"),
    ({"normalize_advantages": 0}, "Config.normalize_advantages=0"),
    ({"anneal_lr": "no"}, "Config.anneal_lr='no'"),
    ({"anneal_lr": None}, "Config.anneal_lr=None"),
    ({"anneal_lr": 1}, "Config.anneal_lr=1"),
    ({"num_envs": 2.0}, "Config.num_envs=2.0"),
    ({"num_envs": "32"}, "Config.num_envs='32'"),
    ({"num_envs": True}, "Config.num_envs=True"),
    ({"num_steps": None}, "Config.num_steps=None"),
    ({"seed": 1.5}, "Config.seed=1.5"),
    ({"seed": "0"}, "Config.seed='0'"),
    ({"grad_chunk": "auto"}, "Config.grad_chunk='auto'"),
    ({"env": 3}, "Config.env=3"),
    ({"estimator": None}, "Config.estimator=None"),
    ({"activation": ["tanh"]}, "Config.activation=['tanh']"),
    # values out of range
    ({"lr": 0.0}, "Config.lr=0.0"),
    ({"lr": -1e-3}, "Config.lr=-0.001"),
    ({"lr": math.nan}, "Config.lr=nan"),
    ({"lr": math.inf}, "Config.lr=inf"),
    ({"gamma": 5.0}, "Config.gamma=5.0"),
    ({"gamma": -0.1}, "Config.gamma=-0.1"),
    ({"gamma": math.nan}, "Config.gamma=nan"),
    ({"lam": 1.5}, "Config.lam=1.5"),
    ({"clip_eps": 0.0}, "Config.clip_eps=0.0"),
    ({"clip_eps": math.nan}, "Config.clip_eps=nan"),
    ({"ent_coef": -1.0}, "Config.ent_coef=-1.0"),
    ({"vf_coef": math.nan}, "Config.vf_coef=nan"),
    ({"max_grad_norm": 0.0}, "Config.max_grad_norm=0.0"),
    ({"log_std_init": math.nan}, "Config.log_std_init=nan"),
    ({"log_std_init": -math.inf}, "Config.log_std_init=-inf"),
    ({"seed": 2**64}, "Config.seed=18446744073709551616"),
    ({"seed": -(2**63) - 1}, "Config.seed=-9223372036854775809"),
    ({"num_envs": 0}, "Config.num_envs=0"),
    ({"num_epochs": -1}, "Config.num_epochs=-1"),
    ({"total_timesteps": 10}, "Config.total_timesteps=10"),
    ({"num_minibatches": 3}, "Config.num_minibatches=3"),
    ({"grad_chunk": 0}, "Config.grad_chunk=0"),
    ({"grad_chunk": 7}, "Config.grad_chunk=7"),
    ({"estimator": "a2c"}, "Config.estimator='a2c'"),
    ({"activation": "swish"}, "Config.activation='swish'"),
    ({"rollout": "steps"}, "Config.rollout='steps'"),
    ({"estimator": "reinforce", "rollout": "segments"}, "Config.rollout='segments'"),
    ({"weight_init": "xavier"}, "Config.weight_init='xavier'"),
    ({"minibatch_shuffle": "random"}, "Config.minibatch_shuffle='random'"),
    ({"env": "Nope-v0"}, "Config.env='Nope-v0'"),
    # issue 24: Config refuses what HParams.valid refuses (one table, TRACED_RULES)
    ({"ent_coef": math.inf}, "Config.ent_coef=inf"),
    ({"vf_coef": math.inf}, "Config.vf_coef=inf"),
    ({"clip_eps": math.inf}, "Config.clip_eps=inf"),
    ({"env_module": 5}, "Config.env_module=5 is invalid: must be a string"),
]


@pytest.mark.parametrize("fields, message", API_CASES, ids=[str(c[0]) for c in API_CASES])
def test_config_rejects_bad_values_naming_the_field(fields, message):
    with pytest.raises(ValueError) as info:
        Config(**fields)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_config_coerces_numeric_types():
    c = Config(lr=np.float32(0.5), num_envs=np.int64(8), hidden_sizes=[np.int32(4), 4], gamma=1)
    assert type(c.lr) is float and type(c.num_envs) is int and type(c.gamma) is float
    assert c.hidden_sizes == (4, 4) and all(type(h) is int for h in c.hidden_sizes)
    assert Config(anneal_lr=np.bool_(False)).anneal_lr is False
    assert hash(c) == hash(Config(lr=0.5, num_envs=8, hidden_sizes=(4, 4), gamma=1.0))


# -- the command line ---------------------------------------------------------------
TRAIN = ["train", "--quiet"]
SWEEP = ["sweep", "--quiet"]
LONG = "x" * 300
CLI_CASES = [
    # argparse: types and choices
    (["train", "--num-envs", "four"], "--num-envs"),
    (["train", "--num-envs", "2.5"], "--num-envs"),
    (["train", "--lr", "abc"], "--lr"),
    (["train", "--gamma", "x"], "--gamma"),
    (["train", "--estimator", "a2c"], "--estimator"),
    (["train", "--activation", "swish"], "--activation"),
    (["train", "--rollout", "steps"], "--rollout"),
    (["train", "--weight-init", "xavier"], "--weight-init"),
    (["train", "--minibatch-shuffle", "x"], "--minibatch-shuffle"),
    (["train", "--hidden-sizes", "64,x"], "--hidden-sizes"),
    (["train", "--normalize-advantages", "maybe"], "--normalize-advantages"),
    (["train", "--grad-chunk", "lots"], "--grad-chunk"),
    (["train", "--anneal-lr=no"], "--anneal-lr"),
    (["train", "--log-mode", "files"], "--log-mode"),
    (["train", "--devices", "0"], "--devices"),
    (["train", "--checkpoint-every", "x"], "--checkpoint-every"),
    (["train", "--no-such-option"], "--no-such-option"),
    (["train", "--seed", "1.5"], "--seed"),
    # negative numbers as separate arguments reach the field's own check
    (["train", "--lr", "-1e-3"], "Config.lr=-0.001"),
    (["train", "--lr", "-.5"], "Config.lr=-0.5"),
    (["train", "--num-envs", "-4"], "Config.num_envs=-4"),
    (["train", "--ent-coef", "-1"], "Config.ent_coef=-1.0"),
    (["train", "--gamma", "-0.5"], "Config.gamma=-0.5"),
    (["train", "--hidden-sizes", "-3,4"], "Config.hidden_sizes=(-3, 4)"),
    (["train", "--checkpoint-every", "-1"], "--checkpoint-every=-1"),
    (["train", "--log-every", "-2"], "--log-every=-2"),
    (["train", "--keep-checkpoints", "-1"], "--keep-checkpoints=-1"),
    # Config values
    (["train", "--lr", "0"], "Config.lr=0.0"),
    (["train", "--lr", "nan"], "Config.lr=nan"),
    (["train", "--lr", "inf"], "Config.lr=inf"),
    (["train", "--gamma", "1.5"], "Config.gamma=1.5"),
    (["train", "--gamma", "nan"], "Config.gamma=nan"),
    (["train", "--lam", "2"], "Config.lam=2.0"),
    (["train", "--clip-eps", "0"], "Config.clip_eps=0.0"),
    (["train", "--vf-coef", "nan"], "Config.vf_coef=nan"),
    (["train", "--max-grad-norm", "0"], "Config.max_grad_norm=0.0"),
    (["train", "--log-std-init", "nan"], "Config.log_std_init=nan"),
    (["train", "--log-std-init", "inf"], "Config.log_std_init=inf"),
    (["train", "--seed", str(2**64)], "Config.seed=18446744073709551616"),
    (["train", "--seed", str(-(2**64))], "Config.seed=-18446744073709551616"),
    (["train", "--num-envs", "0"], "Config.num_envs=0"),
    (["train", "--num-steps", "0"], "Config.num_steps=0"),
    (["train", "--num-epochs", "0"], "Config.num_epochs=0"),
    (["train", "--total-timesteps", "10"], "Config.total_timesteps=10"),
    (["train", "--num-minibatches", "3"], "Config.num_minibatches=3"),
    (["train", "--grad-chunk", "7"], "Config.grad_chunk=7"),
    (["train", "--hidden-sizes", "0"], "Config.hidden_sizes=(0,)"),
    (["train", "--estimator", "reinforce", "--rollout", "segments"], "Config.rollout"),
    (["train", "--env", "Nope-v0"], "Config.env='Nope-v0'"),
    (["train", "--preset", "nope"], "preset='nope'"),
    # run settings and paths
    (["train", "--checkpoint-every", "0"], "--checkpoint-every=0"),
    (["train", "--log-every", "0"], "--log-every=0"),
    (["train", "--keep-checkpoints", "0"], "--keep-checkpoints=0"),
    (["train", "--devices", "999"], "--devices"),
    (["train", "--from-scratch"], "--from-scratch"),
    (["train", "--out", LONG], "--out"),
    (["train", "--out", f"a/{LONG}/b"], "--out"),
    (["train", "--out", "afile"], "--out afile exists and is not a directory"),
    (["train", "--out", "afile/run"], "--out afile/run"),
    (["train", "--resume", "nowhere"], "nowhere is not a jaxpg run directory"),
    (["train", "--resume", "nowhere", "--out", "x"], "--out"),
    (["train", "--config", "missing.toml"], "--config missing.toml"),
    (["train", "--config", "afile"], "--config afile"),
    (
        ["train", "--num-envs", str(2**20), "--num-steps", "256", "--total-timesteps", "1e9"],
        "--total-timesteps",
    ),
    (
        ["train", "--num-envs", str(2**21), "--num-steps", "512", "--total-timesteps", str(2**40)],
        "GiB per device (analytic estimate for num_envs=2097152",
    ),
    # sweep
    (["sweep", "--seeds", "0"], "--seeds"),
    (["sweep", "--seeds", "-3,4"], "--seeds -3,4"),
    (["sweep", "--seeds", "-3"], "--seeds"),
    (["sweep", "--seeds", "x"], "--seeds"),
    (["sweep", "--seeds", "1,1"], "--seeds 1,1"),
    (["sweep", "--seeds", f"{2**31},1"], "--seeds"),
    (["sweep", "--seed", str(2**31), "--seeds", "2"], "--seeds"),
    (["sweep", "--grid", "lr=1e-3", "--grid", "lr=3e-4"], "--grid lr given twice"),
    (["sweep", "--grid", "lr=1e-3", "--grid", "learning_rate=3e-4"], "'lr' given twice"),
    (["sweep", "--grid", "nope=1"], "unknown grid field 'nope'"),
    (["sweep", "--grid", "lr="], "--grid 'lr='"),
    (["sweep", "--grid", "lr"], "--grid 'lr'"),
    (["sweep", "--grid", "seed=1,2"], "grid field 'seed'"),
    (["sweep", "--grid", "lr=abc"], "--grid lr"),
    (["sweep", "--grid", "gamma=0.9,1.5"], "grid gamma=1.5"),
    (["sweep", "--grid", "lr=1e-3,1e-3"], "grid field 'lr' repeats"),
    (["sweep", "--grid", "num_minibatches=3"], "num_minibatches"),
    (["sweep", "--grid", "lr=-1e-3"], "grid lr=-0.001"),
    (["sweep", "--grid", "hidden_sizes=64xq"], "--grid hidden_sizes"),
    (["sweep", "--memory-fraction", "0"], "--memory-fraction=0.0"),
    (["sweep", "--memory-fraction", "nan"], "--memory-fraction=nan"),
    (["sweep", "--memory-fraction", "1.5"], "--memory-fraction=1.5"),
    (["sweep", "--memory-fraction", "-0.5"], "--memory-fraction=-0.5"),
    (["sweep", "--memory-fraction", "x"], "--memory-fraction"),
    (["sweep", "--chunk", "0"], "--chunk=0"),
    (["sweep", "--chunk", "-2"], "--chunk=-2"),
    (["sweep", "--bootstrap-seed", "-1"], "--bootstrap-seed=-1"),
    (["sweep", "--out", "afile"], "--out afile exists and is not a directory"),
    (["sweep", "--out", LONG], "--out"),
    (["sweep", "--out", "/proc/jaxpg/sweep"], "--out /proc/jaxpg/sweep is not writable"),
    (["train", "--out", "/proc/jaxpg/run"], "--out /proc/jaxpg/run is not writable"),
    (["sweep", "--resume", "--restart"], "--resume and --restart"),
    (["sweep", "--resume", "--out", "none"], "--resume: no unfinished sweep"),
    (["sweep", "--lr", "nan"], "Config.lr=nan"),
    (["sweep", "--normalize-advantages", "perhaps"], "--normalize-advantages"),
    (
        ["sweep", "--num-envs", str(2**21), "--num-steps", "512", "--total-timesteps", str(2**40)],
        "one run needs about",
    ),
    # eval
    (["eval", "nowhere"], "nowhere does not exist"),
    (["eval", ".", "--episodes", "0"], "--episodes=0"),
    (["eval", ".", "--episodes", "-3"], "--episodes=-3"),
    (["eval", ".", "--seed", str(2**64)], "--seed"),
    (["eval", ".", "--gif", "x.png"], "must end in .gif"),
    (["eval", ".", "--gif", "no/dir/x.gif"], "--gif no/dir/x.gif"),
    (["eval", "."], "holds no checkpoint"),
    # issue 24: empty strings are refused, not read as "not given" or "."
    (["train", "--resume", ""], "--resume '' is empty"),
    (["train", "--out", ""], "--out '' is empty"),
    (["train", "--config", ""], "--config '' is empty"),
    (["train", "--preset", ""], "--preset '' is empty"),
    (["sweep", "--out", " "], "--out ' ' is empty"),
    (["sweep", "--config", ""], "--config '' is empty"),
    (["eval", ""], "RUN_DIR_OR_CHECKPOINT '' is empty"),
    (["eval", ".", "--gif", ""], "--gif '' is empty"),
    # variance: the flag is named, and a refused experiment leaves no --out behind
    (["variance", "--out", "v", "--train-timesteps", "10"], "--train-timesteps=10 must be >= 2048"),
    (["variance", "--out", "v", "--gamma", "1.5"], "--gamma and --gae-gammas must lie in"),
    (["variance", "--out", "afile"], "--out afile exists and is not a directory"),
    # other commands' argparse checks
    (["variance", "--pool-size", "x"], "--pool-size"),
    (["nope"], "invalid choice: 'nope'"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES, ids=[" ".join(c[0])[:60] for c in CLI_CASES])
def test_cli_rejects_bad_input_in_one_line_exit_2_nothing_written(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory\n")
    before = sorted(os.listdir(tmp_path))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(("jaxpg: error:", "jaxpg ")) and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == before  # no run or sweep directory left behind


def test_there_are_at_least_100_cases():
    assert len(API_CASES) + len(CLI_CASES) >= 100


@pytest.mark.parametrize(
    "argv, joined",
    [
        (["--lr", "-1e-3"], ["--lr=-1e-3"]),
        (["--seeds", "-3,4"], ["--seeds=-3,4"]),
        (["--lr", "-.5", "--quiet"], ["--lr=-.5", "--quiet"]),
        (["-h"], ["-h"]),
        (["--lr=-1", "-2"], ["--lr=-1", "-2"]),
        (["--", "--x", "-1"], ["--", "--x", "-1"]),
        (["--out", "-runs"], ["--out", "-runs"]),
    ],
)
def test_negative_numbers_are_joined_to_their_option(argv, joined):
    assert join_negative_values(argv) == joined


# -- config files (issue 24) ------------------------------------------------------------
FILE_CASES = [
    ("dup.json", '{"lr": 0.1, "lr": 0.2}', "key 'lr' is given twice"),
    ("dup.yaml", "lr: 0.1\nnum_envs: 4\nlr: 0.2\n", "key 'lr' is given twice (again on line 3)"),
    ("str.yaml", "lr: 3e-4\n", "lr='3e-4' is a string, not a number"),
    ("env.toml", "env_module = 5\n", "Config.env_module=5 is invalid: must be a string"),
    ("sizes.toml", 'hidden_sizes = "64,x"\n', "hidden_sizes='64,x'"),
    ("bool.json", '{"anneal_lr": "maybe"}', "Config.anneal_lr='maybe'"),
]


@pytest.mark.parametrize("name, text, message", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_config_file_values_are_checked_by_the_one_type_check(
    name, text, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    assert main(["train", "--config", name, "--print-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--config {name}" in err[0] and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == [name]


def test_yaml_float_hint_suggests_a_form_yaml_reads():
    from jaxpg.commands.common import _yaml_float

    assert _yaml_float("3e-4") == "3.0e-4"
    assert _yaml_float("1E5") == "1.0e+5"
    assert _yaml_float("2.5e-3") == "2.5e-3"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": math.nan}, "hparams: lr=nan is invalid: must be a finite number > 0"),
        ({"gamma": -0.5}, "hparams: gamma=-0.5 is invalid: must lie in [0, 1]"),
        ({"lr": [1e-3, -1.0]}, "hparams: lr=-1.0 is invalid"),
        ({"ent_coef": math.inf}, "hparams: ent_coef=inf is invalid"),
        ({"lr": "abc"}, "hparams: lr='abc' is invalid: must be a number"),
    ],
)
def test_hparams_refuses_what_config_refuses_without_guard(values, message):
    with pytest.raises(ValueError) as info:
        Config(env="CartPole-v1").hparams(**values)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "item, message",
    [
        ("nope=1", "--set nope=1: unknown field 'nope'"),
        ("lr=abc", "lr='abc' is not a number"),
        ("anneal_lr=maybe", "anneal_lr: expected true or false, got 'maybe'"),
        ("num_envs=2.5", "num_envs='2.5' is not an integer"),
        ("lr=-1", "Config.lr=-1.0 is invalid"),
        ("lr", "--set 'lr': expected FIELD=VALUE"),
    ],
)
def test_reproduce_presets_set_is_checked_before_training(item, message, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_presets.py"
    spec = importlib.util.spec_from_file_location("reproduce_presets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["acrobot-ppo", "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_set_reads_switches_and_sizes_like_the_cli():
    from jaxpg.commands.common import parse_field_text

    assert parse_field_text("anneal_lr", "false", "--set") is False
    assert parse_field_text("hidden_sizes", "32,32", "--set") == (32, 32)
    assert parse_field_text("grad_chunk", "auto", "--set") is None
    assert parse_field_text("lr", "3e-4", "--set") == 3e-4


@pytest.mark.parametrize(
    "record, message",
    [
        ({"grid": {"lr": 0.001}}, "grid must be a table of FIELD = [V1, V2, ...] lists"),
        ({"grid": [1, 2]}, "grid must be a table"),
        ({"seeds": ["a", 1]}, "seeds must be a count >= 1 or a list of integers"),
        ({"seeds": "8"}, "seeds must be a count"),
    ],
)
def test_sweep_record_with_a_bad_grid_or_seeds_is_one_line(
    record, message, tmp_path, monkeypatch, capsys
):
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rec.json").write_text(json.dumps({"config": {"num_envs": 4}, **record}))
    assert main(["sweep", "--config", "rec.json", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config rec.json" in err[0] and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == ["rec.json"]


def test_from_dict_names_the_field_of_a_scalar_size_list():
    with pytest.raises(ValueError, match=r"Config.hidden_sizes=64 is invalid"):
        Config.from_dict({"hidden_sizes": 64})


def test_batched_hparams_without_vmap_names_the_field_and_the_fix():
    import jax

    from jaxpg.train import make_train

    cfg = Config(num_envs=2, num_steps=8, total_timesteps=16, hidden_sizes=(4,))
    with pytest.raises(ValueError, match=r"hparams.lr has shape \(2,\).*jax.vmap\(train\)"):
        make_train(cfg)(jax.random.key(0), cfg.hparams(lr=[1e-3, 3e-4]))


def test_eval_gif_into_a_directory_or_an_unwritable_place(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.gif").mkdir()
    assert main(["eval", ".", "--gif", "d.gif"]) == 2
    assert "--gif d.gif is a directory" in capsys.readouterr().err
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root ignores chmod
    assert main(["eval", ".", "--gif", "x.gif"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gif x.gif: not writable" in err[0]


def _env_cases():
    import gymnasium
    from gymnax.environments.classic_control import CartPole

    return [
        ({"env": CartPole}, "env: got the class CartPole; pass an instance"),
        ({"env": gymnasium.make("CartPole-v1")}, "env: a gymnasium environment (TimeLimit)"),
        ({"env": CartPole(), "env_params": "garbage"}, "env_params: got str"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_library_env_errors_name_the_argument(case):
    from jaxpg.train import make_train

    kwargs, message = _env_cases()[case]
    cfg = Config(num_envs=2, num_steps=8, total_timesteps=16, hidden_sizes=(4,))
    with pytest.raises(ValueError) as info:
        make_train(cfg, **kwargs)
    assert message in str(info.value)

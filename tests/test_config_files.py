"""Config files: TOML, YAML and JSON; a run's own config.json reproduces the run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxpg.cli import build_parser, main
from jaxpg.commands.common import load_config_file, resolve_config
from jaxpg.config import Config
from jaxpg.progress import read_metrics

TINY = ["--total-timesteps", "1024", "--num-envs", "4", "--num-steps", "32", "--quiet"]
# The columns that depend on the run's maths, not on the clock.
DETERMINISTIC = ("update", "env_steps", "episode_return", "episode_length", "loss", "grad_norm")


def test_json_toml_yaml_give_the_same_config(tmp_path):
    (tmp_path / "c.json").write_text('{"lr": 0.01, "hidden_sizes": [32, 32], "grad_chunk": null}')
    (tmp_path / "c.toml").write_text('lr = 0.01\nhidden_sizes = [32, 32]\ngrad_chunk = "auto"\n')
    (tmp_path / "c.yaml").write_text("lr: 0.01\nhidden_sizes: [32, 32]\ngrad_chunk: null\n")
    loaded = [load_config_file(tmp_path / f"c.{ext}") for ext in ("json", "toml", "yaml")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0] == {"lr": 0.01, "hidden_sizes": (32, 32), "grad_chunk": None}


def test_a_record_with_unknown_top_level_keys_is_rejected(tmp_path):
    from jaxpg.commands.common import CommandError

    (tmp_path / "c.json").write_text('{"config": {"lr": 0.01}, "lr_typo": 1}')
    with pytest.raises(CommandError, match="unknown field"):
        load_config_file(tmp_path / "c.json")


def test_train_config_json_reproduces_the_run(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    options = ["--lr", "3e-3", "--seed", "5", "--hidden-sizes", "16", "--num-minibatches", "2"]
    assert main(["train", *TINY, *options, "--out", str(a)]) == 0
    assert main(["train", "--config", str(a / "config.json"), "--out", str(b)]) == 0
    ca = json.loads((a / "config.json").read_text())["config"]
    cb = json.loads((b / "config.json").read_text())["config"]
    assert ca == cb and ca["seed"] == 5 and ca["hidden_sizes"] == [16]
    ma, mb = read_metrics(a / "metrics.csv"), read_metrics(b / "metrics.csv")
    assert len(ma["update"]) == 8
    for col in DETERMINISTIC:
        np.testing.assert_array_equal(ma[col], mb[col], err_msg=col)
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert sa["final_return"] == sb["final_return"]

    # --print-config writes the resolved config; reading it back gives the same one.
    capsys.readouterr()
    assert main(["train", "--config", str(a / "config.json"), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == ca
    (tmp_path / "printed.json").write_text(json.dumps(printed))
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "printed.json")])
    assert resolve_config(args)[0] == Config.from_dict(ca)
    assert not (tmp_path / "runs").exists()


def test_print_config_layers_preset_file_and_options(tmp_path, capsys):
    (tmp_path / "c.toml").write_text("num_envs = 8\n")
    for cmd in ("train", "sweep"):
        argv = [cmd, "--preset", "acrobot-ppo", "--config", str(tmp_path / "c.toml")]
        assert main([*argv, "--lr", "0.005", "--print-config"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["env"] == "Acrobot-v1", cmd
        assert printed["num_envs"] == 8 and printed["lr"] == 0.005
        assert Config.from_dict(printed).to_dict() == printed


def test_sweep_config_json_brings_its_grid_and_seeds(tmp_path):
    from jaxpg.commands.sweep import _sweep_from_record, parse_grid

    record = {
        "config": {**Config().to_dict(), "num_envs": 8},
        "grid": {"lr": [0.001, 0.003], "hidden_sizes": [[16], [32, 32]]},
        "seeds": [3, 4, 5],
        "version": "0.1.0",
        "devices": ["cpu"],
        "programs": [],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(record))
    parser = build_parser()
    args = parser.parse_args(["sweep", "--config", str(path)])
    config, _ = resolve_config(args)
    assert config.num_envs == 8
    grid, seeds = _sweep_from_record(args, parse_grid(args.grid), 8)
    assert grid == {"lr": [0.001, 0.003], "hidden_sizes": [(16,), (32, 32)]}
    assert seeds == [3, 4, 5]
    args = parser.parse_args(["sweep", "--config", str(path), "--seeds", "2", "--grid", "lr=0.1"])
    grid, seeds = _sweep_from_record(args, parse_grid(args.grid), 2)
    assert grid == {"lr": [0.1]} and seeds == 2

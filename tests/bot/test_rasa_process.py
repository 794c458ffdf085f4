"""Pure parts of the Rasa process manager: content hash and the generated endpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from bot.rasa_process import PROJECT_DIR, endpoints_yaml, project_hash, rasa_key_prefix


def test_endpoints_point_rasa_at_our_redis() -> None:
    cfg = yaml.safe_load(endpoints_yaml("redis://:pw@10.0.0.5:6380/3", "huiliu:prod-1", "http://127.0.0.1:5055/webhook"))
    assert cfg["action_endpoint"]["url"] == "http://127.0.0.1:5055/webhook"
    for store in ("tracker_store", "lock_store"):
        assert cfg[store]["type"] == "redis"
        assert (cfg[store]["url"], cfg[store]["port"], cfg[store]["db"], cfg[store]["password"]) == (
            "10.0.0.5", 6380, 3, "pw")
        assert str(cfg[store]["key_prefix"]).isalnum()  # Rasa silently drops any other prefix
    assert cfg["tracker_store"]["key_prefix"] == rasa_key_prefix("huiliu:prod-1") == "huiliuprod1rasa"


def test_model_hash_changes_with_training_data_only(tmp_path: Path) -> None:
    copy = tmp_path / "rasa"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(".rasa", "models", "__pycache__"))
    before = project_hash(copy)
    (copy / "actions" / "actions.py").write_text("# code is not part of the model\n")
    assert project_hash(copy) == before
    nlu = copy / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "\n")
    assert project_hash(copy) != before


def test_rasa_gets_absolute_paths_even_from_a_relative_data_dir() -> None:
    # Regression: `huiliu run` with the default relative data dir passed a relative --endpoints, which
    # Rasa (running in bot/rasa) silently ignored: no action server, no Redis trackers.
    from bot.rasa_process import RasaServers

    servers = RasaServers(Path(".venv-rasa"), Path(".huiliu/rasa-models/m.tar.gz"), Path(".huiliu/rasa-run"),
                          "redis://127.0.0.1:6379/0", "huiliu")
    args = servers.rasa_args()
    for flag in ("-m", "--endpoints", "--credentials"):
        assert Path(args[args.index(flag) + 1]).is_absolute(), flag

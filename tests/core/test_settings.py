"""Settings: defaults outside the source tree, and one mapping to child environments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gantry.core.settings import SOURCE_ROOT, Settings


def test_defaults_live_under_gantry_home_not_the_checkout(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.model_repository == tmp_path / "model_repository"
    assert settings.state_dir == tmp_path / "state"
    fresh = Settings()  # the test session points GANTRY_HOME at a temporary directory
    assert SOURCE_ROOT not in fresh.model_repository.parents
    assert SOURCE_ROOT not in fresh.state_dir.parents


def test_child_env_gives_a_child_process_the_same_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        gateway_port=18080,
        mtcnn_models=("a", "b", "c"),
        grpc_enabled=False,
        sync_budget_s=1.5,
    )
    env = settings.child_env({"PATH": os.environ["PATH"]})
    assert env["GANTRY_GATEWAY_PORT"] == "18080"
    code = (
        "from gantry.core.settings import Settings; import sys; "
        "sys.stdout.write(Settings().model_dump_json())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert Settings.model_validate_json(out) == settings

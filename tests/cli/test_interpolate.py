"""Network interpolation end to end: two tiny SRGAN runs (the PSNR stage and the GAN stage
started from it) → ``gantry models interpolate`` → a new model, published through the parity
gate and loaded into the running Triton → ``/v1/superres`` upscales with it; alpha 1 is A's
weights exactly; a generator of another architecture is refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import torch
from PIL import Image

from gantry.core.repository import ModelRepository
from gantry.core.training import load_train_config
from tests.conftest import copy_repository, run_gantry, stack_settings
from tests.paths import DATA, SET5
from tests.training import SMALL_RUN
from trainer.loop import GENERATOR_FILE, train

NAME = "srgan-photos-blend"
BIRD = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
SMALL: dict[str, Any] = {**SMALL_RUN, "steps": 2, "data.size": 64}


def _words(text: str) -> str:
    """The console's output with its line wrapping undone."""
    return " ".join(text.split())


def test_two_runs_interpolate_into_a_served_model(model_repository: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    train(
        load_train_config("srresnet-photos", SMALL),
        checkpoints / "psnr",
        data_dir=DATA,
        device="cpu",
    )
    gan_config = load_train_config("srgan-photos", {**SMALL, "init_weights": "psnr/generator.pth"})
    train(gan_config, checkpoints / "gan", data_dir=DATA, device="cpu")
    train(
        load_train_config("esrgan-photos-psnr", SMALL),
        checkpoints / "rrdb",
        data_dir=DATA,
        device="cpu",
    )

    repository = copy_repository(model_repository, tmp_path / "repository")
    settings = stack_settings(repository, tmp_path / "state").model_copy(
        update={"checkpoint_dir": checkpoints}
    )
    env = settings.child_env()
    up = run_gantry(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        blended = run_gantry(env, "models", "interpolate", "psnr", "gan", "--alpha", "0.8",
                             "--name", NAME)  # fmt: skip
        assert blended.returncode == 0, blended.stdout + blended.stderr
        said = _words(blended.stdout)
        assert f"{NAME} version 1" in said and f"Triton serves {NAME}" in said

        base = f"http://127.0.0.1:{settings.gateway_port}"
        with httpx.Client(base_url=base, timeout=120) as client:
            listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
            assert listed[NAME]["task"] == "superres" and listed[NAME]["version"] == 1
            response = client.post(
                "/v1/superres", files={"image": ("bird.png", BIRD)}, data={"model": NAME}
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-gantry-model"] == NAME
            assert response.headers["x-gantry-scale"] == "4"
            with Image.open(io.BytesIO(BIRD)) as lr, Image.open(io.BytesIO(response.content)) as sr:
                assert sr.size == (4 * lr.width, 4 * lr.height)

        # alpha 1 is A exactly: version 2's weights are the PSNR run's generator.
        exact = run_gantry(env, "models", "interpolate", "psnr", "gan", "--alpha", "1",
                           "--name", NAME)  # fmt: skip
        assert exact.returncode == 0, exact.stdout + exact.stderr
        assert f"{NAME} version 2" in _words(exact.stdout)
        built = ModelRepository(repository).read(NAME, 2)
        assert built.build.training_run is not None and "psnr" in built.build.training_run
        a = torch.load(checkpoints / "psnr" / GENERATOR_FILE, weights_only=True)
        v2 = torch.load(built.build.weights_file, weights_only=True)
        assert a.keys() == v2.keys() and all(torch.equal(a[k], v2[k]) for k in a)

        # Another architecture is refused, and nothing is published.
        refused = run_gantry(env, "models", "interpolate", "psnr", "rrdb", "--name", "mixed")
        assert refused.returncode == 2
        assert "only generators of the same architecture interpolate" in _words(refused.stdout)
        assert ModelRepository(repository).versions("mixed") == []
    finally:
        down = run_gantry(env, "down")
    assert down.returncode == 0

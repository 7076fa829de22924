"""Training configs: shipped YAML, base chains, overrides, validation on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.core.errors import InvalidInput
from gantry.core.training import (
    CONFIG_TYPES,
    Pix2PixConfig,
    load_train_config,
    parse_overrides,
    shipped_configs,
)


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_loads_with_its_recipe_schema(name: str) -> None:
    config = load_train_config(name)
    assert isinstance(config, CONFIG_TYPES.get(config.recipe))
    assert config.description


def test_base_keys_are_inherited_and_overridden() -> None:
    config = load_train_config("pix2pix-facades")
    assert isinstance(config, Pix2PixConfig)
    assert config.keep_checkpoints == 2  # from _base.yaml
    assert config.batch_size == 4  # the file's own value over the base's 1
    assert config.optim.beta1 == 0.5


def test_overrides_reach_into_sections_and_are_typed() -> None:
    overrides = parse_overrides(["steps=30", "optim.lr=1e-4", "data.flip=false", "publish="])
    assert overrides == {"steps": 30, "optim.lr": 1e-4, "data.flip": False, "publish": None}
    config = load_train_config("pix2pix-facades", overrides)
    assert (config.steps, config.optim.lr, config.data.flip, config.publish) == (
        30,
        1e-4,
        False,
        None,
    )
    assert config.optim.beta1 == 0.5  # the rest of the section stays


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lambda_ll": 3}, "lambda_ll"),
        ({"steps": 0}, "steps"),
        ({"optim.lr": -1}, "optim.lr"),
        ({"gan_loss": "vanilla"}, "gan_loss"),
        ({"lambda_perceptual": 1.0}, "perceptual_weights"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_train_config("pix2pix-facades", overrides)
    assert caught.value.code == "invalid_config"
    assert field in caught.value.message


def test_unknown_config_lists_the_shipped_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_train_config("pix2pix-facade")
    assert caught.value.code == "unknown_config"
    assert "pix2pix-facades" in caught.value.message


def test_a_user_file_extends_a_shipped_config(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("base: pix2pix-facades\nsteps: 12\ndata: {size: 64}\n")
    config = load_train_config(path)
    assert (config.recipe, config.steps, config.data.size, config.data.dataset) == (
        "pix2pix",
        12,
        64,
        "cmp_facades",
    )


def test_an_unknown_recipe_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("recipe: pix3pix\nsteps: 1\ndata: {dataset: cmp_facades}\n")
    with pytest.raises(InvalidInput, match="pix2pix"):
        load_train_config(path)


def test_overrides_must_be_key_value() -> None:
    with pytest.raises(InvalidInput):
        parse_overrides(["steps"])

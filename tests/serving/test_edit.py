"""Face edits: what a request may ask of an attributes model or a donor model, and the
edit vector the network gets (set, clear, keep; exclusive hair colours)."""

from __future__ import annotations

import numpy as np
import pytest

from gantry.core.cards import FaceEditSpec
from gantry.core.errors import InvalidInput
from gantry.core.training import GeneGANConfig, IcGANConfig, load_train_config
from gantry.serving.edit import Edit, attribute_vector, check_edit
from tests.serving.builds import built
from trainer.catalog import card

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
SPEC = FaceEditSpec(
    conditioning="attributes", attributes=(*HAIR, "Male", "Young"), exclusive_groups=(HAIR,)
)


def test_named_attributes_are_set_or_cleared_and_the_rest_kept() -> None:
    vector = attribute_vector(SPEC, {"Male": True, "Young": False})
    assert vector.dtype == np.float32
    assert vector.tolist() == [-1, -1, -1, 1, 0]


def test_setting_a_hair_colour_clears_the_other_colours_not_named() -> None:
    assert attribute_vector(SPEC, {"Blond_Hair": True}).tolist() == [0, 1, 0, -1, -1]
    # Clearing one colour says nothing about the others.
    assert attribute_vector(SPEC, {"Black_Hair": False}).tolist() == [0, -1, -1, -1, -1]
    assert attribute_vector(SPEC, {"Blond_Hair": True, "Black_Hair": False}).tolist() == [
        0,
        1,
        0,
        -1,
        -1,
    ]


@pytest.mark.parametrize(
    ("requested", "code", "words"),
    [
        ({}, "invalid_edit", "name an attribute"),
        ({"Purple_Hair": True}, "unknown_attribute", "Purple_Hair"),
        ({"Black_Hair": True, "Blond_Hair": True}, "invalid_edit", "has one of"),
    ],
)
def test_bad_attribute_edits_are_refused(requested: dict[str, bool], code: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        attribute_vector(SPEC, requested)
    assert caught.value.code == code


def test_an_edit_must_be_the_kind_the_model_takes() -> None:
    stargan = built(card("stargan-celeba"))
    check_edit(stargan, Edit(attributes={"Male": True}))
    donor_card = stargan.card.model_copy(
        update={"spec": FaceEditSpec(conditioning="donor", attribute="Eyeglasses")}
    )
    donor_model = built(donor_card)
    check_edit(donor_model, Edit(donor=b"face"))
    for model, edit, words in [
        (stargan, Edit(), "takes attributes"),
        (donor_model, Edit(), "takes a donor image"),
        (stargan, Edit(attributes={"Male": True}, donor=b"face"), "not both"),
        (stargan, Edit(donor=b"face"), "takes no donor"),
        (donor_model, Edit(attributes={"Male": True}), "takes no attributes"),
    ]:
        with pytest.raises(InvalidInput, match=words) as caught:
            check_edit(model, edit)
        assert caught.value.code == "invalid_edit"


def test_a_face_edit_spec_is_consistent() -> None:
    with pytest.raises(ValueError, match="lists its attributes"):
        FaceEditSpec(conditioning="attributes")
    with pytest.raises(ValueError, match="names the attribute"):
        FaceEditSpec(conditioning="donor")
    with pytest.raises(ValueError, match="unknown attributes"):
        FaceEditSpec(conditioning="attributes", attributes=("Male",), exclusive_groups=(HAIR,))


def test_the_stargan_card_follows_its_training_config() -> None:
    model_card = card("stargan-celeba")
    spec = model_card.spec
    assert isinstance(spec, FaceEditSpec)
    assert spec.attributes == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert spec.exclusive_groups == (HAIR,)  # Gray_Hair is not among the attributes
    assert [t.dims for t in model_card.inputs] == [(3, 64, 64), (5,)]
    assert model_card.architecture == "stargan_tiny_editor"
    assert model_card.weights.research_only and "CelebA" in model_card.license


def test_the_icgan_card_follows_its_training_config() -> None:
    config = load_train_config("icgan-celeba")
    model_card = card("icgan-celeba")
    spec = model_card.spec
    assert isinstance(spec, FaceEditSpec) and isinstance(config, IcGANConfig)
    assert spec.attributes == config.attributes and spec.exclusive_groups == (HAIR,)
    assert model_card.architecture == config.generator
    assert model_card.arch_kwargs == {"ny": len(config.attributes)}
    assert model_card.weights.research_only
    # Its build-time run scales every stage, so version 1 has trained encoders too.
    build = config.for_build()
    assert isinstance(build, IcGANConfig) and build.steps == build.stage_steps.total
    assert config.build_steps is not None
    assert abs(build.steps - config.build_steps) <= 2
    assert min(build.stage_steps.cgan, build.stage_steps.encoder_z, build.stage_steps.encoder_y) > 0


def test_the_genegan_card_is_a_donor_model_of_its_configs_attribute() -> None:
    config = load_train_config("genegan-celeba")
    model_card = card("genegan-celeba")
    spec = model_card.spec
    assert isinstance(spec, FaceEditSpec) and isinstance(config, GeneGANConfig)
    assert (spec.conditioning, spec.attribute) == ("donor", config.attribute)
    assert [t.name for t in model_card.inputs] == ["image", "donor"]
    assert [t.dims for t in model_card.inputs] == [(3, 64, 64), (3, 64, 64)]
    assert model_card.weights.research_only

"""Translation's conditioning for a multi-domain style model (StarGAN v2): the domain it
must name, the style from a reference or a seed, and the latent code a seed draws."""

from __future__ import annotations

import numpy as np
import pytest

from gantry.core.cards import ModelCard, StyleTranslationSpec, TensorSpec, WeightsSpec
from gantry.core.errors import InvalidInput
from gantry.serving.translate import Conditioning, check_conditioning, style_code
from tests.serving.builds import built

DOMAINS = ("black_hair", "blond_hair", "brown_hair")
STYLE_CARD = ModelCard(
    name="stargan-v2-test",
    architecture="-",
    inputs=(
        TensorSpec(name="image", dims=(3, 64, 64)),
        TensorSpec(name="reference", dims=(3, 64, 64)),
        TensorSpec(name="z", dims=(16,)),
        TensorSpec(name="domain", dims=(3,)),
        TensorSpec(name="use_reference", dims=(1,)),
    ),
    outputs=(TensorSpec(name="translated", dims=(3, 64, 64)),),
    weights=WeightsSpec(importer="-", source="-", license="-", upstream="-"),
    spec=StyleTranslationSpec(domains=DOMAINS, latent_dim=16),
)


def test_a_style_model_takes_a_known_domain_with_a_reference_or_a_seed() -> None:
    model = built(STYLE_CARD)
    for conditioning in (
        Conditioning(domain="blond_hair"),
        Conditioning(domain="blond_hair", seed=7),
        Conditioning(domain="black_hair", reference=b"face"),
    ):
        check_conditioning(model, conditioning)


@pytest.mark.parametrize(
    ("conditioning", "code", "words"),
    [
        (Conditioning(seed=3), "invalid_domain", "names no domain"),
        (Conditioning(domain="red_hair"), "invalid_domain", "black_hair, blond_hair, brown_hair"),
        (Conditioning(domain="blond_hair", seed=1, reference=b"f"), "invalid_style", "not both"),
    ],
)
def test_a_style_model_refuses_what_it_cannot_take(
    conditioning: Conditioning, code: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        check_conditioning(built(STYLE_CARD), conditioning)
    assert caught.value.code == code


def test_a_seed_draws_the_same_style_code_everywhere() -> None:
    a, b = style_code(16, 7), style_code(16, 7)
    assert a.dtype == np.float32 and a.shape == (16,)
    assert np.array_equal(a, b) and not np.array_equal(a, style_code(16, 8))
    # numpy's PCG64 normals, pinned: a client reproduces a style from its seed.
    assert a[:3].tolist() == pytest.approx([0.0012302, 0.2987455, -0.2741379], abs=1e-6)

"""The generation pipeline's parts that need no server: the request bounds, the latents a
seed draws, and the reproducible zip."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from gantry.core.errors import InvalidInput
from gantry.core.latents import seeded_latents
from gantry.serving.generate import MAX_SEED, check_request, zip_images
from gantry.serving.translate import style_code


def test_a_seed_draws_pcg64_standard_normals_row_by_row() -> None:
    four = seeded_latents(8, 3, count=4)
    assert four.shape == (4, 8) and four.dtype == np.float32
    expected = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    assert np.array_equal(four, expected)
    assert np.array_equal(seeded_latents(8, 3)[0], four[0])  # the first row is the seed's own
    assert not np.array_equal(seeded_latents(8, 4), seeded_latents(8, 3))
    assert np.array_equal(style_code(8, 3), four[0])  # StarGAN v2's styles draw the same


@pytest.mark.parametrize(
    ("seed", "count", "code"),
    [(-1, 1, "invalid_seed"), (MAX_SEED + 1, 1, "invalid_seed"), (0, 0, "invalid_count"),
     (0, 17, "invalid_count")],
)  # fmt: skip
def test_out_of_bounds_seeds_and_counts_are_refused(seed: int, count: int, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_request(seed, count, max_count=16)
    assert caught.value.code == code


def test_in_bound_requests_pass() -> None:
    for seed, count in ((0, 1), (MAX_SEED, 16), (None, 3)):
        check_request(seed, count, max_count=16)


def test_the_zip_depends_on_its_images_only() -> None:
    names, images = ["seed-1-0.png", "seed-1-1.png"], [b"first", b"second"]
    data = zip_images(names, images)
    assert zip_images(names, images) == data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == names
        assert [archive.read(n) for n in names] == images
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}

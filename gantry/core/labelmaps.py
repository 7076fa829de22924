"""Label maps → a pix2pixHD generator's input, in numpy only.

The gateway and workers build the synthesis input from an uploaded label map without PyTorch;
the trainer builds its training inputs with the same functions, so what a served model sees
is what it was trained on.

Channel layout of the generator input (pix2pixHD's ``encode_input`` order)::

    [0, n_classes)                       one-hot label map
    n_classes                            instance boundary map (when ``boundary``)
    n_classes + 1 ... + feat_num         per-instance feature vectors (when ``feat_num``)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

# CMP facade labels, by class index. The dataset's PNGs store 1..12 (0 never occurs), so we
# subtract 1 rather than waste an always-zero one-hot channel on an unused id 0.
CMP_FACADE_CLASSES: tuple[str, ...] = (
    "background",
    "facade",
    "window",
    "door",
    "cornice",
    "sill",
    "balcony",
    "blind",
    "deco",
    "molding",
    "pillar",
    "shop",
)
CMP_FACADE_FIRST_ID = 1


def _as_int_map(array: NDArray[Any], what: str) -> NDArray[np.int64]:
    """A 2-D integer map as int64; anything else is a caller error, caught here."""
    if array.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H, W), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must hold integers, got {array.dtype}")
    return array.astype(np.int64, copy=False)


def classes_from_ids(
    label_png: NDArray[Any], *, first_id: int, n_classes: int
) -> NDArray[np.int64]:
    """Label-map pixel values → class indices ``0 .. n_classes - 1`` (value − ``first_id``).

    Raises:
        ValueError: a value outside ``first_id .. first_id + n_classes - 1`` (e.g. an
            RGB-converted or resampled label map).
    """
    values = _as_int_map(label_png, "label map")
    classes = values - first_id
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(
            f"label values must lie in {first_id}..{first_id + n_classes - 1}, "
            f"got {int(values.min())}..{int(values.max())}"
        )
    return classes


def cmp_facade_classes(label_png: NDArray[Any]) -> NDArray[np.int64]:
    """CMP facade PNG values (1..12) → class indices 0..11 (see :data:`CMP_FACADE_CLASSES`)."""
    return classes_from_ids(
        label_png, first_id=CMP_FACADE_FIRST_ID, n_classes=len(CMP_FACADE_CLASSES)
    )


def one_hot(label: NDArray[Any], n_classes: int) -> NDArray[np.float32]:
    """(H, W) class indices → (n_classes, H, W) float32 with a single 1 per pixel.

    Raises:
        ValueError: an index outside ``0 .. n_classes - 1``: silently dropping it would feed
            the network an all-zero pixel it never saw in training.
    """
    classes = _as_int_map(label, "label map")
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(
            f"label indices must lie in 0..{n_classes - 1}, "
            f"got {int(classes.min())}..{int(classes.max())}"
        )
    h, w = classes.shape
    out = np.zeros((n_classes, h * w), np.float32)
    out[classes.ravel(), np.arange(h * w)] = 1.0
    return out.reshape(n_classes, h, w)


def instance_boundary(inst: NDArray[Any]) -> NDArray[np.float32]:
    """(H, W) instance ids → (H, W) float32: 1 where a 4-neighbour has another id, else 0.

    Both pixels of every differing horizontal or vertical pair are marked, so boundaries are
    two pixels wide, as in pix2pixHD's ``get_edges``. Pixels outside the image do not count.
    """
    ids = _as_int_map(inst, "instance map")
    edge = np.zeros(ids.shape, bool)
    horizontal = ids[:, 1:] != ids[:, :-1]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    vertical = ids[1:, :] != ids[:-1, :]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge.astype(np.float32)


def feature_maps(
    inst: NDArray[Any],
    features: Mapping[int, Sequence[float] | NDArray[Any]] | None,
    feat_num: int,
) -> NDArray[np.float32]:
    """(feat_num, H, W) float32: each instance's feature vector over its pixels.

    Instances without an entry in ``features`` get zeros; entries for ids absent from
    ``inst`` are ignored (a style chosen for a class the image does not contain).

    Raises:
        ValueError: a feature vector whose length is not ``feat_num``.
    """
    ids = _as_int_map(inst, "instance map")
    h, w = ids.shape
    if feat_num == 0 or not features:
        return np.zeros((feat_num, h, w), np.float32)
    present, dense = np.unique(ids, return_inverse=True)
    table = np.zeros((present.size, feat_num), np.float32)
    for key, vector in features.items():
        vec = np.asarray(vector, np.float32).reshape(-1)
        if vec.size != feat_num:
            raise ValueError(
                f"feature vector of instance {key} has {vec.size} values, not {feat_num}"
            )
        where = np.searchsorted(present, key)
        if where < present.size and present[where] == key:
            table[where] = vec
    # One gather instead of one mask per instance.
    return np.ascontiguousarray(table[dense.reshape(-1)].T.reshape(feat_num, h, w))


def generator_input(
    label: NDArray[Any],
    inst: NDArray[Any] | None = None,
    features: Mapping[int, Sequence[float] | NDArray[Any]] | None = None,
    *,
    n_classes: int,
    feat_num: int = 0,
    boundary: bool = True,
) -> NDArray[np.float32]:
    """The (C, H, W) float32 input of a pix2pixHD generator, C = n_classes + boundary + feat_num.

    Args:
        label: (H, W) class indices ``0 .. n_classes - 1``.
        inst: (H, W) instance ids. When None the label map stands in for it: all pixels of a
            class then form one instance, so the boundary channel outlines class regions and
            ``features`` are keyed by class index. This is how Gantry's facade model
            was trained (CMP facades have no instance maps); NVIDIA's code has no such fallback
            (its ``--label_feat`` does the same for features only).
        features: instance id (or class index, see ``inst``) → ``feat_num`` values, typically
            in [-1, 1] like the encoder's Tanh output. Missing instances get zeros.
        n_classes: one-hot channels.
        feat_num: feature channels (0 for models trained without features).
        boundary: include the boundary channel (False for models trained with
            ``--no_instance``).

    Returns:
        Channels in pix2pixHD's order: one-hot, boundary, features.
    """
    classes = _as_int_map(label, "label map")
    ids = classes if inst is None else _as_int_map(inst, "instance map")
    if ids.shape != classes.shape:
        raise ValueError(f"instance map {ids.shape} and label map {classes.shape} differ in size")
    parts = [one_hot(classes, n_classes)]
    if boundary:
        parts.append(instance_boundary(ids)[None])
    if feat_num:
        parts.append(feature_maps(ids, features, feat_num))
    return np.concatenate(parts, axis=0)

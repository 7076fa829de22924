"""Face alignment: a least-squares similarity transform onto a landmark template, then a warp.

Embedders are trained on crops where the five landmarks sit at fixed template positions;
mapping each detected face there with rotation, uniform scale and translation (no shear, no
reflection, so the face is not distorted) is what insightface's ``norm_crop`` does.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray


def similarity_transform(src: NDArray[Any], dst: NDArray[Any]) -> NDArray[np.float64]:
    """Least-squares similarity mapping ``src`` points onto ``dst`` (Umeyama, 1991).

    Minimises ``sum |s R src_i + t - dst_i|^2`` over rotation ``R`` (det +1), scale ``s > 0``
    and translation ``t``: with centred points, ``R = U diag(1, d) V^T`` from the SVD of the
    cross-covariance ``dst^T src / N``, ``d = -1`` when ``det(U) det(V) < 0`` (the best
    orthogonal fit would be a reflection), ``s = trace(diag(S) diag(1, d)) / var(src)``,
    ``t = mean(dst) - s R mean(src)``.

    Args:
        src: ``(N, 2)`` points, or a stack ``(K, N, 2)``.
        dst: Same shape as ``src`` (or ``(N, 2)`` shared by every stacked ``src``).

    Returns:
        ``(2, 3)`` float64 ``[s R | t]`` for ``cv2.warpAffine``, or ``(K, 2, 3)`` for a stack.

    Raises:
        ValueError: On mismatched shapes, fewer than two points, or coincident ``src`` points.
    """
    source = np.asarray(src, dtype=np.float64)
    target = np.asarray(dst, dtype=np.float64)
    single = source.ndim == 2
    if single:
        source = source[None]
    target = np.broadcast_to(target, source.shape) if target.ndim == 2 else target
    if source.ndim != 3 or source.shape[-1] != 2 or target.shape != source.shape:
        raise ValueError(
            f"src and dst must be (N, 2) or (K, N, 2) alike, got {np.shape(src)}, {np.shape(dst)}"
        )
    if source.shape[1] < 2:
        raise ValueError("need at least two point pairs")

    src_mean = source.mean(axis=1, keepdims=True)
    dst_mean = target.mean(axis=1, keepdims=True)
    src_c, dst_c = source - src_mean, target - dst_mean
    src_var = (src_c**2).sum(axis=(1, 2)) / source.shape[1]
    if np.any(src_var <= np.finfo(np.float64).tiny):
        raise ValueError("source points coincide; no similarity transform is defined")
    covariance = np.einsum("kni,knj->kij", dst_c, src_c) / source.shape[1]
    u, singular, vt = np.linalg.svd(covariance)
    # Flip the last axis when the best orthogonal fit is a reflection; using det(U)det(V)
    # rather than det(covariance) also decides the rank-deficient (collinear) case.
    sign = np.where(np.linalg.det(u) * np.linalg.det(vt) < 0, -1.0, 1.0)
    d = np.stack([np.ones_like(sign), sign], axis=1)
    rotation = np.einsum("kij,kj,kjl->kil", u, d, vt)
    scale = (singular * d).sum(axis=1) / src_var
    linear = scale[:, None, None] * rotation
    translation = dst_mean[:, 0, :] - np.einsum("kij,kj->ki", linear, src_mean[:, 0, :])
    matrices = np.concatenate([linear, translation[:, :, None]], axis=2)
    return matrices[0] if single else matrices


def align_faces(
    image: NDArray[Any],
    landmarks: NDArray[Any],
    template: NDArray[Any],
    size: tuple[int, int],
) -> NDArray[Any]:
    """Warp each face so its landmarks land on ``template``.

    Args:
        image: ``(H, W, 3)`` image (any dtype ``cv2.warpAffine`` takes, e.g. uint8, float32).
        landmarks: ``(K, 5, 2)`` detected points, in ``image`` pixels and template order.
        template: ``(5, 2)`` target points in output-crop pixels (the embedder card's
            ``spec.landmark_template``).
        size: Output ``(height, width)``.

    Returns:
        ``(K, height, width, 3)`` crops, same dtype as ``image``; bilinear sampling, black
        outside the image.
    """
    img = np.asarray(image)
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[2] != 2:
        raise ValueError(f"landmarks must be (K, N, 2), got {points.shape}")
    height, width = int(size[0]), int(size[1])
    out = np.zeros((points.shape[0], height, width, *img.shape[2:]), dtype=img.dtype)
    if points.shape[0] == 0:
        return out
    matrices = similarity_transform(points, template)
    # cv2.warpAffine takes one matrix per call, so the warp (only) loops over the faces.
    for k in range(points.shape[0]):
        out[k] = cv2.warpAffine(
            img,
            matrices[k],
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0.0, 0.0, 0.0, 0.0),
        )
    return out

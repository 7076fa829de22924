"""Generator architectures, registered by name.

Every module here keeps the parameter names of its upstream implementation (BasicSR,
Real-ESRGAN), so official checkpoints load with ``strict=True`` and our own importers can be
checked against the same keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gantry.core.registry import Registry

ARCHS: Registry[Callable[..., nn.Module]] = Registry("architecture")


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the architecture registered as ``name``.

    Args:
        name: a registered variant, e.g. ``"realesrgan_x4plus"``.
        **kwargs: forwarded to the variant's factory (most variants take none).

    Returns:
        A freshly initialised module (not in eval mode, on CPU).

    Raises:
        KeyError: if ``name`` is not registered; the message lists the known names.
    """
    return ARCHS.build(name, **kwargs)


# Imported for their side effect: each module registers its variants in ARCHS. They sit
# below ARCHS because they import it from this package.
from trainer.archs import (  # noqa: E402
    capg_gan,
    combogan,
    cyclegan,
    deblurgan,
    dlib_resnet,
    face_embedder,
    faceapi_landmarks,
    genegan,
    glcic,
    icgan,
    iresnet,
    mobilefacenet,
    mobilefacenet_tf,
    mtcnn,
    pfld,
    pix2pix,
    pix2pixhd,
    progan,
    retinaface,
    rrdbnet,
    srresnet,
    srvgg,
    stargan,
    stargan_v2,
    tpgan,
)

__all__ = [
    "ARCHS",
    "build_network",
    "capg_gan",
    "combogan",
    "cyclegan",
    "deblurgan",
    "dlib_resnet",
    "face_embedder",
    "faceapi_landmarks",
    "genegan",
    "glcic",
    "icgan",
    "iresnet",
    "mobilefacenet",
    "mobilefacenet_tf",
    "mtcnn",
    "pfld",
    "pix2pix",
    "pix2pixhd",
    "progan",
    "retinaface",
    "rrdbnet",
    "srresnet",
    "srvgg",
    "stargan",
    "stargan_v2",
    "tpgan",
]

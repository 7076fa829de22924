"""VGG19 perceptual loss (Johnson et al. 2016; ESRGAN's variant: features before activation).

The extractor is torchvision's ``vgg19().features`` rebuilt in plain torch (torchvision is not
installable here) with the same module indices, so a torchvision state_dict loads unchanged:

    features.{i}.weight / features.{i}.bias  for the 16 convs,
    i in 0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34

(ReLUs at the odd indices after each conv, max-pools at 4, 9, 18, 27, 36). Layers are named
``conv{block}_{n}``, e.g. ``conv5_4`` is index 34; a feature is the conv's output *before* its
ReLU, which ESRGAN found keeps more information (post-ReLU maps of deep layers are sparse) and
gives brightness closer to the ground truth.

No ImageNet VGG19 weights ship with Gantry, and a randomly initialised VGG measures nothing
useful, so the loss is only built from a weights file the user supplies: torchvision's
``vgg19-dcbb9e9d.pth`` or any state_dict with the same keys (with or without the
``features.`` prefix; ``classifier.*`` keys are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.registry import UnknownNameError
from trainer.weights.errors import WeightImportError

# torchvision's vgg19 "E" config: conv widths, "M" a 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip
# ImageNet statistics the torchvision weights were trained with (inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_LAYER_WEIGHTS: Mapping[str, float] = {"conv5_4": 1.0}  # ESRGAN's choice
PERCEPTUAL_OFF_REASON = (
    "vgg perceptual loss off: no vgg19 weights file configured (none ship with Gantry)"
)


def _conv_layer_indices() -> dict[str, int]:
    names: dict[str, int] = {}
    block, n, index = 1, 1, 0
    for item in _VGG19_CFG:
        if item == "M":
            block, n, index = block + 1, 1, index + 1
        else:
            names[f"conv{block}_{n}"] = index
            n, index = n + 1, index + 2  # the conv and its ReLU
    return names


VGG19_CONV_LAYERS: Mapping[str, int] = _conv_layer_indices()
"""``conv1_1`` → 0 ... ``conv5_4`` → 34: layer name to index in torchvision's ``features``."""


def vgg19_features(num_modules: int | None = None) -> nn.Sequential:
    """torchvision's ``vgg19().features``, randomly initialised, optionally truncated.

    Args:
        num_modules: keep modules ``0 .. num_modules - 1`` (all 37 if None).

    Returns:
        The Sequential; its state_dict keys are ``{i}.weight`` / ``{i}.bias`` for the convs.
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, int)
            layers.append(nn.Conv2d(channels, item, kernel_size=3, padding=1))
            # Not in-place (torchvision's is): an in-place ReLU would overwrite the pre-ReLU
            # conv output we keep as a feature.
            layers.append(nn.ReLU(inplace=False))
            channels = item
    return nn.Sequential(*layers[:num_modules])


# The name says what happened, like the error kinds in gantry.core.errors.
class PerceptualWeightsMissing(FileNotFoundError):  # noqa: N818
    """No VGG19 weights file was given, or the given path does not exist."""


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 features (before ReLU) of a prediction and its target.

    The VGG is frozen (no parameter requires grad, eval mode); gradients still flow to the
    prediction. VGG19 has no batch norm or dropout, so train/eval mode makes no difference.

    Args:
        weights_path: a torchvision-layout VGG19 state_dict (``vgg19-dcbb9e9d.pth``). Required.
        layer_weights: layer name (``conv1_1`` .. ``conv5_4``) → weight; ESRGAN's
            ``{"conv5_4": 1.0}`` by default.
        value_range: the (low, high) range of input images, e.g. (-1, 1) for tanh generators
            or (0, 1); inputs are mapped to [0, 1] and then ImageNet-normalised.

    Raises:
        PerceptualWeightsMissing: ``weights_path`` is None or not a file.
        WeightImportError: the file is not a state_dict, or lacks or misshapes a needed conv.
        UnknownNameError: a layer name that VGG19 does not have (the message lists them).
        ValueError: an empty ``layer_weights`` or an empty ``value_range``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        weights_path: Path | str | None,
        layer_weights: Mapping[str, float] | None = None,
        value_range: tuple[float, float] = (-1.0, 1.0),
    ) -> None:
        super().__init__()
        path = _existing_weights(weights_path)
        weights = dict(DEFAULT_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        if not weights:
            raise ValueError("layer_weights is empty: name at least one VGG19 layer")
        for name in weights:
            if name not in VGG19_CONV_LAYERS:
                raise UnknownNameError("VGG19 layer", name, list(VGG19_CONV_LAYERS))
        low, high = value_range
        if not high > low:
            raise ValueError(f"value_range {value_range} is empty")

        self.layer_weights = weights
        self.value_range = (float(low), float(high))
        self._index_weights = {VGG19_CONV_LAYERS[name]: w for name, w in weights.items()}
        # Layers past the deepest feature are never run, so they are not built or loaded.
        self.features = vgg19_features(max(self._index_weights) + 1)
        _load_features(self.features, path)
        self.features.requires_grad_(False)
        self.eval()
        # Not persistent: the loss's state_dict is exactly the VGG keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in ``value_range`` → ImageNet-normalised input for the VGG."""
        low, high = self.value_range
        return ((images - low) / (high - low) - self.mean) / self.std

    def extract(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Pre-ReLU features of ``images`` (in ``value_range``), keyed by module index."""
        x = self.normalise(images)
        out: dict[int, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self._index_weights:
                out[index] = x
        return out

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ_layers weight · L1(VGG_l(prediction), VGG_l(target)); the target gets no gradient.

        Args:
            prediction: (N, 3, H, W) in ``value_range``.
            target: the ground truth, same shape.

        Returns:
            A scalar tensor.
        """
        pred_features = self.extract(prediction)
        with torch.no_grad():
            target_features = self.extract(target)
        terms = [
            F.l1_loss(pred_features[i], target_features[i]) * w
            for i, w in self._index_weights.items()
        ]
        return torch.stack(terms).sum()


def _existing_weights(weights_path: Path | str | None) -> Path:
    if weights_path is None:
        raise PerceptualWeightsMissing(
            "the VGG perceptual loss needs ImageNet VGG19 weights, and none ship with Gantry: "
            "pass a torchvision vgg19 state_dict file (vgg19-dcbb9e9d.pth) as weights_path"
        )
    path = Path(weights_path)
    if not path.is_file():
        raise PerceptualWeightsMissing(
            f"VGG19 weights file {path} does not exist; the VGG perceptual loss needs a "
            "torchvision vgg19 state_dict (vgg19-dcbb9e9d.pth), none ship with Gantry"
        )
    return path


def _load_features(features: nn.Sequential, path: Path) -> None:
    """Load the convs ``features`` has from ``path``, strictly (every needed key, every shape)."""
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors alike
        raise WeightImportError(f"{path}: not a readable PyTorch state_dict ({exc})") from exc
    if not isinstance(state, Mapping):
        raise WeightImportError(f"{path}: expected a state_dict, got {type(state).__name__}")
    # torchvision's keys are features.{i}.*; accept bare {i}.* too. Others (classifier.*)
    # belong to layers the loss does not use.
    unprefixed = {str(k).removeprefix("features."): v for k, v in state.items()}
    wanted = features.state_dict().keys()
    missing = [key for key in wanted if key not in unprefixed]
    if missing:
        raise WeightImportError(
            f"{path}: no VGG19 weights for features.{', features.'.join(missing)}"
        )
    try:
        features.load_state_dict({key: unprefixed[key] for key in wanted}, strict=True)
    except RuntimeError as exc:  # a shape mismatch: not VGG19's layout
        raise WeightImportError(f"{path}: not torchvision VGG19 weights ({exc})") from exc


def perceptual_loss_or_none(
    weights_path: Path | None, **kwargs: Any
) -> tuple[VGGPerceptualLoss | None, str]:
    """The perceptual loss if a weights file is configured, else None; with a line saying which.

    A configured path that does not exist is an error, not "off": it is a typo or a missing
    download the user should hear about.

    Args:
        weights_path: the configured VGG19 weights file, or None when none is configured.
        **kwargs: ``layer_weights``, ``value_range`` for ``VGGPerceptualLoss``.

    Returns:
        (loss or None, a reason for the log or config summary).

    Raises:
        PerceptualWeightsMissing: ``weights_path`` is set but not a file.
        WeightImportError: the file does not hold VGG19 weights.
    """
    if weights_path is None:
        return None, PERCEPTUAL_OFF_REASON
    loss = VGGPerceptualLoss(weights_path, **kwargs)
    layers = ", ".join(f"{name}={w:g}" for name, w in loss.layer_weights.items())
    return loss, f"vgg perceptual loss on: {layers} from {weights_path}"

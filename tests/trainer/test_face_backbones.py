"""ArcFace-family backbones (IResNet-50/100, MobileFaceNet): shapes, keys, ONNX export.

No weights exist for these here, so the tests pin the architecture: output shape, the
insightface state_dict keys and parameter counts (what a released ``backbone.pth`` must fit),
and that the exported graph computes what PyTorch does at any batch size.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trainer.archs import ARCHS, build_network
from trainer.archs.iresnet import IResNet
from trainer.archs.mobilefacenet import ConvBlock, MobileFaceNet

NAMES = ["iresnet50", "iresnet100", "mobilefacenet"]

# Parameter counts of arcface_torch's r50 / r100 / mbf (512-d): a missing or extra layer
# changes them, and a released checkpoint would then not load.
PARAMETERS = {"iresnet50": 43_590_848, "iresnet100": 65_156_160, "mobilefacenet": 2_059_520}

KEYS = {
    "iresnet50": [
        "conv1.weight",
        "bn1.running_var",
        "prelu.weight",
        "layer1.0.bn1.weight",
        "layer1.0.conv1.weight",
        "layer1.0.bn2.bias",
        "layer1.0.prelu.weight",
        "layer1.0.conv2.weight",
        "layer1.0.bn3.running_mean",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.weight",
        "layer3.13.conv2.weight",
        "layer4.2.bn3.weight",
        "bn2.weight",
        "fc.weight",
        "fc.bias",
        "features.weight",
        "features.running_mean",
    ],
    "iresnet100": ["layer2.12.conv1.weight", "layer3.29.bn3.bias", "features.weight"],
    "mobilefacenet": [
        "layers.0.layers.0.weight",
        "layers.0.layers.1.running_mean",
        "layers.0.layers.2.weight",
        "layers.1.layers.0.weight",
        "layers.2.layers.0.layers.0.weight",
        "layers.2.layers.2.layers.1.weight",
        "layers.3.layers.3.layers.1.layers.0.weight",
        "layers.7.layers.1.layers.2.layers.1.bias",
        "conv_sep.layers.0.weight",
        "conv_sep.layers.2.weight",
        "features.layers.0.layers.0.weight",
        "features.layers.0.layers.1.running_var",
        "features.layers.2.weight",
        "features.layers.3.weight",
    ],
}
ABSENT = {
    # Only the first block of each stage projects its input.
    "iresnet50": ["layer1.1.downsample.0.weight", "conv1.bias"],
    "iresnet100": ["layer2.1.downsample.0.weight"],
    # The GDC's linear layer has no bias; residual blocks keep their width (no projection).
    "mobilefacenet": ["features.layers.2.bias", "layers.3.layers.0.downsample.0.weight"],
}


def _reinit(model: nn.Module, seed: int = 0) -> nn.Module:
    """Well-scaled random weights and non-trivial BN statistics.

    The upstream initialisations (N(0, 0.1) convs for IResNet) overflow float32 through 100
    pre-activation blocks in eval mode, and identity BN statistics would hide an exporter
    that mishandled them; this gives O(1) activations and exercises every parameter.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / fan_in**0.5)
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
            elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                n = module.num_features
                module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=gen))
                module.bias.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(0.25 * torch.rand(module.weight.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {name: _reinit(build_network(name)).eval() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_512d_embeddings(models: dict[str, nn.Module], name: str) -> None:
    assert name in ARCHS
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = models[name](x)
    assert out.shape == (2, 512)
    assert torch.isfinite(out).all()
    # Two different faces must not collapse onto one embedding.
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_match_insightface(models: dict[str, nn.Module], name: str) -> None:
    state = models[name].state_dict()
    missing = [key for key in KEYS[name] if key not in state]
    assert not missing
    assert not [key for key in ABSENT[name] if key in state]
    assert sum(p.numel() for p in models[name].parameters()) == PARAMETERS[name]


def test_iresnet_layout() -> None:
    for name, depths in (("iresnet50", (3, 4, 14, 3)), ("iresnet100", (3, 13, 30, 3))):
        model = build_network(name)
        assert isinstance(model, IResNet)
        stages = (model.layer1, model.layer2, model.layer3, model.layer4)
        assert tuple(len(stage) for stage in stages) == depths
        for stage in stages:
            # Stride sits in the second conv of the first block (insightface's IBasicBlock).
            assert stage[0].conv2.stride == (2, 2) and stage[0].conv1.stride == (1, 1)
        assert model.fc.in_features == 512 * 7 * 7
        # insightface freezes the embedding BN's scale at 1.
        assert not model.features.weight.requires_grad
        assert torch.equal(model.features.weight, torch.ones(512))


def test_mobilefacenet_layout() -> None:
    model = build_network("mobilefacenet")
    assert isinstance(model, MobileFaceNet)
    assert len(model.layers) == 8
    second = model.layers[1]
    assert isinstance(second, ConvBlock)
    # 128 channels in 64 groups (not depthwise), as upstream hard-codes groups=64.
    state = model.state_dict()
    assert tuple(state["layers.1.layers.0.weight"].shape) == (128, 2, 3, 3)
    # GDC: a 7x7 depthwise conv over the whole final map.
    assert tuple(state["features.layers.0.layers.0.weight"].shape) == (512, 1, 7, 7)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_pytorch(
    models: dict[str, nn.Module], name: str, tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = models[name]
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 112, 112),),
            str(path),
            input_names=["face"],
            output_names=["embedding"],
            dynamic_axes={"face": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 112, 112, generator=torch.Generator().manual_seed(2))  # batch != 1
    (onnx_out,) = session.run(None, {"face": x.numpy()})
    with torch.no_grad():
        torch_out = model(x).numpy()
    assert onnx_out.shape == (3, 512)
    # Measured: max |diff| 4e-7 (mbf), 1e-5 (r50), 5e-5 (r100) on outputs of magnitude 1-15,
    # i.e. float32 summation-order noise; gate on error relative to the output scale.
    scale = max(1.0, float(np.abs(torch_out).max()))
    assert float(np.abs(onnx_out - torch_out).max()) <= 1e-4 * scale

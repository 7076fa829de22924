"""Frontalization losses: the Laplacian, TP-GAN's symmetry and identity losses, CAPG-GAN's
multi-scale L1."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.losses import identity_feature_loss, laplacian, multiscale_l1, symmetry_loss


def test_the_laplacian_is_zero_on_flat_and_linear_images_and_the_kernel_elsewhere() -> None:
    flat = torch.full((2, 3, 8, 10), 0.7)
    assert laplacian(flat).shape == flat.shape
    assert float(laplacian(flat).abs().max()) == 0
    ramp = (2 * torch.arange(10.0)[None, :] + 3 * torch.arange(8.0)[:, None]).expand(1, 2, 8, 10)
    result = laplacian(ramp)
    assert torch.allclose(result[..., 1:-1, 1:-1], torch.zeros(1, 2, 6, 8))
    # Replicate padding: the left column lacks the -2 step, the top row the -3 one.
    assert torch.allclose(result[..., 3, 0], torch.full((1, 2), 2.0))
    assert torch.allclose(result[..., 0, 4], torch.full((1, 2), 3.0))
    # A single bright pixel gives the kernel, per channel (depthwise: channel 0 stays 0).
    dot = torch.zeros(1, 2, 5, 5)
    dot[0, 1, 2, 2] = 1
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    assert torch.equal(laplacian(dot)[0, 1, 1:4, 1:4], kernel)
    assert float(laplacian(dot)[0, 0].abs().max()) == 0


def test_the_symmetry_loss_is_zero_for_a_mirror_image_only() -> None:
    torch.manual_seed(0)
    half = torch.rand(2, 1, 8, 4)
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    assert float(symmetry_loss(symmetric)) == 0
    assert float(symmetry_loss(symmetric, laplacian_space=True)) == pytest.approx(0, abs=1e-6)
    lopsided = symmetric.clone()
    lopsided[..., 0] += 1  # the left column only: 2 of 8 columns differ by 1 from their mirror
    assert float(symmetry_loss(lopsided)) == pytest.approx(2 / 8)
    assert float(symmetry_loss(lopsided, laplacian_space=True)) > 0
    # A brightness ramp across the face: pixels differ, Laplacians (away from borders) do not.
    ramp = symmetric + torch.linspace(0, 1, 8)
    assert float(symmetry_loss(ramp)) > 0.2
    assert float(symmetry_loss(ramp, laplacian_space=True)) < float(symmetry_loss(ramp))


def test_multiscale_l1_is_the_mean_of_the_l1s_at_each_scale() -> None:
    torch.manual_seed(1)
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    assert float(multiscale_l1(a, a)) == 0
    assert torch.allclose(multiscale_l1(a, b, scales=(1.0,)), F.l1_loss(a, b))
    half = F.l1_loss(F.avg_pool2d(a, 2), F.avg_pool2d(b, 2))
    quarter = F.l1_loss(F.avg_pool2d(a, 4), F.avg_pool2d(b, 4))
    expected = (F.l1_loss(a, b) + half + quarter) / 3
    assert torch.allclose(multiscale_l1(a, b), expected)
    # A checkerboard difference vanishes once averaged away: only the full scale sees it.
    board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    c = board.float().expand(1, 1, 16, 16)
    assert torch.allclose(multiscale_l1(c, 1 - c), torch.tensor(1 / 3))
    with pytest.raises(ValueError, match="scales"):
        multiscale_l1(a, b, scales=(2.0,))
    with pytest.raises(ValueError, match="scales"):
        multiscale_l1(a, b, scales=())


def test_the_identity_loss_is_zero_for_equal_and_two_for_opposite_embeddings() -> None:
    torch.manual_seed(2)
    f = torch.randn(4, 128)
    assert float(identity_feature_loss(f, f)) == pytest.approx(0, abs=1e-6)
    assert float(identity_feature_loss(f, 3 * f)) == pytest.approx(0, abs=1e-6)  # scale-free
    assert float(identity_feature_loss(f, -f)) == pytest.approx(2)
    orthogonal = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(identity_feature_loss(orthogonal, orthogonal.flip(0))) == pytest.approx(1)
    assert float(identity_feature_loss(f, 3 * f, kind="mse")) == pytest.approx(
        float((4 * f**2).mean())
    )
    out = f.clone().requires_grad_()
    target = torch.randn(4, 128, requires_grad=True)
    identity_feature_loss(out, target).backward()
    assert out.grad is not None and float(out.grad.abs().sum()) > 0
    assert target.grad is None  # the target is detached
    with pytest.raises(ValueError, match="kind"):
        identity_feature_loss(f, f, kind="l1")  # type: ignore[arg-type]

"""Binary layers: sign convention, ApproxSign and clipped-STE gradients, α scaling, RSign/RPReLU."""

from __future__ import annotations

import torch

from ltbench.binary.layers import BinaryConv2d, RPReLU, RSign, binary_sign, sign


def test_sign_zero_is_plus_one():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0, float("nan")])
    assert sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_approx_sign_gradient_is_piecewise_quadratic_derivative():
    x = torch.tensor([-1.5, -1.0, -0.75, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0], requires_grad=True)
    binary_sign(x).sum().backward()
    expected = [0.0, 0.0, 2 + 2 * -0.75, 2 + 2 * -0.25, 2.0, 2 - 2 * 0.25, 2 - 2 * 0.5, 0.0, 0.0]
    assert torch.allclose(x.grad, torch.tensor(expected))


def test_binary_conv_forward_is_alpha_times_sign_conv():
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, stride=2, padding=1)
    conv.weight.data.normal_()
    x = sign(torch.randn(2, 3, 7, 7))
    w = conv.weight.detach().double()
    alpha = w.abs().mean(dim=(1, 2, 3))
    ref = torch.nn.functional.conv2d(x.double(), torch.where(w < 0, -1.0, 1.0).double(), stride=2, padding=1)
    ref = ref * alpha.view(1, -1, 1, 1)
    assert torch.allclose(conv(x).double(), ref, atol=1e-5)
    assert torch.allclose(conv.scale().double(), alpha)
    assert set(conv.sign_weight().unique().tolist()) <= {-1.0, 1.0}


def test_binary_conv_gradient_is_clipped_ste_with_detached_alpha():
    conv2 = BinaryConv2d(2, 1, 1, padding=0)
    conv2.weight.data = torch.tensor([0.5, -2.0]).view(1, 2, 1, 1).clone()
    x = torch.ones(1, 2, 1, 1)
    conv2(x).sum().backward()
    # d out / d w_b = x = 1 for both; clipped STE passes |w| <= 1 only; α is detached (no extra term)
    assert conv2.weight.grad.flatten().tolist() == [1.0, 0.0]


def test_rsign_and_rprelu():
    rs = RSign(2)
    rs.bias.data = torch.tensor([0.5, -0.5]).view(1, 2, 1, 1)
    x = torch.tensor([[-0.25, 0.25]]).view(1, 2, 1, 1)
    assert rs(x).flatten().tolist() == [1.0, -1.0]
    rp = RPReLU(1)
    rp.bias_in.data.fill_(1.0)
    rp.bias_out.data.fill_(-0.5)
    y = rp(torch.tensor([-3.0, 1.0]).view(2, 1, 1, 1)).flatten()
    assert torch.allclose(y, torch.tensor([0.25 * -2.0 - 0.5, 2.0 - 0.5]))


def test_step1_real_weights():
    conv = BinaryConv2d(2, 2, 1, padding=0, binary_weights=False)
    x = torch.randn(1, 2, 3, 3)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight))

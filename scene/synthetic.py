"""Random models for tests and benchmarks: points uniform in [-1, 1]³ with random colours, and a
model on them whose Adam moments are all set (one step on random gradients), so that row edits
have moments to keep, zero or move."""
import numpy as np
import torch

from arguments import MCMCParams, OptimizationParams, StrategyParams
from utils.graphics_utils import BasicPointCloud
from .gaussian_model import PARAMETER_ATTRIBUTES, GaussianModel
from .strategies import MCMC_INIT_OPACITY, MCMC_INIT_SCALE_FACTOR, MCMCStrategy


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


def mcmc_model_with_moments(n: int, sh_degree: int, cap_max: int, seed: int = 0):
    """(model, MCMCStrategy): n random Gaussians started as MCMC starts them, every Adam moment
    set, raw opacities drawn from N(0, 1) so that they spread across (0, 1)."""
    opt = OptimizationParams()
    model = GaussianModel(sh_degree, opt.optimizer_type)
    model.create_from_pcd(random_point_cloud(n, seed), None, 1.0, init_opacity=MCMC_INIT_OPACITY,
                          init_scale_factor=MCMC_INIT_SCALE_FACTOR)
    model.training_setup(opt)
    step_on_random_gradients(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model._opacity[:] = torch.randn(n, 1, generator=g)
    return model, MCMCStrategy.from_params(opt, StrategyParams(strategy="mcmc"),
                                           MCMCParams(cap_max=cap_max))

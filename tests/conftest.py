"""What the tests share: the repository and the bundled sample scene, the fast densification
schedule short runs use, an optimizer snapshot, and fixtures over them. Test modules import the
constants and helpers (`from conftest import SAMPLE`) and ask for the fixtures by name."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "garden_dev"
# Densify every 10 views from 10 and reset opacities at 30: a short run goes through clone,
# split, prune and reset.
FAST_SCHEDULE = ["--densify_from_iter", "10", "--densification_interval", "10",
                 "--opacity_reset_interval", "30", "--densify_grad_threshold", "0.0001"]


def optimizer_snapshot(model):
    """Per parameter group: (parameter, exp_avg, exp_avg_sq, step), cloned."""
    out = {}
    for group in model.optimizer.param_groups:
        p = group["params"][0]
        state = model.optimizer.state[p]
        out[group["name"]] = (p.detach().clone(), state["exp_avg"].clone(),
                              state["exp_avg_sq"].clone(), state["step"].clone())
    return out


@pytest.fixture
def sample() -> Path:
    """The bundled sample scene (read only: tests never write into it)."""
    return SAMPLE

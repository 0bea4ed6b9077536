"""GaussianModel: row-edit invariants after clone, split, prune and opacity reset; learning
rates; densification decisions on hand-built Gaussians; the screen-size prune; PLY round trip."""
import math

import pytest
import torch
from plyfile import PlyData

from arguments import OptimizationParams, StrategyParams
from scene.densification import SCREEN_SIZE_PRUNE_PIXELS, DensificationStats
from scene.strategies import DefaultStrategy
from scene.gaussian_model import PARAMETER_ATTRIBUTES, GaussianModel
from scene.optimizer_surgery import RowEdit
from scene.synthetic import random_point_cloud, step_on_random_gradients as take_adam_step
from utils.errors import DatasetError
from conftest import optimizer_snapshot

EXTENT = 2.0


def make_model(n=12, sh_degree=2, seed=0, screen_size_prune=False, **opt_overrides):
    opt = OptimizationParams(**opt_overrides)
    model = GaussianModel(sh_degree, opt.optimizer_type)
    model.create_from_pcd(random_point_cloud(n, seed), None, EXTENT)
    model.training_setup(opt)
    # the default strategy: its statistics follow the rows
    model.attach_strategy(DefaultStrategy.from_params(
        opt, StrategyParams(screen_size_prune=screen_size_prune)))
    return model, opt


def assert_consistent(model):
    n = model.num_points
    for group in model.optimizer.param_groups:
        (p,) = group["params"]
        assert p is getattr(model, PARAMETER_ATTRIBUTES[group["name"]])
        assert p.requires_grad and p.is_leaf and p.shape[0] == n
        state = model.optimizer.state[p]
        assert state["exp_avg"].shape == p.shape and state["exp_avg_sq"].shape == p.shape
    for name in DensificationStats.NAMES:
        assert getattr(model.strategy.stats, name).shape[0] == n


def test_prune_keeps_surviving_moments():
    model, _ = make_model()
    take_adam_step(model)
    before = optimizer_snapshot(model)
    mask = torch.zeros(model.num_points, dtype=torch.bool)
    mask[[1, 4, 5]] = True
    model.prune_points(mask)
    assert model.num_points == 9
    assert_consistent(model)
    after = optimizer_snapshot(model)
    for name, (p, m1, m2, step) in before.items():
        torch.testing.assert_close(after[name][0], p[~mask], rtol=0, atol=0)
        torch.testing.assert_close(after[name][1], m1[~mask], rtol=0, atol=0)
        torch.testing.assert_close(after[name][2], m2[~mask], rtol=0, atol=0)
        assert after[name][3] == step


def test_clone_appends_copies_with_zero_moments():
    model, opt = make_model()
    take_adam_step(model)
    before = optimizer_snapshot(model)
    n = model.num_points
    grads = torch.zeros(n, 1)
    grads[[0, 3]] = 1.0
    model._scaling.data[:] = math.log(0.001)  # all small: clone, not split
    before = optimizer_snapshot(model)
    model.densify_and_clone(grads, opt.densify_grad_threshold, EXTENT)  # the original's name
    assert model.num_points == n + 2
    assert_consistent(model)
    after = optimizer_snapshot(model)
    for name, (p, m1, m2, _) in before.items():
        torch.testing.assert_close(after[name][0][:n], p, rtol=0, atol=0)
        torch.testing.assert_close(after[name][0][n:], p[[0, 3]], rtol=0, atol=0)
        torch.testing.assert_close(after[name][1][:n], m1, rtol=0, atol=0)
        assert after[name][1][n:].abs().max() == 0 and after[name][2][n:].abs().max() == 0
    for name in DensificationStats.NAMES:
        assert getattr(model.strategy.stats, name).abs().max() == 0  # restarted, as the original


def test_split_replaces_large_gaussians_by_two_smaller_samples():
    torch.manual_seed(0)
    model, opt = make_model()
    take_adam_step(model)
    n = model.num_points
    model._scaling.data[:] = math.log(0.001)
    model._scaling.data[2] = math.log(0.5)  # > percent_dense * extent = 0.02
    model._scaling.data[7] = math.log(0.3)
    before = optimizer_snapshot(model)
    grads = torch.full((n, 1), 1.0)
    grads[[0, 1, 3, 4, 5, 6, 8, 9, 10, 11]] = 0.0
    model.densify_and_split(grads, opt.densify_grad_threshold, EXTENT)  # the original's name
    assert model.num_points == n - 2 + 4
    assert_consistent(model)
    keep = torch.ones(n, dtype=torch.bool)
    keep[[2, 7]] = False
    after = optimizer_snapshot(model)
    for name, (p, m1, m2, _) in before.items():
        torch.testing.assert_close(after[name][0][:n - 2], p[keep], rtol=0, atol=0)
        torch.testing.assert_close(after[name][1][:n - 2], m1[keep], rtol=0, atol=0)
        assert after[name][1][n - 2:].abs().max() == 0
    scales = model.get_scaling[n - 2:]
    torch.testing.assert_close(scales[[0, 2]], torch.full((2, 3), 0.5 / 1.6))
    torch.testing.assert_close(scales[[1, 3]], torch.full((2, 3), 0.3 / 1.6))
    # Samples are drawn from the parent: within a few of its standard deviations.
    parents = before["xyz"][0][[2, 7, 2, 7]]
    distance = (model._xyz[n - 2:].detach() - parents).norm(dim=1)
    assert (distance < 4 * torch.tensor([0.5, 0.3, 0.5, 0.3]) * math.sqrt(3)).all()
    assert (distance > 0).all()


def test_opacity_reset_zeroes_only_opacity_moments():
    model, _ = make_model()
    take_adam_step(model)
    model._opacity.data[:3] = 5.0  # opacity ~0.99
    before = optimizer_snapshot(model)
    model.reset_opacity()
    assert_consistent(model)
    after = optimizer_snapshot(model)
    assert model.get_opacity.max().item() <= 0.01 + 1e-7
    assert after["opacity"][1].abs().max() == 0 and after["opacity"][2].abs().max() == 0
    assert after["opacity"][3] == before["opacity"][3]  # Adam step count kept
    torch.testing.assert_close(after["xyz"][1], before["xyz"][1], rtol=0, atol=0)


def test_row_count_keeping_edits_run_in_place_with_the_same_result_as_a_rebuild():
    """Relocation-like and reset-like edits write into the existing tensors (keep=None) and give
    bit for bit what the rebuilding path (an all-True keep) gives; either way the model keeps
    its Parameter objects (a rebuild swaps their data) and every parameter is left without a
    gradient, so that iteration's optimizer step skips it."""
    rows = torch.tensor([1, 4, 9, 10])
    sources = torch.tensor([0, 2])
    results = []
    for keep in (None, torch.ones(12, dtype=torch.bool)):
        model, _ = make_model()
        take_adam_step(model)
        params_before = {name: getattr(model, attr) for name, attr in PARAMETER_ATTRIBUTES.items()}
        for param in params_before.values():
            param.grad = torch.ones_like(param)
        g = torch.Generator().manual_seed(3)  # the same values for both paths
        values = {name: torch.randn((len(rows),) + p.shape[1:], generator=g)
                  for name, p in params_before.items()}
        model.edit_rows(RowEdit(keep=keep, assign={n: (rows, v) for n, v in values.items()},
                                zero_moments=sources))
        model.edit_rows(RowEdit(keep=keep, replace={"opacity": torch.zeros(12, 1)}))
        assert_consistent(model)
        for name, attr in PARAMETER_ATTRIBUTES.items():
            param = getattr(model, attr)
            assert param.grad is None
            assert param is params_before[name]
            assert model.optimizer.param_groups[list(PARAMETER_ATTRIBUTES).index(name)]["params"][0] is param
        results.append(optimizer_snapshot(model))
    for name, in_place in results[0].items():
        for a, b in zip(in_place, results[1][name]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert results[0]["opacity"][1].abs().max() == 0  # replaced: moments restart
    assert results[0]["xyz"][1][sources].abs().max() == 0  # sources: zero moments
    assert results[0]["xyz"][1][[3, 5]].abs().min() > 0  # others keep theirs


def test_xyz_learning_rate_follows_the_exponential_schedule():
    model, opt = make_model()
    init, final = opt.position_lr_init * EXTENT, opt.position_lr_final * EXTENT
    for step in (0, 1, 7000, 15000, 30000, 45000):
        t = min(step / opt.position_lr_max_steps, 1.0)
        expected = math.exp((1 - t) * math.log(init) + t * math.log(final))
        assert model.update_learning_rate(step) == pytest.approx(expected, rel=1e-12)
    rates = {g["name"]: g["lr"] for g in model.optimizer.param_groups}
    assert rates["f_dc"] == opt.feature_lr and rates["f_rest"] == opt.feature_lr / 20
    assert rates["opacity"] == 0.025 and rates["scaling"] == 0.005
    assert rates["rotation"] == 0.001
    assert model.optimizer.defaults["eps"] == 1e-15


def hand_built(screen_size_prune=False):
    """Gaussians with known fates: 0 small + high gradient → cloned; 1 large + high gradient →
    split; 2 low gradient → kept as is; 3 transparent → pruned; 4 huge on screen (radius 50 px)."""
    model, opt = make_model(n=5, screen_size_prune=screen_size_prune)
    model._scaling.data[:] = math.log(0.001)
    model._scaling.data[1] = math.log(0.1)
    model._opacity.data[:] = 0.0
    model._opacity.data[3] = -8.0  # sigmoid = 0.0003 < 0.005
    stats = model.strategy.stats
    stats.xyz_gradient_accum[:] = torch.tensor([[0.001], [0.001], [0.0], [0.0], [0.0]]) * 3
    stats.denom[:] = 3
    stats.max_radii2D[:] = torch.tensor([3.0, 5.0, 2.0, 1.0, 50.0])
    return model, opt


def test_densify_and_prune_decisions_on_hand_built_gaussians():
    model, opt = hand_built()
    xyz = model._xyz.detach().clone()
    # the original's entry point and signature (max_grad, min_opacity, extent, max_screen_size)
    model.densify_and_prune(opt.densify_grad_threshold, 0.005, EXTENT, SCREEN_SIZE_PRUNE_PIXELS)
    # kept 0, 2, 4 in order, then clone of 0, then the 2 split samples of 1; 3 pruned; and the
    # original's screen-size test never fires (max_radii2D was zeroed before it).
    assert model.num_points == 6
    torch.testing.assert_close(model._xyz[:4].detach(), xyz[[0, 2, 4, 0]], rtol=0, atol=0)
    torch.testing.assert_close(model.get_scaling[4:], torch.full((2, 3), 0.1 / 1.6))


def test_working_screen_size_prune_removes_gaussians_big_on_screen():
    model, opt = hand_built(screen_size_prune=True)
    xyz = model._xyz.detach().clone()
    model.strategy.densify_and_prune(model, EXTENT, max_screen_size=SCREEN_SIZE_PRUNE_PIXELS)
    assert model.num_points == 5
    torch.testing.assert_close(model._xyz[:3].detach(), xyz[[0, 2, 0]], rtol=0, atol=0)
    assert model.strategy.stats.max_radii2D.abs().max() == 0  # statistics restart after the prune
    # Before the first opacity reset the policy passes no screen size: nothing is pruned for it.
    policy = model.strategy
    assert policy.max_screen_size(3000) is None and policy.max_screen_size(3100) == 20


def test_densification_schedule():
    policy = DefaultStrategy.from_params(OptimizationParams())
    densify = [i for i in range(1, 30001) if policy.densifies_at(i)]
    assert densify[0] == 600 and densify[-1] == 14900 and len(densify) == 144
    resets = [i for i in range(1, 30001) if policy.resets_opacity_at(i)]
    assert resets == [3000, 6000, 9000, 12000]
    white = DefaultStrategy.from_params(OptimizationParams(), white_background=True)
    assert [i for i in range(1, 30001) if white.resets_opacity_at(i)][0] == 500


def test_ply_round_trip_is_exact_and_standard(tmp_path):
    model, _ = make_model(n=7, sh_degree=3)
    g = torch.Generator().manual_seed(3)
    for attr in PARAMETER_ATTRIBUTES.values():
        getattr(model, attr).data.copy_(torch.randn(getattr(model, attr).shape, generator=g))
    path = tmp_path / "point_cloud.ply"
    model.save_ply(path)
    ply = PlyData.read(path)
    names = [p.name for p in ply["vertex"].properties]
    assert names == (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                     + [f"f_rest_{i}" for i in range(45)] + ["opacity"]
                     + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])
    assert all(p.val_dtype in ("f4", "float32") for p in ply["vertex"].properties)
    assert ply.text is False and ply.byte_order == "<"
    # Channel-major f_rest: f_rest_{c*15 + k} is coefficient k+1 of channel c.
    vertex = ply["vertex"]
    assert vertex["f_rest_16"][2] == model._features_rest[2, 1, 1].item()
    assert vertex["f_rest_30"][4] == model._features_rest[4, 0, 2].item()
    loaded = GaussianModel(3)
    loaded.load_ply(path)
    for attr in PARAMETER_ATTRIBUTES.values():
        torch.testing.assert_close(getattr(loaded, attr), getattr(model, attr), rtol=0, atol=0)
    assert loaded.active_sh_degree == 3


def test_loading_a_ply_of_another_sh_degree_is_a_clear_error(tmp_path):
    model, _ = make_model(n=3, sh_degree=1)
    model.save_ply(tmp_path / "p.ply")
    with pytest.raises(DatasetError, match="f_rest"):
        GaussianModel(3).load_ply(tmp_path / "p.ply")


def test_sparse_adam_equals_adam_when_all_visible_and_skips_invisible_rows():
    dense, opt = make_model(n=9, seed=4)
    sparse, _ = make_model(n=9, seed=4, optimizer_type="sparse_adam")
    all_visible = torch.ones(9, dtype=torch.bool)
    for seed in range(3):
        take_grads = torch.Generator().manual_seed(seed)
        for model in (dense, sparse):
            take_grads.manual_seed(seed)
            for attr in PARAMETER_ATTRIBUTES.values():
                p = getattr(model, attr)
                p.grad = torch.randn(p.shape, generator=take_grads)
            model.optimizer_step(all_visible)
    for attr in PARAMETER_ATTRIBUTES.values():
        torch.testing.assert_close(getattr(sparse, attr), getattr(dense, attr), rtol=1e-6,
                                   atol=1e-7)
    before = optimizer_snapshot(sparse)
    visible = torch.zeros(9, dtype=torch.bool)
    visible[[1, 5]] = True
    for attr in PARAMETER_ATTRIBUTES.values():
        getattr(sparse, attr).grad = torch.ones_like(getattr(sparse, attr))
    sparse.optimizer_step(visible)
    after = optimizer_snapshot(sparse)
    for name in before:
        for k in range(3):
            torch.testing.assert_close(after[name][k][~visible], before[name][k][~visible],
                                       rtol=0, atol=0)
            assert not torch.equal(after[name][k][visible], before[name][k][visible])


def test_normalize_rows_matches_torch_normalize():
    """get_rotation's normalisation: values and gradients as torch.nn.functional.normalize,
    and float64 finite differences."""
    from utils.general_utils import normalize_rows
    g = torch.Generator().manual_seed(3)
    q = (torch.randn(500, 4, generator=g) * torch.rand(500, 1, generator=g) * 5).requires_grad_()
    upstream = torch.randn(500, 4, generator=g)
    ours = normalize_rows(q)
    (ours * upstream).sum().backward()
    ours_grad, q.grad = q.grad.clone(), None
    ref = torch.nn.functional.normalize(q)
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours_grad, q.grad, rtol=1e-5, atol=1e-6)
    q64 = torch.randn(6, 4, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(normalize_rows, (q64,))
    rows3 = torch.randn(9, 3, generator=g).requires_grad_()  # any row length, not only 4
    (normalize_rows(rows3) * upstream[:9, :3]).sum().backward()
    expected = torch.func.vjp(torch.nn.functional.normalize, rows3.detach())[1](upstream[:9, :3])[0]
    torch.testing.assert_close(rows3.grad, expected, rtol=1e-5, atol=1e-6)


def test_reference_kernels_select_the_per_tensor_adam():
    fused_model, _ = make_model()
    reference_model, _ = make_model(reference_kernels=True)
    assert fused_model.optimizer.defaults["fused"] is True
    assert not reference_model.optimizer.defaults["fused"]


@pytest.mark.parametrize("reference_kernels", [False, True])
def test_adam_state_made_at_setup_is_the_state_torch_makes_at_its_first_step(reference_kernels):
    """training_setup makes every group's Adam state up front (so the moments sit together in
    memory); it is what torch would have made lazily: the same dtypes, devices, values and, after
    a step, the same parameters and moments as an optimizer that made it itself."""
    model, _ = make_model(reference_kernels=reference_kernels)
    params = [group["params"][0] for group in model.optimizer.param_groups]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    lazy = torch.optim.Adam([{"params": [c], "lr": g["lr"]} for c, g in
                             zip(copies, model.optimizer.param_groups)], lr=0.0,
                            betas=model.optimizer.defaults["betas"],
                            eps=model.optimizer.defaults["eps"], fused=not reference_kernels)
    for p in params:
        assert set(model.optimizer.state[p]) == {"step", "exp_avg", "exp_avg_sq"}
    gen = torch.Generator().manual_seed(5)
    for p, c in zip(params, copies):
        p.grad = torch.randn(p.shape, generator=gen)
        c.grad = p.grad.clone()
    model.optimizer.step()
    lazy.step()
    for p, c in zip(params, copies):
        ours, theirs = model.optimizer.state[p], lazy.state[c]
        assert torch.equal(p, c)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert ours[key].dtype == theirs[key].dtype and ours[key].device == theirs[key].device
            assert torch.equal(ours[key], theirs[key]), key

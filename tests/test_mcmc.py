"""3DGS-MCMC (scene/mcmc.py, scene/strategies.py MCMCStrategy): the relocation formulas against
direct evaluations, the Gaussian budget, what happens to Adam's moments, the noise, the
regularisers' gradients, the cameras' path kept clear (scene/camera_path.py), and bit-exact
resume of an MCMC run."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import train
from arguments import MCMCParams, OptimizationParams, StrategyParams
from scene import mcmc
from scene.camera_path import PATH_JUMP_FACTOR, distance_to_path, path_segments
from scene.gaussian_model import GaussianModel
from scene.strategies import DefaultStrategy, MCMCStrategy, RefineContext, make_strategy
from scene.synthetic import mcmc_model_with_moments
from utils.cli import report_errors
from utils.errors import UsageError
from conftest import SAMPLE, optimizer_snapshot



def mcmc_strategy(opt=None, **mcmc_flags) -> MCMCStrategy:
    """--strategy mcmc with these MCMC flags (and optimisation flags `opt`)."""
    return MCMCStrategy.from_params(opt or OptimizationParams(), StrategyParams(strategy="mcmc"),
                                    MCMCParams(**mcmc_flags))


def binomial_sum(opacity: float, new_opacity: float, n: int) -> float:
    """The paper's Eq. 9 scale factor, its double sum evaluated term by term."""
    total = 0.0
    for i in range(1, n + 1):
        for k in range(i):
            total += math.comb(i - 1, k) * (-1) ** k * new_opacity ** (k + 1) / math.sqrt(k + 1)
    return opacity / total


@pytest.mark.parametrize("opacity", [0.02, 0.3, 0.7, 0.95])
def test_copies_composite_back_to_the_source_opacity_and_scale_matches_eq9(opacity):
    copies = torch.arange(1, 51)
    o = torch.full((50,), opacity, dtype=torch.float64)
    new_o = mcmc.relocated_opacity(o, copies)
    # n stacked copies pass as much light as the source did (before clamping)
    torch.testing.assert_close(1 - (1 - new_o) ** copies.double(), o, rtol=1e-12, atol=1e-12)
    factor = mcmc.relocation_scale_factor(o, new_o, copies)
    expected = torch.tensor([binomial_sum(opacity, float(new_o[n - 1]), n) for n in range(1, 51)],
                            dtype=torch.float64)
    torch.testing.assert_close(factor, expected, rtol=1e-9, atol=0)
    assert factor[0] == pytest.approx(1.0)  # one copy: unchanged


def test_copy_counts_and_opacities_are_clamped():
    o = torch.tensor([0.9, 1e-6], dtype=torch.float32)
    new_o, scales = mcmc.split_into_copies(o, torch.ones(2, 3), torch.tensor([500, 1]))
    assert new_o[0] == pytest.approx(1 - 0.1 ** (1 / mcmc.MAX_COPIES), rel=1e-5)
    assert new_o[1] == mcmc.DEAD_OPACITY  # never dead on arrival
    assert torch.isfinite(scales).all()


def model_with_moments(n=40, seed=0, dead=()):
    model, strategy = mcmc_model_with_moments(n, sh_degree=1, cap_max=10_000, seed=seed)
    with torch.no_grad():
        model._opacity[list(dead)] = -9.0  # opacity 1.2e-4: dead
    return model, strategy


def test_relocation_moves_dead_rows_and_edits_moments_as_the_paper():
    dead = [3, 7, 8, 20]
    model, strategy = model_with_moments(dead=dead)
    before = optimizer_snapshot(model)
    torch.manual_seed(1)
    # Draw the same sources the strategy will draw, to know which rows they are.
    alive = torch.tensor([i for i in range(40) if i not in dead])
    rng_state = torch.get_rng_state()
    sources = alive[mcmc.sample_by_opacity(model.get_opacity[alive, 0], len(dead))]
    torch.set_rng_state(rng_state)
    assert strategy.relocate_dead(model) == len(dead)
    after = optimizer_snapshot(model)
    assert model.num_points == 40
    untouched = [i for i in range(40) if i not in dead and i not in sources.tolist()]
    src = sorted(set(sources.tolist()))
    for name, (p, m1, m2, step) in before.items():
        a = after[name]
        assert a[3] == step  # Adam's step count is untouched
        # untouched rows: parameters and moments bit for bit
        for k in (0, 1, 2):
            torch.testing.assert_close(a[k][untouched], (p, m1, m2)[k][untouched], rtol=0, atol=0)
        # rewritten dead rows keep their moments; sampled sources get zero moments
        torch.testing.assert_close(a[1][dead], m1[dead], rtol=0, atol=0)
        torch.testing.assert_close(a[2][dead], m2[dead], rtol=0, atol=0)
        assert a[1][src].abs().max() == 0 and a[2][src].abs().max() == 0
        if name in ("xyz", "f_dc", "f_rest", "rotation"):  # dead rows copy their source
            torch.testing.assert_close(a[0][dead], p[sources], rtol=0, atol=0)
    assert (model.get_opacity[dead] > mcmc.DEAD_OPACITY / 2).all()
    # source and copies share the relocated opacity: together they composite to the source's
    o_src = torch.sigmoid(before["opacity"][0][sources, 0]).double()
    counts = torch.bincount(sources, minlength=40)[sources] + 1
    o_new = model.get_opacity[sources, 0].double()
    torch.testing.assert_close(1 - (1 - o_new) ** counts.double(), o_src, rtol=1e-4, atol=1e-5)


def brute_force_distance(points, segments, samples=20001):
    """Distance to the nearest of many points spaced along each segment."""
    t = torch.linspace(0, 1, samples, dtype=torch.float64)
    along = segments[:, None, 0] + t[None, :, None] * (segments[:, None, 1] - segments[:, None, 0])
    return torch.cdist(points, along.reshape(-1, 3)).min(dim=1).values


def test_distance_to_the_path_matches_a_dense_sampling_of_its_segments():
    g = torch.Generator().manual_seed(0)
    segments = torch.randn(7, 2, 3, generator=g, dtype=torch.float64)
    segments[3, 1] = segments[3, 0]  # a segment of length 0 (two cameras at one place)
    points = 2 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    exact = distance_to_path(points, segments)
    # the sampled distance is at most half a sample spacing (≤ 3e-4 here) above the exact one
    sampled = brute_force_distance(points, segments)
    assert (sampled >= exact - 1e-12).all() and (sampled - exact).max() < 3e-4
    assert torch.isinf(distance_to_path(points, torch.zeros(0, 2, 3, dtype=torch.float64))).all()


def ring(n, radius=4.0):
    angle = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    return torch.stack([radius * angle.cos(), radius * angle.sin(), 0 * angle], dim=1)


def test_the_path_follows_the_capture_order_and_drops_jumps_across_the_scene():
    centres = ring(48)
    kept = path_segments(centres[[i for i in range(48) if i % 8]])  # every 8th held out
    assert kept.shape == (41, 2, 3)  # every neighbour-to-neighbour segment, gaps included
    # names in no capture order: the path must not cut across the scene's middle
    shuffled = centres[torch.randperm(48, generator=torch.Generator().manual_seed(0))]
    kept = path_segments(shuffled)
    spacing = (centres[1] - centres[0]).norm()
    assert len(kept) < 47 and ((kept[:, 1] - kept[:, 0]).norm(dim=1)
                               <= PATH_JUMP_FACTOR * spacing + 1e-9).all()
    assert distance_to_path(torch.zeros(1, 3, dtype=torch.float64), kept).item() > 3.0
    assert path_segments(centres[:1]).shape == (0, 2, 3)


def test_gaussians_in_the_cameras_path_are_relocated_and_never_sources():
    model, strategy = model_with_moments(n=200)
    strategy = dataclasses.replace(strategy, path_clearance=0.2)
    path = torch.tensor([[[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]])
    inside = strategy.in_camera_path(model, 1.0, path)
    assert 0 < inside.sum() < 150
    torch.testing.assert_close(inside, distance_to_path(model.get_xyz.detach(), path) < 0.2)
    alive = (~inside).nonzero()[:, 0]
    rng_state = torch.get_rng_state()
    sources = alive[mcmc.sample_by_opacity(model.get_opacity[alive, 0], int(inside.sum()))]
    torch.set_rng_state(rng_state)
    xyz = model.get_xyz.detach().clone()
    strategy.refine(strategy.refine_from_iter + strategy.refinement_interval, model,
                    RefineContext(1.0, path))
    # every Gaussian the tube held now sits on a source outside it
    torch.testing.assert_close(model.get_xyz.detach()[:200][inside], xyz[sources], rtol=0, atol=0)
    assert not strategy.in_camera_path(model, 1.0, path).any()
    off = dataclasses.replace(strategy, path_clearance=0.0)
    assert off.in_camera_path(model, 1.0, path) is None  # off: the paper's relocation


def test_growth_appends_zero_moment_rows_and_never_exceeds_the_cap():
    model, strategy = model_with_moments(n=40)
    before = optimizer_snapshot(model)
    added = strategy.add_new(model)
    assert added == 2 and model.num_points == 42  # int(1.05 * 40) - 40
    after = optimizer_snapshot(model)
    for name, (p, m1, m2, step) in before.items():
        assert after[name][1][40:].abs().max() == 0 and after[name][2][40:].abs().max() == 0
        assert after[name][3] == step
    capped = mcmc_strategy(cap_max=45)
    counts = []
    for _ in range(6):
        capped.add_new(model)
        counts.append(model.num_points)
    assert counts == [44, 45, 45, 45, 45, 45]
    for group in model.optimizer.param_groups:  # every tensor and moment grew together
        p = group["params"][0]
        assert p.shape[0] == 45 and model.optimizer.state[p]["exp_avg"].shape[0] == 45
    assert capped.per_row_state() == {}  # MCMC carries no per-Gaussian statistics


def test_growth_meets_the_cap_by_iter_deadline_and_is_5_percent_otherwise():
    assert mcmc.growth_count(1000, 10_000) == 50  # the paper's 5 %
    assert mcmc.growth_count(1000, 10_000, refinements_left=100) == 50  # 5 % is enough
    assert mcmc.growth_count(1000, 10_000, refinements_left=1) == 9000  # last chance: the cap
    assert mcmc.growth_count(1000, 1010, refinements_left=3) == 10  # never past the cap
    strategy = mcmc_strategy(OptimizationParams(densification_interval=50), cap_max=100_000,
                             cap_by_iter=2000)
    count, reached = 1869, None
    for it in range(1, 3001):
        if strategy.refines_at(it):
            count += mcmc.growth_count(count, strategy.cap_max, strategy.refinements_left(it))
            reached = reached or (it if count == strategy.cap_max else None)
        if it == 1000:
            at_1000 = count
    # a constant rate (about 14 % per refinement from 1,869) that lands on the cap exactly at the
    # deadline; without a deadline 5 % reaches only 1869 · 1.05^50 ≈ 21k by iteration 3000
    assert reached == 2000 and 1869 * 1.14 ** 10 < at_1000 < 1869 * 1.15 ** 10
    assert strategy.refinements_left(550) == 30 and strategy.refinements_left(2050) == 0
    assert mcmc_strategy(cap_max=100_000, cap_by_iter=0).refinements_left(550) == 0


def test_covariance_times_equals_the_covariance_matrix_product():
    g = torch.Generator().manual_seed(0)
    quats = torch.nn.functional.normalize(torch.randn(100, 4, generator=g, dtype=torch.float64))
    scales = torch.rand(100, 3, generator=g, dtype=torch.float64) + 0.1
    vectors = torch.randn(100, 3, generator=g, dtype=torch.float64)
    model = GaussianModel(0)
    model._scaling, model._rotation = torch.log(scales), quats
    expected = torch.bmm(model.get_full_covariance(), vectors[:, :, None])[:, :, 0]
    torch.testing.assert_close(mcmc.covariance_times(quats, scales, vectors), expected,
                               rtol=1e-12, atol=1e-12)


def test_noise_moves_only_near_dead_gaussians():
    n = 2000
    g = torch.Generator().manual_seed(1)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g))
    scales = torch.full((n, 3), 0.1)  # Σ = 0.01 I whatever the rotation
    opacity = torch.cat([torch.full((n // 2, 1), 0.5), torch.full((n // 2, 1), 0.001)])
    torch.manual_seed(0)
    noise = mcmc.position_noise(quats, scales, opacity, scale=1.0)
    alive, dying = noise[: n // 2].norm(dim=1), noise[n // 2:].norm(dim=1)
    assert alive.max() < 1e-20  # gate sigmoid(100·(0.5 − 0.995)) ≈ 3e-22
    # gate(0.001) = sigmoid(0.4) ≈ 0.60: RMS |Σ ε| = 0.01 · 0.60 · sqrt(3)
    expected = 0.01 * float(torch.sigmoid(torch.tensor(0.4))) * math.sqrt(3)
    assert dying.pow(2).mean().sqrt() == pytest.approx(expected, rel=0.05)


@pytest.mark.skipif(not mcmc.fused_noise_available(torch.zeros(1, 3)),
                    reason="the rasterizer extension has no mcmc_position_noise_ (rebuild it)")
def test_fused_noise_matches_the_torch_formula():
    """The one-pass CPU noise applies position_noise's formula over the activated parameters to
    the ε it draws (mcmc_noise_draws with the same key): equal to float rounding, the same bits
    for any thread count (n is no multiple of the vector width: the last Gaussians take the
    one-at-a-time path), and the key comes from torch's RNG, so reseeding repeats the step."""
    from diff_gaussian_rasterization._C import mcmc_noise_draws
    n = 20003
    g = torch.Generator().manual_seed(3)
    xyz = torch.randn(n, 3, generator=g) * 2
    log_scales = torch.randn(n, 3, generator=g) - 3
    quats = torch.randn(n, 4, generator=g) * 3  # not normalised, as the model's
    # opacities across the gate: dead, around the threshold, alive
    logits = torch.linspace(-9.0, 4.0, n)[:, None]
    torch.manual_seed(5)
    eps = mcmc_noise_draws(n, mcmc.noise_key())
    gate = mcmc.noise_gate(torch.sigmoid(logits).reshape(-1))
    expected = xyz + mcmc.covariance_times(torch.nn.functional.normalize(quats),
                                           log_scales.exp(), eps * (gate * 0.3)[:, None])
    outputs, threads_before = [], torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        moved = xyz.clone()
        torch.manual_seed(5)
        mcmc.add_position_noise_fused(moved, log_scales, quats, logits, scale=0.3)
        outputs.append(moved)
    torch.set_num_threads(threads_before)
    assert torch.equal(outputs[0], outputs[1])
    torch.testing.assert_close(outputs[0], expected, rtol=1e-5, atol=1e-6)
    displacement = (outputs[0] - xyz).norm(dim=1)
    assert displacement[: n // 10].min() > 0 and displacement[-n // 10:].max() == 0


@pytest.mark.skipif(not mcmc.fused_noise_available(torch.zeros(1, 3)),
                    reason="the rasterizer extension has no mcmc_position_noise_ (rebuild it)")
def test_fused_noise_draws_are_standard_normal():
    """The counter-based draws: N(0, 1) by their moments and quantiles, uncorrelated between
    components and neighbours, another stream for another key, the same for the same key."""
    from diff_gaussian_rasterization._C import mcmc_noise_draws
    n = 400_003
    eps = mcmc_noise_draws(n, [12345, 678]).double()
    flat = eps.reshape(-1)
    assert abs(flat.mean().item()) < 4 / math.sqrt(flat.numel())
    assert flat.var().item() == pytest.approx(1.0, abs=0.01)
    assert (flat ** 3).mean().item() == pytest.approx(0.0, abs=0.02)
    assert (flat ** 4).mean().item() == pytest.approx(3.0, abs=0.05)
    normal = torch.distributions.Normal(0.0, 1.0)
    for q in (0.001, 0.025, 0.5, 0.975, 0.999):
        assert torch.quantile(flat[:1_000_000].float(), q).item() == pytest.approx(
            normal.icdf(torch.tensor(q)).item(), abs=0.02)
    corr = torch.corrcoef(torch.stack([eps[:, 0], eps[:, 1], eps[:, 2],
                                       torch.roll(eps[:, 0], 1)]))
    assert (corr - torch.eye(4, dtype=corr.dtype)).abs().max().item() < 0.01
    other = mcmc_noise_draws(n, [12346, 678]).double()
    assert torch.corrcoef(torch.stack([flat, other.reshape(-1)]))[0, 1].abs().item() < 0.01
    assert torch.equal(mcmc_noise_draws(n, [12345, 678]), eps.float())
    with pytest.raises(ValueError, match="key"):
        mcmc_noise_draws(3, [2**32, 0])


def test_regularisers_match_finite_differences():
    model, strategy = model_with_moments(n=6)
    for attr in ("_opacity", "_scaling"):
        param = getattr(model, attr)
        param.grad = None
        strategy.regularization(model).backward()
        analytic = param.grad.clone()
        numeric = torch.zeros_like(param)
        eps = 1e-3
        with torch.no_grad():
            for idx in np.ndindex(*param.shape):
                param[idx] += eps
                plus = strategy.regularization(model).double()
                param[idx] -= 2 * eps
                minus = strategy.regularization(model).double()
                param[idx] += eps
                numeric[idx] = (plus - minus) / (2 * eps)
        torch.testing.assert_close(analytic, numeric, rtol=2e-2, atol=1e-6)
        assert analytic.abs().max() > 0


def test_strategy_flags():
    assert isinstance(make_strategy(OptimizationParams()), DefaultStrategy)
    mcmc_chosen = make_strategy(OptimizationParams(), StrategyParams(strategy="mcmc"),
                                MCMCParams(cap_max=1000))
    assert isinstance(mcmc_chosen, MCMCStrategy) and mcmc_chosen.cap_max == 1000
    assert mcmc_chosen.initialisation().opacity == 0.5
    with pytest.raises(UsageError, match="cap_max"):
        make_strategy(OptimizationParams(), StrategyParams(strategy="mcmc"))
    with pytest.raises(UsageError, match="strategy"):
        StrategyParams(strategy="gsplat")
    # MCMC's own defaults for the shared schedule flags: every 25 iterations until 25,000, the
    # budget reached by 2,000; flags given explicitly win; the default strategy keeps the
    # original's.
    refine = [i for i in range(1, 30001) if mcmc_chosen.refines_at(i)]
    assert refine[0] == 525 and refine[-1] == 24975 and len(refine) == 979
    assert mcmc_chosen.cap_by_iter == 2000 and mcmc_chosen.path_clearance == 0.1
    with pytest.raises(UsageError, match="path_clearance"):
        MCMCParams(cap_max=1000, path_clearance=-1)
    explicit = mcmc_strategy(OptimizationParams(densification_interval=100), cap_max=1000)
    assert [i for i in range(1, 1001) if explicit.refines_at(i)] == [600, 700, 800, 900, 1000]
    default = make_strategy(OptimizationParams())
    assert (default.densification_interval, default.densify_until_iter) == (100, 15_000)


def run(model_path, *extra):
    argv = ["-s", str(SAMPLE), "-m", str(model_path), "--quiet", "-r", "4", "--test_iterations",
            "-1", "--strategy", "mcmc", "--cap_max", "6000", "--densify_from_iter", "10",
            "--densification_interval", "10", "--disable_viewer", *extra]
    assert train.main(argv) == 0


def test_mcmc_resume_is_bit_exact_and_respects_the_cap(tmp_path):
    full, part, off = tmp_path / "full", tmp_path / "part", tmp_path / "off"
    # A wide clearance, so that the resumed run also relocates Gaussians out of the path.
    run(full, "--iterations", "60", "--checkpoint_iterations", "25", "--path_clearance", "0.3")
    run(part, "--iterations", "60", "--start_checkpoint", str(full / "chkpnt25.pth"),
        "--path_clearance", "0.3")
    run(off, "--iterations", "60", "--path_clearance", "0")
    a = (full / "point_cloud" / "iteration_60" / "point_cloud.ply").read_bytes()
    b = (part / "point_cloud" / "iteration_60" / "point_cloud.ply").read_bytes()
    c = (off / "point_cloud" / "iteration_60" / "point_cloud.ply").read_bytes()
    assert len(a) > 1000 and a == b and a != c
    counts = json.loads((full / "training_log.json").read_text())["num_points"]
    assert counts[1] > 5339 and max(counts) == 6000  # grew 5 % per refinement, up to the cap


def test_resuming_with_another_strategy_is_refused(tmp_path):
    run(tmp_path / "m", "--iterations", "5", "--checkpoint_iterations", "5")
    argv = ["-s", str(SAMPLE), "-m", str(tmp_path / "d"), "--quiet", "-r", "4",
            "--iterations", "10", "--test_iterations", "-1",
            "--start_checkpoint", str(tmp_path / "m" / "chkpnt5.pth")]
    assert report_errors(train.main, argv) == 2


@pytest.mark.parametrize("optimizer", ["default", "sparse_adam"])
def test_f_rest_adam_in_the_backward_pass_trains_the_same_model(tmp_path, monkeypatch, optimizer):
    """Training lets the rasterizer's backward pass apply f_rest's Adam step where it can, and
    makes no f_rest gradient where no optimizer step reads one (row edits, the last iteration):
    the PLYs are those of a run that stores every gradient, bit for bit (a save mid-run, which
    reads the model between the backward pass and the step, included). MCMC's forecast of its
    row edits, which decides this before the forward pass, is what refine then does."""
    from gaussian_renderer import ShRestUse
    from training.trainer import Trainer
    uses, forecasts = {}, []
    use_of = Trainer.sh_rest_use
    refine = MCMCStrategy.refine

    def counted(self, views, hooks=None):
        use = use_of(self, views, hooks)
        kind = "adam" if use.adam is not None else "gradient" if use.gradient else "none"
        uses[kind] = uses.get(kind, 0) + 1
        return use

    def checked_refine(self, iteration, gaussians, context):
        forecast = self.will_edit_rows(iteration, gaussians, context)
        edits = []
        edit_rows = gaussians.edit_rows
        gaussians.edit_rows = lambda edit: (edits.append(edit), edit_rows(edit))[1]
        try:
            refine(self, iteration, gaussians, context)
        finally:
            del gaussians.edit_rows
        forecasts.append((forecast, bool(edits)))

    monkeypatch.setattr(Trainer, "sh_rest_use", counted)
    monkeypatch.setattr(MCMCStrategy, "refine", checked_refine)
    flags = ["--iterations", "70", "--save_iterations", "35", "70", "--path_clearance", "0.3",
             "--optimizer_type", optimizer]
    run(tmp_path / "fused", *flags)
    monkeypatch.setattr(Trainer, "sh_rest_use", lambda self, views, hooks=None: ShRestUse())
    run(tmp_path / "stored", *flags)
    for iteration in (35, 70):
        a, b = ((tmp_path / name / "point_cloud" / f"iteration_{iteration}" / "point_cloud.ply")
                .read_bytes() for name in ("fused", "stored"))
        assert len(a) > 1000 and a == b, iteration
    assert uses["adam"] > 40 and uses["none"] >= 3 and uses["gradient"] == 1, uses
    refining = [pair for pair in forecasts[:len(forecasts) // 2]]  # the first run's
    assert all(forecast == edited for forecast, edited in refining), refining
    assert {True, False} <= {forecast for forecast, _ in refining}, refining

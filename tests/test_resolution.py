"""Coarse-to-fine training (scene/resolution.py): the schedules, a view at a coarser factor
against a shrunk full-resolution render, the Gaussian budget following the pixel count, an
exact resume mid-schedule, and evaluation at full resolution."""
import math

import numpy as np
import pytest
import torch

import train
import training.hooks
import training.trainer
from arguments import OptimizationParams
from conftest import SAMPLE
from scene.cameras import Camera, area_resize
from scene.resolution import (ResolutionSchedule, frequency_schedule, make_schedule,
                              step_schedule)
from scene.strategies import RefineContext
from scene.synthetic import mcmc_model_with_moments
from utils.errors import UsageError


def test_splatfacto_steps_halve_the_factor_every_steps_iterations():
    schedule = step_schedule(2, 3000)
    assert [schedule.factor_at(t) for t in (0, 2999, 3000, 5999, 6000, 29000)] == \
        [4, 4, 2, 2, 1, 1]
    assert schedule.pixel_fraction(0) == 1 / 16 and schedule.budget_fraction(7000) == 1.0
    assert not make_schedule(OptimizationParams(iterations=7000)).active
    assert make_schedule(OptimizationParams(resolution_schedule="3000")) == schedule
    with pytest.raises(UsageError, match="resolution_schedule"):
        OptimizationParams(resolution_schedule="soon")


def test_budget_fraction_follows_the_pixel_count_and_eases_over_the_ramp():
    schedule = ResolutionSchedule(((0, 4), (1000, 2), (2000, 1)), ramp_until=2000)
    assert schedule.budget_fraction(0) == pytest.approx(1 / 16)  # exponent 1 at the start
    assert schedule.budget_fraction(1000) == pytest.approx((1 / 4) ** 0.5)
    assert schedule.budget_fraction(2000) == 1.0
    # no jump at full resolution: the last coarse step allows all but a sliver of the budget
    assert schedule.budget_fraction(1999) == pytest.approx(1.0, abs=2e-3)
    fractions = [schedule.budget_fraction(t) for t in range(0, 2001, 50)]
    assert fractions == sorted(fractions)


def smooth_photo(height=96, width=128, seed=0):
    """Low frequencies only: a few broad sinusoids."""
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width),
                          indexing="ij")
    g = torch.Generator().manual_seed(seed)
    phases = torch.rand(3, 2, generator=g) * 6.28
    return torch.stack([0.5 + 0.25 * torch.sin(2 * math.pi * x + p[0]) * torch.cos(
        2 * math.pi * y + p[1]) for p in phases])


def test_auto_starts_coarse_on_smooth_photos_and_fine_on_noise():
    smooth = frequency_schedule([smooth_photo(seed=s) for s in range(3)], 7000, ramp=0.5)
    assert smooth.levels[0] == (0, 8) and smooth.levels[-1] == (3500, 1)
    longer = frequency_schedule([smooth_photo(seed=s) for s in range(3)], 7000, ramp=0.75)
    assert longer.levels[-1] == (5250, 1) and longer.levels[0] == (0, 8)
    starts = [start for start, _ in smooth.levels]
    factors = [factor for _, factor in smooth.levels]
    assert starts == sorted(starts) and factors == sorted(factors, reverse=True)
    # white noise spreads its magnitude evenly: a window of 1/2 of each side holds about a
    # quarter of it (the start's share), 1/3 much less
    noise = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(0))
    assert frequency_schedule([noise], 7000, ramp=0.625).levels[0][1] <= 2
    assert frequency_schedule([noise, smooth_photo()], 7000, ramp=0.625).levels[0][1] <= 2  # every photo


def test_area_resize_averages_exactly_what_each_new_pixel_covers():
    """At any ratio: each input pixel repeated h (w) times makes the new pixels' footprints
    whole blocks, whose plain means are the exact area averages."""
    image = torch.rand(3, 23, 31, generator=torch.Generator().manual_seed(2))
    for size in ((16, 22), (12, 16), (23, 31), (7, 9)):
        fine = image.repeat_interleave(size[0], dim=1).repeat_interleave(size[1], dim=2)
        exact = fine.reshape(3, size[0], 23, size[1], 31).mean(dim=(2, 4))
        torch.testing.assert_close(area_resize(image, size), exact, rtol=0, atol=2e-6)
    # at whole ratios it is torch's "area" mode (the mean of each block)
    even = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(area_resize(even, (8, 8)), torch.nn.functional.interpolate(
        even[None], size=(8, 8), mode="area")[0], rtol=0, atol=2e-6)


def test_auto_steps_up_to_full_resolution_through_half_the_pixels():
    """The last levels of auto: 1/2, then 1/√2 (half the pixels), then full resolution; a view
    at 1/√2 is round(W/√2) × round(H/√2)."""
    schedule = frequency_schedule([smooth_photo(seed=s) for s in range(3)], 7000, ramp=0.5)
    assert [factor for _, factor in schedule.levels[-3:]] == [2, math.sqrt(2), 1]
    start, factor = schedule.levels[-2]
    assert schedule.levels[-3][0] < start < 3500
    assert schedule.pixel_fraction(start) == pytest.approx(0.5)
    camera = Camera(0, np.eye(3), np.array([0.0, 0.0, 5.0]), 1.0, 0.8,
                    torch.zeros(3, 240, 320), "x", 0)
    view = camera.at_scale(factor)
    assert (view.image_width, view.image_height) == (226, 170)
    assert view.original_image.shape == (3, 170, 226)


def test_a_coarse_view_renders_what_a_shrunk_full_render_shows():
    """The coarse camera keeps the field of view and principal point; its render matches the
    full-resolution render shrunk by the same area filter, up to what the filter and the
    rasterizer's sub-pixel footprints change."""
    from arguments import PipelineParams
    from gaussian_renderer import render
    from model_factory import random_model

    model = random_model(3000, seed=1, scale_factor=4)
    eye = np.eye(3)
    camera = Camera(0, eye, np.array([0.0, 0.0, 5.0]), 2 * math.atan(0.6), 2 * math.atan(0.45),
                    torch.zeros(3, 240, 320), "x", 0, principal_ndc=(0.1, -0.05))
    coarse = camera.at_scale(2)
    assert (coarse.image_width, coarse.image_height) == (160, 120)
    assert coarse.original_image.shape == (3, 120, 160) and camera.at_scale(2) is coarse
    assert camera.original_image.shape == (3, 240, 320)  # the full view is untouched
    with torch.no_grad():
        full = render(camera, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
        small = render(coarse, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
    shrunk = area_resize(full, (120, 160))
    error = (small - shrunk).abs()
    psnr = -10 * math.log10(error.square().mean().item())
    assert psnr > 30 and error.mean() < 0.01, psnr
    # a shifted principal point would move the image: the same comparison with it dropped fails
    moved = Camera(0, eye, np.array([0.0, 0.0, 5.0]), 2 * math.atan(0.6), 2 * math.atan(0.45),
                   torch.zeros(3, 120, 160), "x", 0)
    with torch.no_grad():
        wrong = render(moved, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
    assert (wrong - shrunk).square().mean() > 4 * (small - shrunk).square().mean()


def test_a_coarse_view_low_passes_in_full_resolution_pixels():
    """Gaussians about a pixel wide: at 1/s a view adds 0.3 / s² of its own pixels² to each
    footprint (the full render's filter), and its render matches the shrunk full render far
    better than with the original's 0.3 of the coarse pixels, which draws them s² times larger
    in area and so too bright."""
    from arguments import PipelineParams
    from gaussian_renderer import render
    from model_factory import random_model

    model = random_model(3000, seed=1)
    camera = Camera(0, np.eye(3), np.array([0.0, 0.0, 5.0]), 2 * math.atan(0.6),
                    2 * math.atan(0.45), torch.zeros(3, 240, 320), "x", 0)
    with torch.no_grad():
        full = render(camera, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
        for factor in (2, 4):
            coarse = camera.at_scale(factor)
            assert coarse.resolution_factor == factor and camera.resolution_factor == 1
            shrunk = area_resize(full, (240 // factor, 320 // factor))
            small = render(coarse, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
            coarse.resolution_factor = 1  # as if it were a camera of its own: 0.3 px²
            wide = render(coarse, model, PipelineParams(), torch.zeros(3)).render.clamp(0, 1)
            error, wide_error = ((x - shrunk).square().mean().item() for x in (small, wide))
            assert error < wide_error / 8, (factor, error, wide_error)  # measured: 1/10 or less


def test_mcmc_grows_only_to_the_share_of_the_budget_the_resolution_allows():
    model, strategy = mcmc_model_with_moments(n=100, sh_degree=1, cap_max=1000)
    iteration = strategy.cap_by_iter  # the deadline: growth goes straight to the cap ...
    strategy.refine(iteration, model, RefineContext(1.0, budget_fraction=0.25))
    assert model.num_points == 250  # ... a quarter of it
    strategy.refine(iteration + strategy.refinement_interval, model,
                    RefineContext(1.0, budget_fraction=0.2))
    assert model.num_points == 250  # never pruned to meet a lower share


def run(model_path, *extra):
    argv = ["-s", str(SAMPLE), "-m", str(model_path), "--quiet", "-r", "4", "--disable_viewer",
            "--test_iterations", "-1", "--strategy", "mcmc", "--cap_max", "8000",
            "--densify_from_iter", "10", "--densification_interval", "10",
            "--resolution_schedule", "20", "--num_downscales", "2", *extra]
    assert train.main(argv) == 0


def test_a_checkpoint_mid_schedule_resumes_bit_exactly(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    run(full, "--iterations", "60", "--checkpoint_iterations", "30")  # at 1/2 of each side
    run(part, "--iterations", "60", "--start_checkpoint", str(full / "chkpnt30.pth"))
    a = (full / "point_cloud" / "iteration_60" / "point_cloud.ply").read_bytes()
    assert a == (part / "point_cloud" / "iteration_60" / "point_cloud.ply").read_bytes()


def test_training_renders_coarse_and_evaluation_renders_full(tmp_path, monkeypatch):
    sizes = {"training": set(), "evaluation": set()}

    def spy(kind, original):
        def wrapped(camera, *args, **kwargs):
            sizes[kind].add((camera.image_width, camera.image_height))
            return original(camera, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(training.trainer, "render_with",
                        spy("training", training.trainer.render_with))
    monkeypatch.setattr(training.hooks, "render", spy("evaluation", training.hooks.render))
    run(tmp_path, "--iterations", "50", "--eval", "--test_iterations", "5", "25", "50")
    assert sizes["training"] == {(20, 15), (40, 30), (80, 60)}  # -r 4: 80 × 60 in full
    assert sizes["evaluation"] == {(80, 60)}

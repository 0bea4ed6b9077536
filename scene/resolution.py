"""Coarse-to-fine training: which downscale factor each iteration renders at.

A schedule is a list of levels (first iteration, downscale factor s), s falling to 1.
A view at factor s is the same camera (same field of view and principal point, so the
intrinsics scale exactly) with the photo shrunk by an area filter to round(W/s) × round(H/s)
(Camera.at_scale). Evaluation, render.py and metrics always use the full-resolution cameras.

- `off`: factor 1 throughout (the original's training, bit for bit).
- `--num_downscales N --resolution_schedule STEPS` (nerfstudio splatfacto's pair): 2^N at the
  start, halved every STEPS iterations.
- `auto` (after DashGaussian, Chen et al., CVPR 2025): the photos' spectra decide. Training is
  read as fitting ever higher frequencies: the coarsest factor keeps a centred window of the
  2D spectrum (1/s of each side) that holds a quarter of every photo's spectral magnitude (at
  most 8); the levels are 8, 7, ..., 2, then √2 (half the pixels, so that the last step up
  doubles a step's pixel work rather than quadrupling it) and 1; a finer factor s starts when
  log(E(s)/E(coarsest)) / log(E(1)/E(coarsest)) of the ramp has passed, E(s) being the scene's
  mean spectral magnitude inside the window of factor s, and full resolution is reached at
  --resolution_ramp of the run (0.7; DashGaussian's ramp ends at its densification's end, half
  of its 30k iterations, which in a 7,000-iteration run left too long a full-resolution tail
  to halve the time).

Densification statistics stay comparable across factors: the view-space gradients are in
normalised device coordinates (the rasterizer scales the pixel gradient by W/2), which to first
order does not depend on the image size. The Gaussian budget follows the rendered pixel count
(`budget_fraction`: (pixels / full pixels)^(1 - t / T) over the ramp's T iterations; after
DashGaussian's primitive schedule, whose exponent ends at 1/2, but whole when full resolution
starts).
"""
import math
from dataclasses import dataclass
from typing import Iterable, List, Tuple

import torch

from utils.errors import UsageError

MAX_FACTOR = 8  # auto: never coarser than 1/8 of each side
START_SHARE = 0.25  # auto: the coarsest level keeps this share of each photo's spectrum
# auto: the factors a level may have, coarsest first. Whole factors down to 2, then √2 (half
# the pixels): the step from 1/2 to full resolution would otherwise quadruple a step's pixel
# work at once, and a model trained at 1/2 renders full resolution far below what it reaches.
AUTO_FACTORS = tuple(float(f) for f in range(MAX_FACTOR, 1, -1)) + (math.sqrt(2.0), 1.0)


@dataclass(frozen=True)
class ResolutionSchedule:
    levels: Tuple[Tuple[int, float], ...] = ((0, 1.0),)  # (first iteration, factor), ascending
    ramp_until: int = 0  # iteration from which the factor is 1

    @property
    def active(self) -> bool:
        return any(factor != 1 for _, factor in self.levels)

    def factor_at(self, iteration: int) -> float:
        factor = self.levels[0][1]
        for start, level_factor in self.levels:
            if iteration >= start:
                factor = level_factor
        return factor

    def pixel_fraction(self, iteration: int) -> float:
        """Rendered pixels / full-resolution pixels at this iteration (about 1/s²)."""
        return 1.0 / self.factor_at(iteration) ** 2

    def budget_fraction(self, iteration: int) -> float:
        """The share of the Gaussian budget allowed at this iteration: the pixel fraction,
        its exponent easing from 1 to 0 over the ramp, so that the budget is whole when full
        resolution starts. (DashGaussian's exponent ends at 1/2, and the budget then doubles
        or so at the last step up: the Gaussians that adds, all in a few hundred iterations,
        set the full-resolution model back by about a decibel before it gains again.)"""
        fraction = self.pixel_fraction(iteration)
        if fraction >= 1.0 or self.ramp_until <= 0:
            return 1.0
        return fraction ** (1.0 - min(iteration / self.ramp_until, 1.0))

    def describe(self) -> str:
        return ", ".join(f"{scale_name(factor)} from {start}" for start, factor in self.levels)


def scale_name(factor: float) -> str:
    """How a level's size is shown: 1/4, 1/1.41, 1/1."""
    return f"1/{factor:.3g}"


def step_schedule(num_downscales: int, steps: int) -> ResolutionSchedule:
    """splatfacto's: factor 2^N at the start, halved every `steps` iterations."""
    if num_downscales < 0 or steps <= 0:
        raise UsageError(f"--num_downscales must be >= 0 and --resolution_schedule > 0 "
                         f"(not {num_downscales}, {steps})")
    levels = tuple((k * steps, 2 ** (num_downscales - k)) for k in range(num_downscales + 1))
    return ResolutionSchedule(levels, ramp_until=num_downscales * steps)


def centred_spectrum(image: torch.Tensor) -> torch.Tensor:
    """[H, W] magnitude of the 2D Fourier transform of a [3, H, W] photo (channels summed),
    zero frequency at the centre."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(image.float()), dim=(-2, -1)).abs()
    return spectrum.sum(dim=0)


def window_sum(spectrum: torch.Tensor, factor: float) -> float:
    """The spectral magnitude inside the centred window of 1/factor of each side: what a photo
    shrunk by `factor` can still hold."""
    h, w = spectrum.shape
    ch, cw = h // 2, w // 2
    half_h, half_w = max(1, round(h / factor / 2)), max(1, round(w / factor / 2))
    return spectrum[max(0, ch - half_h):ch + half_h, max(0, cw - half_w):cw + half_w].sum().item()


def frequency_schedule(images: Iterable[torch.Tensor], iterations: int,
                       ramp: float) -> ResolutionSchedule:
    """DashGaussian-style levels from the training photos (see the module docstring)."""
    energy = {factor: 0.0 for factor in AUTO_FACTORS}  # summed over the photos
    start = AUTO_FACTORS[0]
    for image in images:
        spectrum = centred_spectrum(image)
        windows = {factor: window_sum(spectrum, factor) for factor in AUTO_FACTORS}
        # the coarsest factor whose window keeps START_SHARE of this photo's spectrum
        kept = [f for f in AUTO_FACTORS if windows[f] >= START_SHARE * windows[1.0]]
        start = min(start, max(kept, default=1.0))
        for factor in AUTO_FACTORS:
            energy[factor] += windows[factor]
    ramp_until = int(ramp * iterations)
    if start <= 1 or ramp_until <= 0:
        return ResolutionSchedule()
    span = math.log(energy[1.0] / energy[start])
    levels: List[Tuple[int, float]] = [(0, start)]
    for factor in (f for f in AUTO_FACTORS if f < start):
        begin = int(ramp_until * math.log(energy[factor] / energy[start]) / span)
        levels.append((max(begin, levels[-1][0] + 1), factor))
    return ResolutionSchedule(tuple(levels), ramp_until=levels[-1][0])


def make_schedule(opt, images=()) -> ResolutionSchedule:
    """The schedule opt.resolution_schedule names: off, auto (from `images`, the training photos,
    ramping over opt.resolution_ramp of opt.iterations) or a number of iterations per level
    (from 1/2^opt.num_downscales)."""
    value = opt.resolution_schedule
    if value == "off":
        return ResolutionSchedule()
    if value == "auto":
        # One photo at a time: a list of the decoded photos would hold all of them in float32 at
        # once (about 0.9 GB for 96 photos at 1024x768), far more than the uint8 dataset.
        return frequency_schedule(images, opt.iterations, opt.resolution_ramp)
    try:
        steps = int(value)
    except ValueError:
        raise UsageError(f"--resolution_schedule must be off, auto or a number of iterations, "
                         f"not {value!r}") from None
    return step_schedule(opt.num_downscales, steps)

"""The compiled CPU rasterizer against the plain PyTorch reference: values and gradients.

Tolerances: image and inverse depth within 1e-5 absolute; radii equal; every gradient within
rtol 1e-3 plus an absolute floor of 1e-5 x the largest reference gradient of that tensor
(entries near zero are sums of cancelling float32 terms, where a relative test means nothing).
"""
import os

import pytest
import torch

from diff_gaussian_rasterization import GaussianRasterizer, _C
from diff_gaussian_rasterization.reference import rasterize_reference
from diff_gaussian_rasterization.testing import GaussianCloud, look_at_settings, random_cloud

IMAGE_ATOL = 1e-5
GRAD_RTOL = 1e-3
GRAD_ATOL_FRACTION = 1e-5


def native_instruction_set() -> str:
    """The vector code path a -march=native build of this machine selects."""
    with open("/proc/cpuinfo") as f:
        flags = set(next((line for line in f if line.startswith("flags")), "").split())
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "generic"


def test_the_loaded_build_runs_the_expected_code_path():
    """make test-portable runs these tests against the AVX2 and generic builds
    (DGR_EXPECT_ISA); otherwise the installed -march=native build is under test."""
    expected = os.environ.get("DGR_EXPECT_ISA") or native_instruction_set()
    assert _C.cpu_instruction_set == expected, _C.__file__


def render_both(settings, cloud: GaussianCloud, use_sh=True, use_cov=False, sh_coeffs=16,
                seed=0):
    """Renders with the backend and the reference, backpropagates the same random output
    gradients through both, and returns (ours, ref) as (color, radii, invdepth, grads dict)."""
    g = torch.Generator().manual_seed(seed)
    H, W = settings.image_height, settings.image_width
    grad_color = torch.randn(3, H, W, generator=g)
    grad_invdepth = torch.randn(1, H, W, generator=g)

    def run(render):
        P = cloud.means3D.shape[0]
        inputs = {"means3D": cloud.means3D, "means2D": torch.zeros(P, 3),
                  "opacities": cloud.opacities}
        if use_sh:
            inputs["shs"] = cloud.shs[:, :sh_coeffs]
        else:
            inputs["colors_precomp"] = cloud.colors
        if use_cov:
            inputs["cov3D_precomp"] = cloud.cov3D(settings.scale_modifier)
        else:
            inputs["scales"] = cloud.scales
            inputs["rotations"] = cloud.rotations
        leaves = {k: v.detach().clone().contiguous().requires_grad_() for k, v in inputs.items()}
        color, radii, invdepth = render(**leaves)
        if color.requires_grad:
            ((color * grad_color).sum() + (invdepth * grad_invdepth).sum()).backward()
        grads = {k: v.grad for k, v in leaves.items()}
        return color.detach(), radii, invdepth.detach(), grads

    ours = run(lambda **kw: GaussianRasterizer(settings)(**kw))
    ref = run(lambda **kw: rasterize_reference(settings, **kw))
    return ours, ref


def assert_match(ours, ref):
    color, radii, invdepth, grads = ours
    r_color, r_radii, r_invdepth, r_grads = ref
    torch.testing.assert_close(color, r_color, rtol=0, atol=IMAGE_ATOL)
    torch.testing.assert_close(invdepth, r_invdepth, rtol=0, atol=IMAGE_ATOL)
    assert radii.dtype == torch.int32
    assert torch.equal(radii, r_radii)
    for name, r_grad in r_grads.items():
        grad = grads[name]
        if r_grad is None:
            assert grad is None or not grad.any(), name
            continue
        assert grad is not None, name
        atol = GRAD_ATOL_FRACTION * float(r_grad.abs().amax()) if r_grad.numel() else 0.0
        torch.testing.assert_close(grad, r_grad, rtol=GRAD_RTOL, atol=atol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_sh_degrees_with_unused_coefficients(sh_degree):
    settings = look_at_settings(48, 40, sh_degree=sh_degree, bg=(0.1, 0.2, 0.3))
    cloud = random_cloud(120, seed=sh_degree, log_scale_mean=-2.5)
    ours, ref = render_both(settings, cloud, sh_coeffs=16)
    assert_match(ours, ref)
    n = (sh_degree + 1) ** 2
    assert not ours[3]["shs"][:, n:].any(), "coefficients above the active degree get no gradient"
    assert ours[3]["shs"][:, :n].abs().sum() > 0


def test_many_gaussians_multi_tile_coloured_background():
    settings = look_at_settings(100, 70, sh_degree=3, bg=(0.9, 0.4, 0.1))
    cloud = random_cloud(600, seed=11, log_scale_mean=-2.7, log_scale_std=0.8)
    ours, ref = render_both(settings, cloud)
    assert (ours[1] > 0).sum() > 500
    assert_match(ours, ref)


def test_opaque_layers_terminate_early():
    # Nearly opaque, large splats: pixels hit the transmittance cut and stop blending.
    settings = look_at_settings(40, 36, sh_degree=1)
    cloud = random_cloud(80, seed=5, log_scale_mean=-1.6, log_scale_std=0.3, extent=0.8,
                         opacity_logit_mean=4.0, opacity_logit_std=0.5)
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)


def test_precomputed_colors():
    settings = look_at_settings(50, 34)
    cloud = random_cloud(150, seed=2, log_scale_mean=-2.5)
    ours, ref = render_both(settings, cloud, use_sh=False)
    assert_match(ours, ref)
    assert ours[3]["colors_precomp"].abs().sum() > 0


def test_precomputed_covariances():
    settings = look_at_settings(50, 34, sh_degree=2)
    cloud = random_cloud(150, seed=3, log_scale_mean=-2.5)
    ours, ref = render_both(settings, cloud, use_cov=True)
    assert_match(ours, ref)
    assert ours[3]["cov3D_precomp"].abs().sum() > 0


def test_antialiasing():
    settings = look_at_settings(64, 48, sh_degree=1, antialiasing=True)
    cloud = random_cloud(200, seed=4, log_scale_mean=-3.5, log_scale_std=1.0)
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)
    plain, _ = render_both(look_at_settings(64, 48, sh_degree=1), cloud)
    assert not torch.allclose(ours[0], plain[0]), "antialiasing changes the image"


@pytest.mark.parametrize("antialiasing", [False, True])
def test_low_pass_variance_setting(antialiasing):
    """A coarse level's render low-passes with 0.3 / s² of its own pixels: values and
    gradients against the reference at a small variance (tiny splats, the determinant floor
    and the antialiasing factor all depend on it), and the setting changes the image."""
    settings = look_at_settings(64, 48, sh_degree=1, antialiasing=antialiasing)
    settings = settings._replace(low_pass_variance=0.3 / 9)
    cloud = random_cloud(200, seed=24, log_scale_mean=-4.0, log_scale_std=1.0)
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)
    default, _ = render_both(settings._replace(low_pass_variance=0.3), cloud)
    assert not torch.allclose(ours[0], default[0]), "the low-pass variance changes the image"
    assert (ours[1] <= default[1]).all() and (ours[1] < default[1]).any(), "smaller radii"


def test_scale_modifier():
    settings = look_at_settings(48, 32, sh_degree=1, scale_modifier=0.6)
    cloud = random_cloud(120, seed=6, log_scale_mean=-2.3)
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)


def test_odd_image_size_and_1x1_image():
    cloud = random_cloud(100, seed=7, log_scale_mean=-2.0)
    for width, height in [(37, 19), (1, 1), (17, 33)]:
        settings = look_at_settings(width, height, sh_degree=1, bg=(0.3, 0.3, 0.3))
        ours, ref = render_both(settings, cloud)
        assert ours[0].shape == (3, height, width)
        assert_match(ours, ref)


def test_unnormalised_quaternions():
    cloud = random_cloud(100, seed=8, log_scale_mean=-2.5)
    cloud.rotations = cloud.rotations * torch.linspace(0.3, 2.5, 100)[:, None]
    ours, ref = render_both(look_at_settings(40, 40, sh_degree=1), cloud)
    assert_match(ours, ref)


def test_zero_scales():
    cloud = random_cloud(60, seed=9)
    cloud.scales = torch.zeros_like(cloud.scales)
    for aa in (False, True):
        ours, ref = render_both(look_at_settings(40, 30, antialiasing=aa), cloud)
        assert (ours[1] > 0).all(), "the low-pass filter keeps zero-size splats visible"
        assert_match(ours, ref)


def test_one_gaussian_covering_the_image():
    cloud = random_cloud(1, seed=10)
    cloud.means3D = torch.tensor([[0.05, -0.03, 0.0]])
    cloud.scales = torch.tensor([[3.0, 2.0, 2.5]])
    cloud.opacities = torch.tensor([[0.7]])
    settings = look_at_settings(45, 35, sh_degree=2, bg=(0.0, 1.0, 0.0))
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)
    color = ours[0]
    assert (color[1] < 1.0).all() and (color[1] > 0.25).all(), "every pixel is covered"


def test_a_needle_seen_side_on_keeps_a_positive_conic_and_finite_gradients():
    """The Gaussian and camera that made an MCMC run on crackle_shards diverge (iteration 3261):
    scales 2e-4 / 5.8 / 0.34, 0.66 in front of the camera and far outside the guard band. Its
    2D covariance has a c and b^2 near 4e12, so a c - b^2 cancelled in float32 to -1.4e6
    (truly +2.2e6): an indefinite conic and NaN gradients for its position, scale and rotation
    (this test fails so on the kernels without the bound). The kernels and the reference now
    raise det to its bound lp (a + c) - lp^2."""
    from diff_gaussian_rasterization import GaussianRasterizationSettings
    view = torch.tensor([0.986127794, -0.123091541, 0.111357085, 0, 0.149634376, 0.949606717,
                         -0.275420815, 0, -0.0718434677, 0.288262963, 0.954852343, 0,
                         -0.101386137, -2.90027404, 3.37901115, 1]).reshape(4, 4)
    proj = torch.tensor([2.11794043, -0.352490515, 0.111368224, 0.111357085, 0.321374863,
                         2.71933675, -0.275448352, -0.275420815, -0.154300675, 0.825482905,
                         0.954947829, 0.954852343, -0.217750475, -8.30535603, 3.36934805,
                         3.37901115]).reshape(4, 4)
    settings = GaussianRasterizationSettings(
        image_height=240, image_width=320, tanfovx=0.465606991, tanfovy=0.349205243,
        bg=torch.zeros(3), scale_modifier=1.0, viewmatrix=view, projmatrix=proj, sh_degree=0,
        campos=torch.tensor([-0.633296311, 3.69994068, -2.39769888]), prefiltered=False,
        debug=False, antialiasing=False)
    means = torch.tensor([[-3.20562553, 3.68196011, -1.41401768]], requires_grad=True)
    scales = torch.tensor([[-8.52589798, 1.75999606, -1.0793153]]).exp().requires_grad_()
    rotations = torch.tensor([[0.865414917, -0.346624643, -0.0827079117, -0.352232665]],
                             requires_grad=True)
    opacities = torch.tensor([[0.355504155]], requires_grad=True)
    colors = torch.full((1, 3), 0.5, requires_grad=True)
    color, radii, invdepth = GaussianRasterizer(settings)(
        means3D=means, means2D=torch.zeros(1, 3, requires_grad=True), opacities=opacities,
        colors_precomp=colors, scales=scales, rotations=rotations)
    assert radii.item() > 0 and torch.isfinite(color).all()
    g = torch.Generator().manual_seed(0)
    ((color * torch.randn(color.shape, generator=g)).sum() + invdepth.sum()).backward()
    for tensor in (means, scales, rotations, opacities, colors):
        assert torch.isfinite(tensor.grad).all(), tensor.grad


def test_no_gaussians():
    cloud = random_cloud(0, seed=0)
    settings = look_at_settings(20, 10, bg=(0.25, 0.5, 0.75))
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)
    assert torch.equal(ours[0], torch.tensor([0.25, 0.5, 0.75])[:, None, None].expand(3, 10, 20))
    assert ours[1].shape == (0,)


def test_all_gaussians_behind_the_camera():
    cloud = random_cloud(50, seed=12)
    cloud.means3D[:, 2] = -5.0 - torch.rand(50)  # the camera sits at z = -5 looking at +z
    cloud.means3D[:10, 2] = -5.0 + 0.1  # in front, but inside the near plane (0.2)
    settings = look_at_settings(30, 20, bg=(1.0, 0.0, 0.0))
    ours, ref = render_both(settings, cloud)
    assert_match(ours, ref)
    assert not ours[1].any()
    assert not any(g.any() for g in ours[3].values())
    assert torch.equal(ours[0][0], torch.ones(20, 30))


def test_thread_counts_agree_bitwise():
    settings = look_at_settings(80, 64, sh_degree=3)
    cloud = random_cloud(800, seed=14, log_scale_mean=-2.8, log_scale_std=0.8)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(render_both(settings, cloud)[0])
    finally:
        torch.set_num_threads(before)
    (c1, r1, d1, g1), (c2, r2, d2, g2) = results
    assert torch.equal(c1, c2) and torch.equal(r1, r2) and torch.equal(d1, d2)
    for name in g1:
        assert torch.equal(g1[name], g2[name]), name


def test_equal_depths_keep_their_order_on_any_thread_count():
    """Many Gaussians at exactly equal depths (on a few planes), enough for the tile lists to be
    built in several chunks: ties keep index order, so the image is the one-thread image bit
    for bit."""
    settings = look_at_settings(96, 72)
    cloud = random_cloud(12_000, seed=21, log_scale_mean=-3.2)
    cloud.means3D[:, 2] = torch.round(cloud.means3D[:, 2] * 3) / 3  # 7 depth planes
    before = torch.get_num_threads()
    images = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                images.append(GaussianRasterizer(settings)(
                    cloud.means3D, torch.zeros_like(cloud.means3D), cloud.opacities,
                    colors_precomp=cloud.colors, scales=cloud.scales,
                    rotations=cloud.rotations))
    finally:
        torch.set_num_threads(before)
    (c1, r1, d1), (c2, r2, d2) = images
    assert torch.equal(c1, c2) and torch.equal(r1, r2) and torch.equal(d1, d2)


def test_vector_and_one_at_a_time_paths_agree():
    """The CPU backend projects Gaussians in blocks of vector lanes counted from the first and
    the last P % lanes one at a time. Rolling the cloud moves Gaussians between the two paths:
    image and gradients (rolled back) agree to float rounding (a fused multiply-add may differ)."""
    settings = look_at_settings(80, 64, sh_degree=3, antialiasing=True)
    cloud = random_cloud(77, seed=21, log_scale_mean=-2.6, log_scale_std=0.8)
    shift = 40
    rolled = GaussianCloud(*(torch.roll(t, shift, 0) for t in (
        cloud.means3D, cloud.opacities, cloud.scales, cloud.rotations, cloud.shs, cloud.colors)))
    color, radii, invdepth, grads = render_both(settings, cloud)[0]
    r_color, r_radii, r_invdepth, r_grads = render_both(settings, rolled)[0]
    torch.testing.assert_close(r_color, color, rtol=0, atol=1e-6)
    torch.testing.assert_close(r_invdepth, invdepth, rtol=0, atol=1e-6)
    assert torch.equal(torch.roll(radii, shift, 0), r_radii)
    for name, grad in grads.items():
        torch.testing.assert_close(r_grads[name],
                                   torch.roll(grad, shift, 0), rtol=1e-4,
                                   atol=1e-6 * float(grad.abs().amax()), msg=name)


def test_mark_visible():
    settings = look_at_settings(30, 20)
    points = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -4.9], [0.0, 0.0, -4.7], [9.0, 9.0, 1.0],
                           [0.0, 0.0, -6.0]])
    visible = GaussianRasterizer(settings).markVisible(points)
    assert visible.dtype == torch.bool
    assert visible.tolist() == [True, False, True, True, False]


def precomputed_colour_render(settings, cloud: GaussianCloud, means3D: torch.Tensor):
    """The image of `cloud` with its precomputed colours, placed at `means3D`."""
    return GaussianRasterizer(settings)(means3D, torch.zeros(len(means3D), 3), cloud.opacities,
                                        colors_precomp=cloud.colors, scales=cloud.scales,
                                        rotations=cloud.rotations)[0]


def test_invdepth_unused_needs_no_gradient():
    settings = look_at_settings(32, 32)
    cloud = random_cloud(50, seed=15, log_scale_mean=-2.5)
    means3D = cloud.means3D.clone().requires_grad_()
    precomputed_colour_render(settings, cloud, means3D).sum().backward()
    ref_means = cloud.means3D.clone().requires_grad_()
    r_color, _, _ = rasterize_reference(settings, ref_means, None, cloud.opacities,
                                        colors_precomp=cloud.colors, scales=cloud.scales,
                                        rotations=cloud.rotations)
    r_color.sum().backward()
    torch.testing.assert_close(means3D.grad, ref_means.grad, rtol=1e-3,
                               atol=1e-5 * float(ref_means.grad.abs().max()))


@pytest.mark.parametrize("sh_degree,coeffs", [(0, 1), (1, 4), (3, 16), (2, 16)])
def test_dc_apart_equals_one_sh_tensor(sh_degree, coeffs):
    """`dc=` [P, 1, 3] with `shs=` the other coefficients (the 2024 separate_sh call, which
    training uses) renders the same bits and gives the same gradients as one [P, M, 3] tensor;
    at degree 0 the other coefficients may be an empty [P, 0, 3]."""
    settings = look_at_settings(40, 32, sh_degree=sh_degree)
    cloud = random_cloud(80, seed=7, log_scale_mean=-2.5)
    g = torch.Generator().manual_seed(1)
    grad_color = torch.randn(3, 32, 40, generator=g)

    def run(split):
        sh = cloud.shs[:, :coeffs].clone().requires_grad_()
        leaves = [cloud.means3D.clone().requires_grad_(), cloud.opacities.clone().requires_grad_(),
                  cloud.scales.clone().requires_grad_(), cloud.rotations.clone().requires_grad_()]
        kwargs = dict(means3D=leaves[0], means2D=torch.zeros(80, 3), opacities=leaves[1],
                      scales=leaves[2], rotations=leaves[3])
        if split:
            kwargs.update(dc=sh[:, :1], shs=sh[:, 1:])
        else:
            kwargs.update(shs=sh)
        color, _, _ = GaussianRasterizer(settings)(**kwargs)
        (color * grad_color).sum().backward()
        return color.detach(), [sh.grad] + [leaf.grad for leaf in leaves]

    color_split, grads_split = run(True)
    color_one, grads_one = run(False)
    assert torch.equal(color_split, color_one)
    for a, b in zip(grads_split, grads_one):
        assert torch.equal(a, b)
    assert grads_one[0][:, 0].abs().sum() > 0


def _adam_run(settings, cloud, grad_color, use):
    """Two steps of render → backward → torch's fused Adam on the SH coefficients after the DC
    term, with the gradient stored ("gradient") or used up in the backward pass ("adam").
    Returns the SH rows, both moments, torch's step count and the other inputs' gradients."""
    from diff_gaussian_rasterization import ShAdamStep
    P = cloud.means3D.shape[0]
    rest = torch.nn.Parameter(cloud.shs[:, 1:].clone())
    optimizer = torch.optim.Adam([rest], lr=2.5e-3 / 20, eps=1e-15, fused=True)
    state = optimizer.state[rest]
    state.update(step=torch.zeros(()), exp_avg=torch.zeros_like(rest),
                 exp_avg_sq=torch.zeros_like(rest))
    others = []
    for _ in range(2):
        leaves = [t.clone().requires_grad_() for t in (cloud.means3D, cloud.shs[:, :1],
                                                       cloud.opacities, cloud.scales,
                                                       cloud.rotations)]
        sh_adam = None
        if use == "adam":
            sh_adam = ShAdamStep(state["exp_avg"], state["exp_avg_sq"], state["step"],
                                 optimizer.param_groups[0]["lr"], (0.9, 0.999), 1e-15)
        color, _, _ = GaussianRasterizer(settings)(
            leaves[0], torch.zeros(P, 3), leaves[2], shs=rest, scales=leaves[3],
            rotations=leaves[4], dc=leaves[1], sh_adam=sh_adam)
        (color * grad_color).sum().backward()
        if use == "adam":
            assert rest.grad is None
        else:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        others.append([leaf.grad for leaf in leaves])
    return rest.detach(), state["exp_avg"], state["exp_avg_sq"], state["step"], others


@pytest.mark.parametrize("P", [77, 1000])
def test_adam_in_the_backward_pass_equals_the_optimizer_step(P):
    """sh_adam: the backward pass applies torch's fused Adam to each Gaussian's SH rows as their
    gradient is known. Parameter, moments and step count end bit for bit where storing the
    gradient and calling torch's optimizer puts them (drawn and undrawn Gaussians, rows in
    vector blocks and one at a time, both of torch's roundings at the end of the tensor), and
    the other gradients are unchanged."""
    from diff_gaussian_rasterization import adam_matches_torch
    if not adam_matches_torch():
        pytest.skip("this torch's fused Adam is not reproduced (not an x86 AVX2/AVX-512 torch)")
    settings = look_at_settings(48, 40, sh_degree=3)
    cloud = random_cloud(P, seed=31, log_scale_mean=-2.6, log_scale_std=0.8, extent=2.5)
    grad_color = torch.randn(3, 40, 48, generator=torch.Generator().manual_seed(2))
    stored = _adam_run(settings, cloud, grad_color, "gradient")
    fused = _adam_run(settings, cloud, grad_color, "adam")
    for a, b in zip(stored[:4], fused[:4]):
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))  # bits, signed zeros too
    for step_a, step_b in zip(stored[4], fused[4]):
        for a, b in zip(step_a, step_b):
            assert torch.equal(a, b)
    assert float(fused[3]) == 2.0 and not torch.equal(fused[0], cloud.shs[:, 1:])


def test_adam_arithmetic_reproduces_torch_at_any_size_and_thread_count():
    """The check train.py relies on, at sizes whose last elements torch rounds its other way."""
    from diff_gaussian_rasterization.adam import _reproduces_torch, torch_adam_lanes
    lanes = torch_adam_lanes(1)
    if lanes is None:
        pytest.skip("this torch's fused Adam is not reproduced (not an x86 AVX2/AVX-512 torch)")
    for threads in (1, 2, 3):
        assert _reproduces_torch(threads, lanes), threads
    # The other width would round the last elements wrongly: the check can fail.
    assert not _reproduces_torch(1, 24 - lanes)


@pytest.mark.parametrize("dc_apart", [True, False])
def test_gradients_not_asked_for_are_not_made(dc_apart):
    """shs and means2D that need no gradient (training passes f_rest detached where no optimizer
    step reads it, and no screen-space leaf where no densification statistics are read): the
    other gradients are those of a full backward pass."""
    settings = look_at_settings(40, 32, sh_degree=3)
    cloud = random_cloud(90, seed=8, log_scale_mean=-2.5)
    grad_color = torch.randn(3, 32, 40, generator=torch.Generator().manual_seed(3))
    results = []
    for wanted in (True, False):
        rest = cloud.shs[:, 1 if dc_apart else 0:].clone().requires_grad_(wanted)
        leaves = [t.clone().requires_grad_() for t in (cloud.means3D, cloud.shs[:, :1],
                                                       cloud.opacities, cloud.scales)]
        means2D = torch.zeros(90, 3, requires_grad=wanted)
        color, _, _ = GaussianRasterizer(settings)(
            leaves[0], means2D, leaves[2], shs=rest, scales=leaves[3],
            rotations=cloud.rotations, dc=leaves[1] if dc_apart else None)
        if not dc_apart:
            leaves[1] = torch.zeros(())  # not given
        (color * grad_color).sum().backward()
        results.append([leaf.grad for leaf in leaves])
        assert (rest.grad is not None) == wanted and (means2D.grad is not None) == wanted
    for a, b in zip(*results):
        assert (a is None and b is None) or torch.equal(a, b)


def test_a_second_backward_pass_is_refused_with_a_clear_error():
    """The backward pass frees the forward state as it goes (the splat records before the
    gradients exist), so a graph kept with retain_graph cannot be differentiated twice."""
    settings = look_at_settings(32, 24)
    cloud = random_cloud(30, seed=4, log_scale_mean=-2.5)
    means3D = cloud.means3D.clone().requires_grad_()
    color = precomputed_colour_render(settings, cloud, means3D)
    color.sum().backward(retain_graph=True)
    assert means3D.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="retain_graph is not supported"):
        color.sum().backward()

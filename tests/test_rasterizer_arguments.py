"""Bad arguments raise one ValueError that names the argument."""
import pytest
import torch

from diff_gaussian_rasterization import GaussianRasterizer
from diff_gaussian_rasterization.testing import look_at_settings, random_cloud

P = 10


@pytest.fixture
def call():
    settings = look_at_settings(16, 16)
    cloud = random_cloud(P, seed=0)
    good = dict(means3D=cloud.means3D, means2D=torch.zeros(P, 3), opacities=cloud.opacities,
                shs=cloud.shs, scales=cloud.scales, rotations=cloud.rotations)

    def run(settings_changes=None, **changes):
        kwargs = {**good, **changes}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        s = settings._replace(**(settings_changes or {}))
        return GaussianRasterizer(s)(**kwargs)

    return run


def test_good_call_works(call):
    color, radii, invdepth = call()
    assert color.shape == (3, 16, 16) and radii.shape == (P,) and invdepth.shape == (1, 16, 16)


@pytest.mark.parametrize("name,value,match", [
    ("means3D", torch.zeros(P, 4), "means3D must have shape"),
    ("means2D", torch.zeros(P + 1, 3), "means2D must have shape"),
    ("opacities", torch.zeros(P, 2), "opacities must have shape"),
    ("scales", torch.ones(P, 2), "scales must have shape"),
    ("rotations", torch.ones(P, 3), "rotations must have shape"),
    ("shs", torch.zeros(P, 16, 4), "shs must have shape"),
    ("shs", torch.zeros(P, 16, 3, dtype=torch.float64), "shs must be float32"),
    ("opacities", torch.zeros(P, 1, dtype=torch.float16), "opacities must be float32"),
    ("scales", torch.ones(P, 3, device="meta"), "scales is on meta"),
    ("means3D", [[0.0, 0.0, 0.0]], "means3D must be a torch.Tensor"),
])
def test_bad_tensor(call, name, value, match):
    with pytest.raises(ValueError, match=match):
        call(**{name: value})


def test_too_few_sh_coefficients(call):
    with pytest.raises(ValueError, match="shs has 4 coefficients"):
        call({"sh_degree": 3}, shs=torch.zeros(P, 4, 3))


def test_both_or_neither_colour_source(call):
    with pytest.raises(ValueError, match="shs/colors_precomp.*both"):
        call(colors_precomp=torch.zeros(P, 3))
    with pytest.raises(ValueError, match="shs/colors_precomp.*neither"):
        call(shs=None)


def test_both_or_neither_shape_source(call):
    with pytest.raises(ValueError, match="cov3D_precomp.*both"):
        call(cov3D_precomp=torch.zeros(P, 6))
    with pytest.raises(ValueError, match="cov3D_precomp.*neither"):
        call(scales=None, rotations=None)


@pytest.mark.parametrize("changes,match", [
    ({"bg": torch.zeros(4)}, "raster_settings.bg must have shape"),
    ({"viewmatrix": torch.eye(3)}, "raster_settings.viewmatrix must have shape"),
    ({"projmatrix": torch.eye(4, dtype=torch.float64)}, "raster_settings.projmatrix must be float32"),
    ({"campos": torch.zeros(2)}, "raster_settings.campos must have shape"),
    ({"sh_degree": 4}, "raster_settings.sh_degree must be in 0..3"),
    ({"image_width": 0}, "must be positive"),
    ({"tanfovx": 0.0}, "raster_settings.tanfovx must be positive"),
    ({"low_pass_variance": 0.0}, "raster_settings.low_pass_variance must be positive"),
])
def test_bad_settings(call, changes, match):
    with pytest.raises(ValueError, match=match):
        call(changes)


def test_debug_rejects_non_finite_inputs(call):
    means = random_cloud(P, seed=0).means3D
    means[3, 1] = float("nan")
    with pytest.raises(ValueError, match="means3D contains NaN"):
        call({"debug": True}, means3D=means)
    # Without debug, the non-finite Gaussian is culled instead of corrupting the binning.
    color, radii, _ = call(means3D=means)
    assert radii[3] == 0 and torch.isfinite(color).all()


def test_dc_arguments(call):
    with pytest.raises(ValueError, match="dc must have shape"):
        call(dc=torch.zeros(P, 2, 3), shs=torch.zeros(P, 15, 3))
    with pytest.raises(ValueError, match="dc is given without shs"):
        call(dc=torch.zeros(P, 1, 3), shs=None, colors_precomp=torch.zeros(P, 3))
    with pytest.raises(ValueError, match="shs has 15 coefficients per Gaussian with dc"):
        call({"sh_degree": 3}, dc=torch.zeros(P, 1, 3), shs=torch.zeros(P, 14, 3))
    color, _, _ = call({"sh_degree": 0}, dc=torch.zeros(P, 1, 3), shs=torch.zeros(P, 0, 3))
    assert color.shape == (3, 16, 16)


def test_extension_helpers_name_their_bad_argument():
    """The row normalisation and the MCMC noise bindings check what they are given."""
    from diff_gaussian_rasterization import _C
    rows = torch.randn(5, 4)
    out, inv_norm = _C.normalize_rows(rows)
    for bad, match in [(rows.double(), "float32"), (rows[:, :2].t(), "contiguous"),
                       (torch.randn(5), r"\[N, K\]")]:
        with pytest.raises(ValueError, match=match):
            _C.normalize_rows(bad)
    with pytest.raises(ValueError, match="shaped as out"):
        _C.normalize_rows_backward(torch.randn(4, 4), out, inv_norm)
    xyz = torch.randn(5, 3)
    with pytest.raises(ValueError, match="quats"):
        _C.mcmc_position_noise_(xyz, torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 1),
                                [1, 2], 0.1, 100.0, 0.995)
    with pytest.raises(ValueError, match="key"):
        _C.mcmc_position_noise_(xyz, torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 1),
                                [1], 0.1, 100.0, 0.995)

"""Named constants of the rasterizer, for Python (the reference renderer and tests).

The C++/CUDA values live in csrc/math/config.h and sh.h; `tests/test_constants.py` checks that
the two definitions agree through `_C.constants()`.
"""

NUM_CHANNELS = 3  # RGB output
BLOCK_X = 16  # tile width in pixels: the unit of binning and parallel blending
BLOCK_Y = 16  # tile height in pixels
NEAR_PLANE = 0.2  # Gaussians at view-space z <= this are culled
FRUSTUM_GUARD_BAND = 1.3  # the EWA Jacobian is evaluated inside 1.3 x tan(fov/2)
LOW_PASS_VARIANCE = 0.3  # added to the 2D covariance diagonal: at least about a pixel wide
ANTIALIAS_MIN_DET_RATIO = 2.5e-5  # floor of det(cov)/det(cov + low-pass) with antialiasing
EIGEN_MIN_DISCRIMINANT = 0.1  # floor of the discriminant when sizing the screen radius
RADIUS_SIGMAS = 3.0  # the screen radius covers 3 standard deviations
ALPHA_MIN = 1.0 / 255.0  # contributions below this alpha are skipped
ALPHA_MAX = 0.99  # alpha is clamped here so that 1 - alpha stays invertible
TRANSMITTANCE_MIN = 1e-4  # a pixel stops before its transmittance falls below this
PROJECTION_W_EPS = 1e-7  # added to w before the perspective divide
MAX_SH_DEGREE = 3
SH_COLOR_OFFSET = 0.5  # added to the SH colour (zero coefficients give mid-grey)

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396]
SH_C3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435]

"""The named constants agree between the C++ headers and the Python module."""
import math

from diff_gaussian_rasterization import _C, constants


def test_cpp_and_python_constants_agree():
    cpp = _C.constants()
    assert set(cpp) <= set(vars(constants)), "every C++ constant has a Python twin"
    for name, value in cpp.items():
        py_value = getattr(constants, name)
        if isinstance(value, list):
            assert len(value) == len(py_value), name
            for a, b in zip(value, py_value):
                assert math.isclose(a, b, rel_tol=1e-7), name
        else:
            assert math.isclose(value, py_value, rel_tol=1e-7), (name, value, py_value)


def test_values_of_the_original():
    assert constants.ALPHA_MIN == 1 / 255 and constants.ALPHA_MAX == 0.99
    assert constants.TRANSMITTANCE_MIN == 1e-4 and constants.NEAR_PLANE == 0.2
    assert constants.LOW_PASS_VARIANCE == 0.3 and constants.FRUSTUM_GUARD_BAND == 1.3
    assert constants.BLOCK_X == constants.BLOCK_Y == 16


def test_blend_exp_is_accurate():
    import torch
    x = torch.linspace(-29.9, 0.0, 100001)
    ours = _C.exp_nonpositive(x)
    exact = torch.exp(x.double())
    rel = ((ours.double() - exact) / exact).abs().max()
    assert rel < 5e-7, float(rel)
    assert float(_C.exp_nonpositive(torch.tensor([-1000.0]))[0]) < 1e-12

"""distCUDA2 (CPU) equals brute force: mean squared distance to the 3 nearest other points."""
import pytest
import torch

from simple_knn._C import distCUDA2


def brute_force(points: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(points.double(), points.double()).square()
    d.fill_diagonal_(float("inf"))
    k = min(3, points.shape[0] - 1)
    if k <= 0:
        return torch.zeros(points.shape[0], dtype=torch.float64)
    return d.topk(k, largest=False).values.mean(1)


def check(points):
    ours = distCUDA2(points)
    assert ours.shape == (points.shape[0],) and ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), brute_force(points), rtol=1e-5, atol=1e-9)


def test_random_points():
    check(torch.rand(3000, 3, generator=torch.Generator().manual_seed(0)) * 10 - 5)


def test_clustered_points():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(20, 3, generator=g) * 50
    pts = centres[torch.randint(0, 20, (4000,), generator=g)] + 0.01 * torch.randn(4000, 3, generator=g)
    check(pts)


def test_points_on_a_plane_and_a_line():
    g = torch.Generator().manual_seed(2)
    plane = torch.rand(1000, 3, generator=g)
    plane[:, 2] = 0.0  # zero extent on one axis (the original divides by it)
    check(plane)
    line = torch.zeros(500, 3)
    line[:, 0] = torch.rand(500, generator=g)
    check(line)


def test_duplicates_give_zero():
    g = torch.Generator().manual_seed(3)
    pts = torch.rand(200, 3, generator=g)
    pts = torch.cat([pts, pts, pts, pts])  # every point has 3 exact copies
    assert (distCUDA2(pts) == 0).all()
    check(torch.cat([pts[:50], pts[:50]]))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_fewer_than_four_points(n):
    pts = torch.arange(3 * n, dtype=torch.float32).reshape(n, 3) ** 1.5
    check(pts)


def test_bad_input():
    with pytest.raises(ValueError, match="must be \\[P, 3\\]"):
        distCUDA2(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="float32"):
        distCUDA2(torch.zeros(10, 3, dtype=torch.float64))

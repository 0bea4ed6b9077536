"""The training cameras' path: the segments between consecutive training cameras (in image-name
order, the capture order of a video or a walk-around), and the distance of points to it.

MCMC keeps a tube around this path free of Gaussians (MCMCStrategy.path_clearance): a Gaussian
there sits right in front of the cameras that pass by, where a held-out view between two training
cameras sees it as a floater (docs/strategies.md).

Names do not always follow the capture path (photo collections, NeRF-synthetic's random views),
so a segment is kept only if it is no longer than PATH_JUMP_FACTOR × the median distance from a
camera to its nearest neighbour: in a capture sequence consecutive cameras are neighbours (two
spacings apart where a test view was held out), while a jump across the scene is many spacings
long and is dropped.
"""
import torch

# Longest kept segment, in median nearest-neighbour spacings. Holding out every 8th view for
# testing makes some segments span two spacings, and uneven spacing makes them longer: the
# sample's longest segment is 3.6 spacings, crackle_shards' 2.8.
PATH_JUMP_FACTOR = 4.0


def camera_path(cameras) -> torch.Tensor:
    """[S, 2, 3] float32: the start and end of each kept segment between consecutive cameras
    (sorted by image_name), from their camera_center."""
    ordered = sorted(cameras, key=lambda camera: camera.image_name)
    if not ordered:
        return torch.zeros(0, 2, 3)
    centres = torch.stack([camera.camera_center.detach().float().cpu() for camera in ordered])
    return path_segments(centres)


def path_segments(centres: torch.Tensor) -> torch.Tensor:
    """[S, 2, 3]: the segments between consecutive rows of `centres` [C, 3] that are no longer
    than PATH_JUMP_FACTOR × the median nearest-neighbour distance."""
    if centres.shape[0] < 2:
        return torch.zeros(0, 2, 3, dtype=centres.dtype)
    gaps = torch.cdist(centres, centres)
    gaps.fill_diagonal_(float("inf"))
    spacing = gaps.min(dim=1).values.median()
    segments = torch.stack([centres[:-1], centres[1:]], dim=1)
    lengths = (segments[:, 1] - segments[:, 0]).norm(dim=1)
    return segments[lengths <= PATH_JUMP_FACTOR * spacing]


def distance_to_path(points: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """[N]: each point's distance to the nearest segment (inf with no segment). One segment at a
    time, so memory stays O(N) for a long path."""
    nearest = torch.full((points.shape[0],), float("inf"), device=points.device,
                         dtype=points.dtype)
    segments = segments.to(device=points.device, dtype=points.dtype)
    for start, end in segments:
        direction, offset = end - start, points - start
        # Position along the segment of the closest point, clamped to the segment's ends.
        along = (offset @ direction / (direction @ direction).clamp(min=1e-12)).clamp(0, 1)
        nearest = torch.minimum(nearest, (offset - along[:, None] * direction).norm(dim=1))
    return nearest

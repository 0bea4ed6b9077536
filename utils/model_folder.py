"""A trained model's folder: the original's layout, written down once.

    <model>/cfg_args                     the loading parameters (the original's Namespace text)
    <model>/config.json                  every group of flags, resolved (ours)
    <model>/input.ply, cameras.json      the starting points and the cameras, as the original
    <model>/exposure.json                --train_test_exp: the trained exposures (GS-2024)
    <model>/point_cloud/iteration_<N>/point_cloud.ply   (or an exported .compressed.ply, .spz,
                                         .splat that replaced it: export.py)
    <model>/chkpnt<N>.pth                checkpoints
    <model>/<train|test>/ours_<N>/{renders,gt}   render.py's images; results.json, per_view.json
                                         metrics.py's scores
"""
import os
import re
from typing import List

from .errors import DatasetError
from .splat_io import EXTENSIONS, FORMATS

EXPOSURE_FILE = "exposure.json"  # the 2024 original's name


class ModelFolder:
    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    cfg_args = property(lambda self: self.file("cfg_args"))
    config_json = property(lambda self: self.file("config.json"))
    input_ply = property(lambda self: self.file("input.ply"))
    cameras_json = property(lambda self: self.file("cameras.json"))
    exposure_json = property(lambda self: self.file(EXPOSURE_FILE))
    point_cloud_folder = property(lambda self: self.file("point_cloud"))

    # --- saved iterations ---------------------------------------------------------------------
    def iterations(self) -> List[int]:
        """The saved iterations, ascending (none: an empty list)."""
        if not os.path.isdir(self.point_cloud_folder):
            return []
        return sorted(int(m.group(1)) for name in os.listdir(self.point_cloud_folder)
                      if (m := re.fullmatch(r"iteration_(\d+)", name)))

    def resolve_iteration(self, iteration: int = -1) -> int:
        """`iteration`, or the latest saved one for -1; an error naming the folder when there
        is none."""
        saved = self.iterations()
        if not saved:
            raise DatasetError(self.point_cloud_folder,
                               "no saved iterations (is this a trained model folder?)")
        return saved[-1] if iteration == -1 else iteration

    def iteration_folder(self, iteration: int) -> str:
        return os.path.join(self.point_cloud_folder, f"iteration_{iteration}")

    def ply_path(self, iteration: int) -> str:
        """Where training writes the PLY of `iteration`."""
        return os.path.join(self.iteration_folder(iteration), "point_cloud.ply")

    def point_cloud_file(self, iteration: int) -> str:
        """The model file of a saved iteration: the PLY, or else an exported web format that
        replaced it (so render.py and view.py work on such a folder). The PLY's path when none
        exists (the error names it)."""
        folder = self.iteration_folder(iteration)
        candidates = [os.path.join(folder, "point_cloud" + EXTENSIONS[fmt]) for fmt in FORMATS]
        return next((path for path in candidates if os.path.isfile(path)), candidates[0])

    # --- checkpoints and renders ----------------------------------------------------------------
    def checkpoint(self, iteration: int) -> str:
        return self.file(f"chkpnt{iteration}.pth")

    def renders(self, split: str, iteration: int) -> str:
        """render.py's folder for the `split` ("train" or "test") views of `iteration`."""
        return os.path.join(self.path, split, f"ours_{iteration}")

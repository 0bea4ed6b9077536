"""convert.py: photos → undistorted COLMAP dataset, then training on it; clear errors for no
images, too few registered images and a failing COLMAP step. Each reconstruction test runs with
both backends: pycolmap (always installed) and the colmap command (installed by .ci/run)."""
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convert
import train
from scene.colmap_loader import read_intrinsics_binary
from utils.cli import report_errors
from utils.errors import DatasetError, UsageError

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "data" / "garden_dev" / "images"
# Four neighbouring views from each of the sample's three camera rings.
SUBSET = [f"img_{i:03d}.jpg" for i in (0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35)]


BACKENDS = [
    "pycolmap",
    pytest.param("colmap", marks=pytest.mark.skipif(
        shutil.which("colmap") is None,
        reason="the colmap command is not installed (.ci/run installs Debian's colmap)")),
]


def photo_folder(root: Path, names):
    (root / "input").mkdir(parents=True)
    for name in names:
        shutil.copy(SAMPLE_IMAGES / name, root / "input" / name)
    return root


@pytest.mark.parametrize("backend", BACKENDS)
def test_converts_a_subset_of_the_sample_and_trains_on_it(tmp_path, capsys, backend):
    source = photo_folder(tmp_path / "scene", SUBSET)
    assert convert.main(["-s", str(source), "--no_gpu", "--robust_matching", "--resize",
                         "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert f"with {backend}" in out and "Registered 12 of 12 images" in out
    cams = read_intrinsics_binary(source / "sparse" / "0" / "cameras.bin")
    assert {c.model for c in cams.values()} <= {"PINHOLE", "SIMPLE_PINHOLE"}
    assert len(os.listdir(source / "images")) == 12
    with Image.open(source / "images_4" / SUBSET[0]) as small, \
            Image.open(source / "images" / SUBSET[0]) as full:
        assert small.width == round(full.width / 4)
    assert train.main(["-s", str(source), "-m", str(tmp_path / "model"), "--quiet",
                       "--iterations", "10", "--test_iterations", "-1", "--disable_viewer"]) == 0
    assert (tmp_path / "model" / "point_cloud" / "iteration_10" / "point_cloud.ply").exists()


def test_no_images_is_one_clear_error(tmp_path):
    (tmp_path / "input").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        convert.main(["-s", str(tmp_path), "--no_gpu"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robust", [False, True])
def test_too_few_registered_images(tmp_path, capsys, backend, robust):
    """The colmap mapper exits 1 here ("failed to create sparse model") and pycolmap returns no
    model: both end in the same message, with the count and what to try."""
    (tmp_path / "input").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # unrelated noise images: nothing matches
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            tmp_path / "input" / f"{i}.png")
    argv = ["-s", str(tmp_path), "--no_gpu", "--backend", backend]
    assert report_errors(convert.main, argv + ["--robust_matching"] * robust) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "only 0 of 3 images were registered" in err
    assert ("--robust_matching" in err) != robust  # suggested unless already on
    assert "more overlap" in err


def test_backend_colmap_without_the_command(tmp_path, monkeypatch):
    photo_folder(tmp_path, SUBSET[:3])
    monkeypatch.setenv("PATH", str(tmp_path))  # no colmap on it
    with pytest.raises(UsageError, match="colmap command was not found"):
        convert.main(["-s", str(tmp_path), "--no_gpu", "--backend", "colmap"])


def test_failing_colmap_step_shows_the_end_of_its_log(tmp_path, capsys):
    photo_folder(tmp_path, SUBSET[:2])
    fake = tmp_path / "fake_colmap"
    fake.write_text("#!/bin/sh\necho 'loading images'\necho 'E: cannot open database'\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert report_errors(convert.main, ["-s", str(tmp_path), "--colmap_executable", str(fake)]) == 1
    err = capsys.readouterr().err
    assert "feature_extractor failed with code 3" in err and "cannot open database" in err

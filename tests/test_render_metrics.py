"""render.py and metrics.py on a short training run of the bundled sample: file layout, ground
truth written faithfully, metrics recomputed independently from the PNGs."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import metrics
import render
import train
from conftest import REPO, SAMPLE



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = tmp_path_factory.mktemp("model")
    assert train.main(["-s", str(SAMPLE), "-m", str(model), "--quiet", "-r", "4", "--eval",
                       "--iterations", "30", "--test_iterations", "-1", "--disable_viewer"]) == 0
    assert render.main(["-m", str(model), "--quiet", "--video", "--video_frames_per_view",
                        "1"]) == 0
    return model


def test_render_layout(trained):
    for split, count in (("train", 42), ("test", 6)):
        folder = trained / split / "ours_30"
        renders = sorted(p.name for p in (folder / "renders").iterdir())
        assert renders == [f"{i:05d}.png" for i in range(count)]
        assert sorted(p.name for p in (folder / "gt").iterdir()) == renders
        assert Image.open(folder / "renders" / "00000.png").size == (80, 60)
        assert Image.open(folder / "comparison.png").size == (3 * 80, 4 * 60)
    video = trained / "video_ours_30.mp4"
    assert video.stat().st_size > 1000 and video.read_bytes()[4:8] == b"ftyp"


def test_ground_truth_png_is_the_downscaled_photo(trained):
    # test views in name order: every 8th photo; the first is the first name
    first = sorted((SAMPLE / "images").iterdir())[0]
    expected = np.asarray(Image.open(first).convert("RGB").resize((80, 60)))
    written = np.asarray(Image.open(trained / "test" / "ours_30" / "gt" / "00000.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_metrics_outputs_and_values(trained):
    assert metrics.main(["-m", str(trained), "--quiet"]) == 0
    results = json.loads((trained / "results.json").read_text())
    per_view = json.loads((trained / "per_view.json").read_text())
    assert set(results) == {"ours_30"} and set(results["ours_30"]) == {"SSIM", "PSNR", "LPIPS"}
    assert len(per_view["ours_30"]["PSNR"]) == 6
    folder = trained / "test" / "ours_30"
    psnrs = []
    for name in sorted(per_view["ours_30"]["PSNR"]):
        a = np.asarray(Image.open(folder / "renders" / name), dtype=np.float64) / 255
        b = np.asarray(Image.open(folder / "gt" / name), dtype=np.float64) / 255
        psnrs.append(10 * np.log10(1 / ((a - b) ** 2).mean()))
        assert per_view["ours_30"]["PSNR"][name] == pytest.approx(psnrs[-1], abs=1e-3)
    assert results["ours_30"]["PSNR"] == pytest.approx(np.mean(psnrs), abs=1e-3)
    assert 0 < results["ours_30"]["SSIM"] < 1 and 0 < results["ours_30"]["LPIPS"] < 1


def test_render_without_a_trained_model_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "render.py"), "-m", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and "point_cloud" in result.stderr


def test_the_dataset_folder_is_only_read(tmp_path):
    """Training, rendering and scoring leave every file of the dataset byte for byte as it was,
    and none is added; config.json records the dataset files the model was trained from."""
    import hashlib
    import shutil
    dataset = tmp_path / "dataset"
    shutil.copytree(SAMPLE, dataset)

    def listing():
        return {str(p.relative_to(dataset)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(dataset.rglob("*")) if p.is_file()}

    before = listing()
    model = tmp_path / "model"
    assert train.main(["-s", str(dataset), "-m", str(model), "--quiet", "-r", "4", "--eval",
                       "--iterations", "20", "--test_iterations", "20",
                       "--disable_viewer"]) == 0
    assert render.main(["-m", str(model), "--quiet", "--skip_train"]) == 0
    assert metrics.main(["-m", str(model)]) == 0
    assert listing() == before
    files = json.loads((model / "config.json").read_text())["dataset_files"]
    assert "sparse/0/points3D.bin" in files and "sparse/0/cameras.bin" in files
    images = [name for name in files if name.startswith("images/")]
    assert len(images) == 48  # every image, train and test
    assert files["sparse/0/points3D.bin"]["bytes"] == (dataset / "sparse/0/points3D.bin").stat().st_size

"""The benchmark scripts run (on their smallest settings) and write their JSON: they call the
extensions directly in places, so an API change must not leave them broken until the next
`make bench`."""
import json
import subprocess
import sys

import pytest
from conftest import REPO



def run_script(script, *args, tmp_path):
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args,
                           "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_rasterizer_benchmark(tmp_path):
    result = run_script("rasterizer.py", "--repeats", "2", "--scenes", "256x256_20k",
                        tmp_path=tmp_path)
    (scene,) = result["results"]
    assert scene["tile_entries"] > 0 and scene["forward_ms"] > 0


def test_compare_builds_benchmark(tmp_path):
    # The installed build against itself: both copies load, run every view and agree bit for bit.
    result = run_script("compare_builds.py", "installed", "installed", "--repeats", "1",
                        tmp_path=tmp_path)
    assert [row["identical"] for row in result["results"]] == [True, True]
    assert all(row["forward_ms"] > 0 and row["backward_ms"] > 0 for row in result["results"])


def test_knn_benchmark(tmp_path):
    result = run_script("knn.py", "--sizes", "2000", "--repeats", "1", tmp_path=tmp_path)
    assert {row["cloud"] for row in result["results"]} == {"uniform", "clustered"}


def test_viewer_benchmark(tmp_path):
    result = run_script("viewer.py", "--repeats", "1", "--models", "2000", "--sizes", "64x48",
                        "--train_iterations", "30", "--skip_page", tmp_path=tmp_path)
    assert result["frames"][0]["fps"] > 0
    assert set(result["training_ms_per_step"]) == {"disabled", "no page"}


def test_row_edit_benchmark(tmp_path):
    result = run_script("row_edit.py", "--sizes", "2000", "--repeats", "2", tmp_path=tmp_path)
    (row,) = result["results"]
    assert row["dead"] == 60 and row["relocate_ms"] > 0 and row["edit_rebuilt_ms"] > 0


def test_distributed_benchmark(tmp_path):
    result = run_script("distributed.py", "--views", "20", "--skip_psnr", "--all_reduce_sizes",
                        "1000", tmp_path=tmp_path)
    assert len(result["views_per_second"]) == 2 and result["all_reduce_ms"]["1000"] > 0


@pytest.mark.parametrize("extra", [[], ["--reference_kernels"],
                                   ["--strategy", "mcmc", "--cap_max", "8000",
                                    "--cap_by_iter", "20", "-s", str(REPO / "data" / "garden_dev")]])
def test_training_benchmark(tmp_path, extra):
    result = run_script("train.py", "--iterations", "30", "--timed_steps", "2", "--profiled_steps", "2", *extra,
                        tmp_path=tmp_path)
    assert result["final_gaussians"] > 0 and result["breakdown"]["median_step_ms"] > 0
    assert result["reference_kernels"] == ("--reference_kernels" in extra)
    assert result["strategy"] == ("mcmc" if "mcmc" in extra else "default")
    # flags of train.py's own go through unchanged
    assert result["train_argv"] == (["--cap_by_iter", "20"] if "mcmc" in extra else [])


def test_time_to_quality_benchmark(tmp_path):
    result = run_script("time_to_quality.py", "-s", str(REPO / "data" / "garden_dev"), "-r", "4",
                        "--iterations", "40", "--every", "20", "--strategy", "mcmc",
                        "--cap_max", "5000", "--resolution_schedule", "10", tmp_path=tmp_path)
    assert [p["iteration"] for p in result["points"]] == [20, 40]
    seconds = [p["seconds"] for p in result["points"]]
    assert 0 < result["setup_seconds"] < seconds[0] < seconds[1] <= result["wall_seconds"]
    assert all(p["test_psnr"] > 5 for p in result["points"])
    assert result["machine"]["commit"] and result["machine"]["threads"] >= 1
    assert (tmp_path / "result.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A 40-iteration model of the sample scene, saved at iteration 40."""
    model = tmp_path_factory.mktemp("model")
    done = subprocess.run([sys.executable, str(REPO / "train.py"), "-s", str(REPO / "data" / "garden_dev"),
                           "-m", str(model), "--iterations", "40", "--save_iterations", "40",
                           "--test_iterations", "-1", "--quiet", "--disable_viewer", "--eval"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return model


def test_step_cost_benchmark(tmp_path, small_model):
    result = run_script("step_cost.py", "-m", str(small_model), "--resolutions", "4", "2",
                        "--timed_steps", "2", "--profiled_steps", "1", tmp_path=tmp_path)
    small, large = result["breakdowns"]
    assert (small["width"], small["height"]) == (80, 60)  # -r 4 of 320x240
    assert (large["width"], large["height"]) == (160, 120)
    assert small["median_step_ms"] > 0 and large["stages_ms"]["rasterizer forward"] > 0
    assert set(result["split"]) == {"per_gaussian_ms", "per_megapixel_ms"}


def test_compare_builds_on_a_trained_model(tmp_path, small_model):
    result = run_script("compare_builds.py", "installed", "--model", str(small_model),
                        "--repeats", "1", tmp_path=tmp_path)
    assert result["results"][0]["forward_ms"] > 0


def test_memory_benchmark(tmp_path):
    result = run_script("memory.py", "--counts", "40000", "2000", "--iterations", "30",
                        tmp_path=tmp_path)
    peaks = result["peak_rss_mib"]
    assert peaks["40000"] > peaks["2000"] > 100
    assert result["kib_per_gaussian"] > 0 and result["floor_kib_per_gaussian"] == pytest.approx(0.92, abs=0.01)

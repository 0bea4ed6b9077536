"""Photos → undistorted COLMAP dataset, with the original's flags and layout:

    python convert.py -s my_scene            # my_scene/input/*.jpg → my_scene/images, sparse/0
    python convert.py -s my_scene --video clip.mp4   # the sharpest frame of each of 150 stretches

Steps (as the original): feature extraction (one shared camera, --camera model), exhaustive
matching, incremental mapping (global BA function tolerance 1e-6) into <s>/distorted/sparse,
undistortion into <s>/images and <s>/sparse/0; --resize writes images_2/4/8 (50/25/12.5 %).

Backend (--backend, ours): `auto` uses the `colmap` command when it is installed (or given by
--colmap_executable), otherwise pycolmap from PyPI (a dependency of this project); both produce
the same layout and report a failed or too small reconstruction the same way: how many images
were registered, and what to try (--robust_matching, more overlapping photos). Resizing uses
Pillow, so ImageMagick is not needed (--magick_executable is accepted and ignored).
"""
import os
import shutil
import subprocess
from dataclasses import dataclass

from PIL import Image

from arguments import make_parser
from utils.cli import run_main
from utils.errors import DatasetError, ReportedError, UsageError
from utils.video_frames import extract_sharpest

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MIN_REGISTERED = 3  # fewer registered images cannot make a useful scene
MAPPER_BA_GLOBAL_FUNCTION_TOLERANCE = 1e-6  # the original's mapper option
RESIZE_FOLDERS = {"images_2": 2, "images_4": 4, "images_8": 8}
LOG_TAIL_LINES = 15

# --robust_matching (ours): looser SIFT and mapper settings for small, low-resolution or
# wide-baseline photo sets, where COLMAP's defaults register only a few images. They are the
# settings the bundled sample scene's own SfM used (data/garden_dev/README.txt).
ROBUST_EXTRACTION = {"estimate_affine_shape": True, "domain_size_pooling": True}
ROBUST_MATCHING = {"guided_matching": True, "max_ratio": 0.9, "max_distance": 0.8,
                   "min_num_inliers": 10}
ROBUST_MAPPER = {"init_min_num_inliers": 30, "abs_pose_min_num_inliers": 15,
                 "min_num_matches": 10}


BACKENDS = ("auto", "colmap", "pycolmap")
DEFAULT_VIDEO_FRAMES = 150  # --video: photos taken from a video (one per equal stretch)


class ConvertError(ReportedError):
    """A COLMAP step failed, or the reconstruction is too small to train on."""
    exit_code = 1


class MappingFailed(Exception):
    """The mapper produced no reconstruction; `reason` is its own last word on why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ColmapCommand:
    """The `colmap` executable; every step's output goes to <s>/distorted/<step>.log."""
    name = "colmap"

    def __init__(self, executable, log_dir, robust=False):
        self.executable, self.log_dir, self.robust = executable, log_dir, robust

    def _robust(self, section, settings):
        if not self.robust:
            return []
        return [item for key, value in settings.items()
                for item in (f"--{section}.{key}", int(value) if isinstance(value, bool) else value)]

    def _run(self, step, *args):
        """Run one step; returns (exit code, its log's last lines). Only the mapper's failure
        is left to the caller (no reconstruction is a result, reported with the image count)."""
        log_path = os.path.join(self.log_dir, f"{step}.log")
        with open(log_path, "w") as log:
            code = subprocess.call([self.executable, step, *map(str, args)], stdout=log,
                                   stderr=subprocess.STDOUT)
        with open(log_path, errors="replace") as log:
            tail = log.readlines()[-LOG_TAIL_LINES:]
        if code != 0 and step != "mapper":
            raise ConvertError(f"colmap {step} failed with code {code}; the end of {log_path}:\n"
                               f"{''.join(tail)}")
        return code, tail

    def extract(self, database, images, camera, use_gpu):
        self._run("feature_extractor", "--database_path", database, "--image_path", images,
                  "--ImageReader.single_camera", 1, "--ImageReader.camera_model", camera,
                  "--SiftExtraction.use_gpu", int(use_gpu),
                  *self._robust("SiftExtraction", ROBUST_EXTRACTION))

    def match(self, database, use_gpu):
        self._run("exhaustive_matcher", "--database_path", database,
                  "--SiftMatching.use_gpu", int(use_gpu),
                  *self._robust("SiftMatching", ROBUST_MATCHING))

    def map(self, database, images, output):
        code, tail = self._run(
            "mapper", "--database_path", database, "--image_path", images,
            "--output_path", output,
            "--Mapper.ba_global_function_tolerance", MAPPER_BA_GLOBAL_FUNCTION_TOLERANCE,
            *self._robust("Mapper", ROBUST_MAPPER))
        if code != 0:  # e.g. "ERROR: failed to create sparse model" when no initial pair is found
            last = next((line.strip() for line in reversed(tail) if line.strip()), "")
            raise MappingFailed(f"colmap mapper exited with code {code}: {last} (log: "
                                f"{os.path.join(self.log_dir, 'mapper.log')})")

    def undistort(self, images, model, output):
        self._run("image_undistorter", "--image_path", images, "--input_path", model,
                  "--output_path", output, "--output_type", "COLMAP")


class PyColmap:
    """The same steps through pycolmap's bindings (CPU unless a CUDA build is installed)."""
    name = "pycolmap"

    def __init__(self, robust=False):
        import pycolmap
        self.pc = pycolmap
        self.robust = robust

    def _step(self, step, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # pycolmap raises plain RuntimeErrors; report which step
            raise ConvertError(f"pycolmap {step} failed: {exc}") from None

    def _device(self, use_gpu):
        return self.pc.Device.auto if use_gpu else self.pc.Device.cpu

    def extract(self, database, images, camera, use_gpu):
        reader = self.pc.ImageReaderOptions()
        reader.camera_model = camera
        extraction = self.pc.FeatureExtractionOptions()
        if self.robust:
            for key, value in ROBUST_EXTRACTION.items():
                setattr(extraction.sift, key, value)
        self._step("feature extraction", self.pc.extract_features, database, images,
                   camera_mode=self.pc.CameraMode.SINGLE, reader_options=reader,
                   extraction_options=extraction, device=self._device(use_gpu))

    def match(self, database, use_gpu):
        matching = self.pc.FeatureMatchingOptions()
        verification = self.pc.TwoViewGeometryOptions()
        if self.robust:
            matching.guided_matching = ROBUST_MATCHING["guided_matching"]
            matching.sift.max_ratio = ROBUST_MATCHING["max_ratio"]
            matching.sift.max_distance = ROBUST_MATCHING["max_distance"]
            verification.min_num_inliers = ROBUST_MATCHING["min_num_inliers"]
        self._step("exhaustive matching", self.pc.match_exhaustive, database,
                   matching_options=matching, verification_options=verification,
                   device=self._device(use_gpu))

    def map(self, database, images, output):
        options = self.pc.IncrementalPipelineOptions()
        options.ba_global_function_tolerance = MAPPER_BA_GLOBAL_FUNCTION_TOLERANCE
        if self.robust:
            options.min_num_matches = ROBUST_MAPPER["min_num_matches"]
            options.mapper.init_min_num_inliers = ROBUST_MAPPER["init_min_num_inliers"]
            options.mapper.abs_pose_min_num_inliers = ROBUST_MAPPER["abs_pose_min_num_inliers"]
        try:
            self.pc.incremental_mapping(database, images, output, options=options)
        except Exception as exc:  # a failed reconstruction, reported with the image count
            raise MappingFailed(f"pycolmap mapping failed: {exc}") from None

    def undistort(self, images, model, output):
        self._step("undistortion", self.pc.undistort_images, output, model, images,
                   output_type="COLMAP")


def choose_backend(colmap_executable, log_dir, robust=False, backend="auto"):
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    executable = colmap_executable or shutil.which("colmap")
    if backend == "colmap" or (backend == "auto" and executable):
        if not executable:
            raise UsageError("--backend colmap: the colmap command was not found (install "
                             "COLMAP or give --colmap_executable)")
        return ColmapCommand(executable, log_dir, robust)
    try:
        return PyColmap(robust)
    except ImportError:
        raise UsageError("pycolmap is not installed: run `make setup` (installs it) or install "
                         "COLMAP") from None


def too_few_registered(sparse_dir, registered, total, robust, reason=""):
    """The one message for a reconstruction that failed or is too small, whichever backend."""
    advice = ("photos with more overlap between neighbours, texture and sharpness" if robust else
              "--robust_matching (looser matching for small, low-resolution or wide-baseline "
              "sets), and photos with more overlap between neighbours")
    return ConvertError(f"{sparse_dir}: only {registered} of {total} images were registered "
                        f"(need at least {MIN_REGISTERED})"
                        + (f"; {reason}" if reason else "") + f". Try {advice}")


def list_images(folder):
    if not os.path.isdir(folder):
        raise DatasetError(folder, "missing: put the photos in <source>/input")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise DatasetError(folder, f"no images ({', '.join(IMAGE_EXTENSIONS)})")
    return names


def largest_model(sparse_dir):
    """(folder, registered image count) of the reconstruction with the most images."""
    from scene.colmap_loader import read_extrinsics_binary
    best = (None, 0)
    for name in sorted(os.listdir(sparse_dir)) if os.path.isdir(sparse_dir) else []:
        images_bin = os.path.join(sparse_dir, name, "images.bin")
        if os.path.exists(images_bin):
            count = len(read_extrinsics_binary(images_bin))
            if count > best[1]:
                best = (os.path.join(sparse_dir, name), count)
    return best


def resize_images(source):
    images_dir = os.path.join(source, "images")
    for folder, factor in RESIZE_FOLDERS.items():
        out_dir = os.path.join(source, folder)
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(os.listdir(images_dir)):
            with Image.open(os.path.join(images_dir, name)) as image:
                size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
                image.resize(size, Image.Resampling.LANCZOS).save(os.path.join(out_dir, name))
        print(f"Wrote {out_dir} ({100 / factor:g} %)")


@dataclass(frozen=True)
class ConvertOptions:
    """How convert() runs (the flags of this script, with the original's defaults)."""
    camera: str = "OPENCV"
    use_gpu: bool = True
    skip_matching: bool = False
    resize: bool = False
    colmap_executable: str = ""
    robust: bool = False
    backend: str = "auto"
    video: str = ""  # ours: photos from this video first (utils/video_frames.py)
    video_frames: int = DEFAULT_VIDEO_FRAMES


def convert(source, options: ConvertOptions = ConvertOptions()):
    camera, use_gpu, resize = options.camera, options.use_gpu, options.resize
    robust = options.robust
    input_dir = os.path.join(source, "input")
    if options.video:
        if os.path.isdir(input_dir) and os.listdir(input_dir):
            raise DatasetError(input_dir, "already holds files; --video writes its frames "
                                          "there: give a new --source_path")
        chosen = extract_sharpest(options.video, options.video_frames, input_dir)
        print(f"Took {len(chosen)} frames from {options.video} into {input_dir}")
    names = list_images(input_dir)
    distorted = os.path.join(source, "distorted")
    database = os.path.join(distorted, "database.db")
    distorted_sparse = os.path.join(distorted, "sparse")
    os.makedirs(distorted_sparse, exist_ok=True)
    backend = choose_backend(options.colmap_executable, distorted, robust, options.backend)
    print(f"Converting {len(names)} images in {input_dir} with {backend.name}")

    failure = ""
    if not options.skip_matching:
        if os.path.exists(database):
            os.remove(database)  # a stale database would mix old and new features
        backend.extract(database, input_dir, camera, use_gpu)
        backend.match(database, use_gpu)
        try:
            backend.map(database, input_dir, distorted_sparse)
        except MappingFailed as exc:
            failure = exc.reason
    model_dir, registered = largest_model(distorted_sparse)
    print(f"Registered {registered} of {len(names)} images")
    if registered < MIN_REGISTERED:
        raise too_few_registered(distorted_sparse, registered, len(names), robust, failure)

    backend.undistort(input_dir, model_dir, source)
    # The undistorter writes <s>/sparse/*.bin; the loaders expect <s>/sparse/0.
    sparse = os.path.join(source, "sparse")
    target = os.path.join(sparse, "0")
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(sparse):
        if name != "0":
            shutil.move(os.path.join(sparse, name), os.path.join(target, name))
    if resize:
        resize_images(source)
    print(f"Done: {source}/images and {target} (train with: python train.py -s {source})")
    return registered


def main(argv=None) -> int:
    parser = make_parser("Photos in <source>/input → an undistorted COLMAP dataset "
                         "(<source>/images, <source>/sparse/0)")
    parser.add_argument("--no_gpu", action="store_true", help="SIFT and matching on the CPU")
    parser.add_argument("--skip_matching", action="store_true",
                        help="reuse <source>/distorted (features, matches and model)")
    parser.add_argument("--source_path", "-s", required=True, type=str,
                        help="the folder holding input/ (the photos)")
    parser.add_argument("--camera", default="OPENCV", type=str,
                        help="COLMAP camera model of the photos")
    parser.add_argument("--colmap_executable", default="", type=str,
                        help="the colmap command to use (default: colmap on the PATH)")
    parser.add_argument("--resize", action="store_true",
                        help="also write images_2, images_4 and images_8")
    parser.add_argument("--magick_executable", default="", type=str,
                        help="accepted for compatibility; resizing uses Pillow")
    parser.add_argument("--robust_matching", action="store_true",
                        help="looser SIFT/mapper settings for small or wide-baseline photo sets")
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto: the colmap command if installed, else pycolmap")
    parser.add_argument("--video", default="", type=str,
                        help="take the photos from this video first: the sharpest frame of "
                             "each of --video_frames equal stretches, into <source>/input")
    parser.add_argument("--video_frames", default=DEFAULT_VIDEO_FRAMES, type=int,
                        help="how many photos --video takes")
    args = parser.parse_args(argv)
    if args.video_frames < 1:
        raise UsageError(f"--video_frames must be at least 1, not {args.video_frames}")
    convert(args.source_path, ConvertOptions(
        camera=args.camera, use_gpu=not args.no_gpu, skip_matching=args.skip_matching,
        resize=args.resize, colmap_executable=args.colmap_executable,
        robust=args.robust_matching, backend=args.backend, video=args.video,
        video_frames=args.video_frames))
    return 0


if __name__ == "__main__":
    run_main(main)

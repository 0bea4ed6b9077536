"""The original's import path for the COLMAP readers (they live in utils/colmap_loader.py, so
that utils/make_depth_scale.py can read COLMAP models without importing the scene layer)."""
from utils.colmap_loader import *  # noqa: F401,F403
from utils.colmap_loader import (CAMERA_MODEL_IDS, CAMERA_MODEL_NAMES,  # noqa: F401
                                 _BinaryReader)

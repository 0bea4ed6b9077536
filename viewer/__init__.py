"""Web viewer for training and trained models: a viser page whose frames come from our
rasterizer. `viewer.settings` is plain data; `viewer.server` (imported on first use of Viewer)
loads the web server."""
from .settings import (DEFAULT_IP, DEFAULT_MAX_RESOLUTION, DEFAULT_PORT, DEFAULT_RENDER_SHARE,
                       ViewerSettings)

__all__ = ["DEFAULT_IP", "DEFAULT_MAX_RESOLUTION", "DEFAULT_PORT", "DEFAULT_RENDER_SHARE",
           "Viewer", "ViewerSettings"]


def __getattr__(name):
    if name == "Viewer":
        from .server import Viewer
        return Viewer
    raise AttributeError(name)

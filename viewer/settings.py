"""The viewer's settings as plain data, importable without the web server.

`ViewerSettings`: where it listens and what it starts with (the command line's). `FrameSettings`:
what a frame is drawn with; an immutable snapshot that `SettingsBox` replaces whole, in one
assignment, so the render thread, which reads `box.current` once per frame, never sees half of an
update that viser's callback threads are making.
"""
import threading
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from arguments import DEFAULT_IP, DEFAULT_PORT

DEFAULT_RENDER_SHARE = 0.2  # while training, frames take at most this share of the time
DEFAULT_MAX_RESOLUTION = 1280  # frames are drawn at most this many pixels on their long side
RENDER_MODES = ("colour", "inverse depth")


@dataclass
class ViewerSettings:
    ip: str = DEFAULT_IP
    port: int = DEFAULT_PORT
    render_share: float = DEFAULT_RENDER_SHARE
    max_resolution: int = DEFAULT_MAX_RESOLUTION


@dataclass(frozen=True)
class FrameSettings:
    """Everything a frame depends on besides the camera and the model. `version` grows with
    every change, so a browser's frame is out of date when it was drawn with an older one."""
    mode: str = RENDER_MODES[0]
    background: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    max_resolution: int = DEFAULT_MAX_RESOLUTION
    render_share: float = DEFAULT_RENDER_SHARE
    show_cameras: bool = True
    # --train_test_exp: the photo whose trained exposure colours the frames (the dataset camera
    # last gone to; None: free view), and whether the page's box asks for it.
    exposure_photo: Optional[str] = None
    use_exposure: bool = True
    version: int = 0


class SettingsBox:
    """The current FrameSettings. Writers (any thread) replace it under a lock, so that two
    updates never lose each other's fields; readers take `current` without a lock."""

    def __init__(self, initial: FrameSettings):
        self._lock = threading.Lock()
        self.current = initial

    def update(self, **changes) -> FrameSettings:
        with self._lock:
            self.current = replace(self.current, version=self.current.version + 1, **changes)
            return self.current

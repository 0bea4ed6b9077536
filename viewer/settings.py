"""The viewer's address and frame budget (plain data, importable without the web server)."""
from dataclasses import dataclass

DEFAULT_IP = "127.0.0.1"  # the original's --ip: only this machine can connect unless asked
DEFAULT_PORT = 6009  # the original's --port
DEFAULT_RENDER_SHARE = 0.2  # while training, frames take at most this share of the time
DEFAULT_MAX_RESOLUTION = 1280  # frames are drawn at most this many pixels on their long side


@dataclass
class ViewerSettings:
    ip: str = DEFAULT_IP
    port: int = DEFAULT_PORT
    render_share: float = DEFAULT_RENDER_SHARE
    max_resolution: int = DEFAULT_MAX_RESOLUTION

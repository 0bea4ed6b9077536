"""The web viewer's wiring: a viser server (the browser library gsplat and nerfstudio use), its
page's controls, the connected browsers, and the render thread that sends them frames, for a
model being trained (train.py) or a saved one (view.py).

Threads: viser serves the page and calls our callbacks on its own threads; they only replace the
settings snapshot (settings.py) or note a browser's camera. One render thread draws frames
(frames.py) for connected browsers, reading the snapshot once per frame. The model is shared with
training through the ModelGate (gate.py), so a frame is never drawn while a training step changes
the Gaussians, and training never waits for a browser: without a page connected the render
thread sleeps.
"""
import io
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import viser
import viser.transforms as vtf
from PIL import Image

from scene.cameras import ViewCamera, camera_pose
from utils.system_utils import atomic_path
from .frames import frame_max_side, frame_pixels, frame_size, render_frame
from .gate import ModelGate
from .settings import RENDER_MODES, FrameSettings, SettingsBox, ViewerSettings

# A connection that closes before its HTTP request (a port probe, a browser tab closed while
# loading) is not an error worth a traceback in the training log.
logging.getLogger("websockets.server").setLevel(logging.CRITICAL)

STILL_AFTER_S = 0.25  # a camera unchanged this long is still: the next frame is full size
JPEG_QUALITY = 90
STATUS_EVERY_S = 0.5  # the training status in the page is refreshed at most this often
FRUSTUM_SCALE = 0.04  # frustum size as a fraction of the cameras' extent
GT_PREVIEW_WIDTH = 320


def port_is_free(ip: str, port: int) -> bool:
    """Whether (ip, port) can be bound now (viser itself would silently move to the next port)."""
    try:
        family = socket.getaddrinfo(ip, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, port))
        return True
    except OSError:
        return False


@dataclass
class TrainingStatus:
    iteration: int = 0
    iterations: int = 0
    loss: float = float("nan")
    gaussians: int = 0
    step_ms: float = float("nan")
    test_psnr: Optional[float] = None
    test_iteration: Optional[int] = None


@dataclass
class ClientState:
    camera_time: float = 0.0  # when its camera last changed
    drawn: tuple = ()  # what its last frame showed (camera, settings, model version, full size)
    frame: Optional[np.ndarray] = None  # its last full-size frame, [H, W, 3] uint8


class Viewer:
    """A viser server showing `gaussians` (a GaussianModel) drawn by our rasterizer.
    cameras: {"train": [...], "test": [...]} dataset Cameras shown as frustums; training: whether
    a training loop reports to it (status, pause) and shares the model through `gate`."""

    def __init__(self, gaussians, cameras: Dict[str, List], background: torch.Tensor, pipe,
                 model_path: str, settings: ViewerSettings, training: bool):
        self.gaussians, self.pipe, self.model_path = gaussians, pipe, model_path
        self.address, self.training = settings, training
        self.cameras = {f"{kind}/{cam.image_name}": cam
                        for kind, cams in cameras.items() for cam in cams}
        self.gate = ModelGate()
        self.status = TrainingStatus()
        self.model_version = 0
        self.settings = SettingsBox(FrameSettings(
            background=tuple(float(v) for v in background.cpu()),
            max_resolution=settings.max_resolution, render_share=settings.render_share))
        self._resumed = threading.Event()  # cleared while the page's pause is on
        self._resumed.set()
        self._clients: Dict[int, ClientState] = {}
        self._clients_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_status = 0.0

        self.server = viser.ViserServer(host=settings.ip, port=settings.port, verbose=False)
        try:
            self.server.gui.configure_theme(control_width="medium", show_logo=False)
            self._build_gui()
            self._add_frustums()
            self.server.on_client_connect(self._on_connect)
            self.server.on_client_disconnect(self._on_disconnect)
            self._thread = threading.Thread(target=self._render_loop, name="viewer-render",
                                            daemon=True)
            self._thread.start()
        except BaseException:
            # The server already listens (its thread would keep the process alive): a Ctrl-C
            # or an error while the page is being set up must close it.
            self.server.stop()
            raise

    @classmethod
    def start(cls, *args, settings: ViewerSettings, **kwargs) -> Optional["Viewer"]:
        """The viewer, or None with one warning line when its port is taken."""
        if not port_is_free(settings.ip, settings.port):
            print(f"warning: viewer not started: {settings.ip}:{settings.port} is in use "
                  f"(choose another with --port, or --disable_viewer)")
            return None
        viewer = cls(*args, settings=settings, **kwargs)
        try:
            if viewer.server.get_port() != settings.port:  # taken between the check and bind
                viewer.stop()
                print(f"warning: viewer not started: {settings.ip}:{settings.port} is in use")
                return None
            print(f"Viewer: {viewer.url}")
        except BaseException:  # Ctrl-C here: nobody else would close the server
            viewer.stop()
            raise
        return viewer

    @property
    def url(self) -> str:
        return f"http://{self.address.ip}:{self.server.get_port()}"

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.server.stop()

    # --- what the training loop calls ----------------------------------------------------------
    def model_changed(self) -> None:
        self.model_version += 1

    def report(self, **values) -> None:
        """Training status (iteration, iterations, loss, gaussians, step_ms, test_psnr,
        test_iteration), shown in the page at most every STATUS_EVERY_S."""
        for key, value in values.items():
            setattr(self.status, key, value)
        now = time.monotonic()
        if now - self._last_status >= STATUS_EVERY_S or values.get("test_psnr") is not None:
            self._last_status = now
            self._status_text.content = self._status_markdown()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def wait_while_paused(self, should_stop: Callable[[], bool]) -> None:
        """Block while the page's pause is on; every quarter second it checks `should_stop` (a
        Ctrl-C, whose handler runs on this thread only between waits)."""
        while not self._resumed.wait(0.25):
            if should_stop() or self._stop.is_set():
                return

    # --- page ----------------------------------------------------------------------------------
    def _status_markdown(self) -> str:
        s = self.status
        if not self.training:
            return f"**{self.gaussians.num_points:,}** Gaussians, SH degree " \
                   f"{self.gaussians.active_sh_degree}"
        psnr = (f"{s.test_psnr:.2f} dB (iteration {s.test_iteration})"
                if s.test_psnr is not None else "not yet")
        state = " (paused)" if self.paused else ""
        return (f"**Iteration** {s.iteration:,} / {s.iterations:,}{state}  \n"
                f"**Loss** {s.loss:.5f}  \n**Gaussians** {s.gaussians:,}  \n"
                f"**Step** {s.step_ms:.1f} ms  \n**Test PSNR** {psnr}")

    def _build_gui(self) -> None:
        gui = self.server.gui
        self._status_text = gui.add_markdown(self._status_markdown())
        if self.training:
            self._pause = gui.add_button("Pause training")
            self._pause.on_click(lambda _: self._toggle_pause())
            self._share = gui.add_slider("Viewer CPU share", min=0.05, max=0.9, step=0.05,
                                         initial_value=self.settings.current.render_share)
            self._share.on_update(lambda _: self._set(render_share=float(self._share.value)))
        initial = self.settings.current
        with gui.add_folder("View"):
            self._mode = gui.add_dropdown("Render mode", RENDER_MODES, initial_value=initial.mode)
            self._mode.on_update(lambda _: self._set(mode=self._mode.value))
            self._bg = gui.add_rgb("Background",
                                   tuple(int(round(255 * v)) for v in initial.background))
            self._bg.on_update(lambda _: self._set(
                background=tuple(c / 255.0 for c in self._bg.value)))
            self._resolution = gui.add_slider("Max resolution", min=64, max=4096, step=16,
                                              initial_value=initial.max_resolution)
            self._resolution.on_update(lambda _: self._set(
                max_resolution=int(self._resolution.value)))
            self._show_cameras = gui.add_checkbox("Show cameras", initial_value=True)
            self._show_cameras.on_update(lambda _: self._toggle_frustums())
            self._save = gui.add_button("Save view as PNG")
            self._save.on_click(lambda event: self._save_view(event.client))
        with gui.add_folder("Dataset cameras"):
            names = ["(free view)"] + list(self.cameras)
            self._goto = gui.add_dropdown("Go to camera", names, initial_value=names[0])
            self._goto.on_update(lambda event: self._goto_selected(event.client))
            self._gt = gui.add_image(np.zeros((8, 8, 3), np.uint8), label="Ground truth",
                                     visible=False)
            # Models trained with --train_test_exp: frames at a dataset camera can carry that
            # photo's trained exposure (what render.py does), so they compare with the photo.
            self._use_exposure = gui.add_checkbox(
                "Apply the photo's exposure", initial_value=True,
                visible=self.gaussians.exposures is not None)
            self._use_exposure.on_update(lambda _: self._set(
                use_exposure=bool(self._use_exposure.value)))

    def _set(self, **changes) -> None:
        """A new settings snapshot; every browser's frame is out of date: draw them again."""
        self.settings.update(**changes)
        self._wake.set()

    def _toggle_pause(self) -> None:
        if self.paused:
            self._resumed.set()
            self._pause.label = "Pause training"
        else:
            self._resumed.clear()
            self._pause.label = "Resume training"
        self._status_text.content = self._status_markdown()

    def _add_frustums(self) -> None:
        cams = list(self.cameras.values())
        if not cams:
            self._frustums = []
            return
        centres = np.stack([camera_pose(c)[1] for c in cams])
        extent = float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) or 1.0
        self._frustums = []
        for name, cam in self.cameras.items():
            R, centre = camera_pose(cam)
            colour = (30, 110, 230) if name.startswith("train/") else (230, 110, 30)
            handle = self.server.scene.add_camera_frustum(
                f"/cameras/{name}", fov=float(cam.FoVy),
                aspect=cam.image_width / cam.image_height, scale=FRUSTUM_SCALE * extent,
                thickness=0.002 * extent, color=colour,
                wxyz=vtf.SO3.from_matrix(R).wxyz, position=centre)
            handle.on_click(lambda event, name=name: self._go_to(event.client, name))
            self._frustums.append(handle)

    def _toggle_frustums(self) -> None:
        for handle in self._frustums:
            handle.visible = bool(self._show_cameras.value)
        self._set(show_cameras=bool(self._show_cameras.value))

    def _goto_selected(self, client) -> None:
        if self._goto.value not in self.cameras:  # "(free view)"
            self._set(exposure_photo=None)
        elif client is not None:
            self._go_to(client, self._goto.value)

    def _go_to(self, client, name: str, show_photo: bool = True) -> None:
        """Move this browser's view onto dataset camera `name` and show its photo."""
        cam = self.cameras[name]
        self._set(exposure_photo=cam.image_name)
        R, centre = camera_pose(cam)
        with client.atomic():
            client.camera.up_direction = -R[:, 1]
            client.camera.fov = float(cam.FoVy)
            client.camera.position = centre
            client.camera.look_at = centre + R[:, 2]
            client.camera.wxyz = vtf.SO3.from_matrix(R).wxyz
        if not show_photo:
            return
        photo = cam.original_image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
        photo = Image.fromarray(photo.cpu().numpy())
        if photo.width > GT_PREVIEW_WIDTH:
            photo = photo.resize((GT_PREVIEW_WIDTH,
                                  round(photo.height * GT_PREVIEW_WIDTH / photo.width)))
        self._gt.image = np.asarray(photo)
        self._gt.label = f"Ground truth: {name}"
        self._gt.visible = True

    # --- clients -------------------------------------------------------------------------------
    def _on_connect(self, client) -> None:
        with self._clients_lock:
            self._clients[client.client_id] = ClientState(camera_time=time.monotonic())
        placed = threading.Event()

        @client.camera.on_update
        def _(_camera) -> None:
            # The first message carries the browser's camera; then the view starts at the
            # first dataset camera, so the model is in sight.
            if not placed.is_set():
                placed.set()
                first = next(iter(self.cameras), None)
                if first is not None:
                    self._go_to(client, first, show_photo=False)
            with self._clients_lock:
                state = self._clients.get(client.client_id)
                if state is not None:
                    state.camera_time = time.monotonic()
            self._wake.set()

    def _on_disconnect(self, client) -> None:
        with self._clients_lock:
            self._clients.pop(client.client_id, None)

    # --- frames --------------------------------------------------------------------------------
    def _view_of(self, client, max_side: int) -> ViewCamera:
        cam = client.camera
        width, height = frame_size(cam.image_width, cam.image_height, max_side)
        R = vtf.SO3(np.asarray(cam.wxyz)).as_matrix()
        return ViewCamera(R, np.asarray(cam.position), float(cam.fov), width, height,
                          device=self.gaussians.device)

    def draw(self, view, settings: Optional[FrameSettings] = None) -> np.ndarray:
        """[H, W, 3] uint8 frame of `view` with the settings (default: the current ones),
        drawn while the viewer holds the model."""
        settings = settings or self.settings.current
        with self.gate.viewer():  # held for the render only, not the conversion to bytes
            shown = render_frame(self.gaussians, view, self.pipe, settings)
        return frame_pixels(shown, settings)

    def _next_job(self):
        """(client, full size, key) of a browser whose frame is out of date, or None."""
        now = time.monotonic()
        with self._clients_lock:
            states = list(self._clients.items())
        for client_id, state in states:
            client = self.server.get_clients().get(client_id)
            if client is None or not client.camera.image_width:
                continue
            try:
                camera_key = (tuple(client.camera.wxyz), tuple(client.camera.position),
                              client.camera.fov, client.camera.image_width,
                              client.camera.image_height)
            except AssertionError:  # no camera message from this browser yet
                continue
            full = now - state.camera_time >= STILL_AFTER_S
            settings = self.settings.current  # one snapshot for the key and the frame
            key = (camera_key, settings.version, self.model_version, full)
            if key != state.drawn:
                return client, state, settings, full, key
        return None

    def _render_loop(self) -> None:
        while not self._stop.is_set():
            job = self._next_job()
            if job is None:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            client, state, settings, full, key = job
            started = time.perf_counter()
            try:
                frame = self.draw(self._view_of(client, frame_max_side(settings, full)),
                                  settings)
                client.scene.set_background_image(frame, format="jpeg",
                                                  jpeg_quality=JPEG_QUALITY)
            except Exception as exc:  # a browser that left mid-frame, a closing server
                if self._stop.is_set():
                    return
                print(f"warning: viewer frame failed: {exc}")
                time.sleep(0.5)
                continue
            state.drawn = key
            if full:
                state.frame = frame
            spent = time.perf_counter() - started
            if self.training and not self.paused:
                # Bounded share: after a frame of t seconds, training gets t·(1 − s)/s.
                share = min(max(settings.render_share, 0.01), 1.0)
                self._stop.wait(spent * (1.0 - share) / share)

    def _save_view(self, client) -> None:
        """Draw this browser's view at full size, write it under <model>/viewer/ and offer it
        as a download."""
        if client is None:
            return
        frame = self.draw(self._view_of(client, self.settings.current.max_resolution))
        folder = os.path.join(self.model_path, "viewer")
        os.makedirs(folder, exist_ok=True)
        name = time.strftime("view_%Y%m%d_%H%M%S.png")
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        with atomic_path(os.path.join(folder, name)) as tmp:
            with open(tmp, "wb") as f:
                f.write(buffer.getvalue())
        client.send_file_download(name, buffer.getvalue(), save_immediately=True)
        client.add_notification(title="Saved", body=os.path.join(folder, name),
                                auto_close_seconds=5.0)

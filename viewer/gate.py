"""The hand-over of the Gaussians between the training loop and the viewer's render thread.

Training holds the gate for each step, the viewer for each frame, so a frame is never drawn
while a step changes (or replaces) the model. A viewer waiting for it goes first when the current
step ends (a plain lock would let the training loop take it back at once, every time). Both sides
sleep on one threading.Condition until the gate is theirs: nothing polls.
"""
import threading
from contextlib import contextmanager


class ModelGate:
    def __init__(self):
        self._changed = threading.Condition()
        self._held = False
        self._viewers_waiting = 0

    @contextmanager
    def training(self):
        """One training step's hold; waits while the viewer holds it or waits for it."""
        with self._changed:
            self._changed.wait_for(lambda: not self._held and self._viewers_waiting == 0)
            self._held = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def viewer(self):
        """One frame's hold: the next one after the current step."""
        with self._changed:
            self._viewers_waiting += 1
            try:
                self._changed.wait_for(lambda: not self._held)
            finally:
                self._viewers_waiting -= 1
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()

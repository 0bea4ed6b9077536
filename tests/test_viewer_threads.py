"""The viewer's threads: settings snapshots are never seen half-updated, and the hand-over of
the model between training and the render thread sleeps instead of polling."""
import threading
import time

from viewer.gate import ModelGate
from viewer.settings import FrameSettings, SettingsBox

WRITERS = 8
UPDATES_PER_WRITER = 2000


def test_many_writers_one_reader_every_snapshot_is_consistent():
    """Each writer sets all its fields from one number; the reader must never see fields from
    two different updates in one snapshot, and no update may be lost."""
    box = SettingsBox(FrameSettings())
    done = threading.Event()
    seen, bad = [], []

    def write(writer):
        for k in range(UPDATES_PER_WRITER):
            value = writer * UPDATES_PER_WRITER + k
            box.update(max_resolution=value, background=(value, value, value),
                       render_share=float(value), exposure_photo=str(value))

    def read():
        while not done.is_set():
            s = box.current
            values = {s.max_resolution, *s.background, int(s.render_share),
                      int(s.exposure_photo or 0)}
            if s.version and len(values) != 1:
                bad.append(s)
            seen.append(s.version)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not bad, bad[:3]
    assert box.current.version == WRITERS * UPDATES_PER_WRITER  # no update lost
    assert seen == sorted(seen)  # versions never go back


def cpu_seconds_while_waiting(gate: ModelGate, waiter: str, hold_s: float = 0.6) -> float:
    """The other side holds the gate for hold_s; returns the CPU time the waiting thread spent
    until it got the gate."""
    holder = "viewer" if waiter == "training" else "training"
    held, result = threading.Event(), {}

    def hold():
        with getattr(gate, holder)():
            held.set()
            time.sleep(hold_s)

    def wait():
        held.wait()
        start_cpu, start = time.thread_time(), time.monotonic()
        with getattr(gate, waiter)():
            result["cpu"] = time.thread_time() - start_cpu
            result["wall"] = time.monotonic() - start

    threads = [threading.Thread(target=hold), threading.Thread(target=wait)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert result["wall"] > 0.8 * hold_s - 0.05  # it did wait for the holder
    return result["cpu"]


def test_the_hand_over_sleeps_instead_of_polling():
    gate = ModelGate()
    # A poll loop (sleep(0.001) and a check) spends tens of ms of CPU in 0.6 s; a wait on a
    # condition spends next to none.
    assert cpu_seconds_while_waiting(gate, "training") < 0.02
    assert cpu_seconds_while_waiting(gate, "viewer") < 0.02


def test_a_waiting_viewer_goes_before_the_next_training_step():
    gate = ModelGate()
    order = []
    step_started = threading.Event()

    def viewer():
        step_started.wait()
        with gate.viewer():
            order.append("frame")

    thread = threading.Thread(target=viewer)
    thread.start()
    with gate.training():
        step_started.set()
        time.sleep(0.2)  # the viewer asks during this step
        order.append("step 1")
    with gate.training():
        order.append("step 2")
    thread.join(5)
    assert order == ["step 1", "frame", "step 2"]


def test_no_thread_sleeps_inside_the_gate():
    """A training step asks for the gate while a viewer waits for it and another step holds it
    (the case a poll loop would spin in): no call to time.sleep is made from the gate's code."""
    import sys
    gate = ModelGate()
    sleeps_in_gate = []

    def profiler(frame, event, arg):
        if event == "c_call" and arg is time.sleep and frame.f_code.co_filename.endswith(
                "gate.py"):
            sleeps_in_gate.append(frame.f_code.co_name)

    viewer_waiting = threading.Event()
    order = []

    def viewer():
        viewer_waiting.set()
        with gate.viewer():
            order.append("frame")

    def second_step():
        with gate.training():
            order.append("step 2")

    threading.setprofile(profiler)
    sys.setprofile(profiler)
    try:
        with gate.training():
            order.append("step 1")
            v = threading.Thread(target=viewer)
            v.start()
            viewer_waiting.wait()
            time.sleep(0.1)
            t = threading.Thread(target=second_step)
            t.start()
            time.sleep(0.1)
        v.join(5)
        t.join(5)
    finally:
        threading.setprofile(None)
        sys.setprofile(None)
    assert order == ["step 1", "frame", "step 2"]
    assert not sleeps_in_gate

"""What a training run records for people: a curve PNG (loss, PSNR, Gaussian count) and JSON."""
import json
import os

from utils.system_utils import atomic_path, write_text_atomic


class TrainingLog:
    def __init__(self, history=None):
        # Plain lists of numbers so a checkpoint can carry them (torch.load weights_only).
        self.history = history or {"iteration": [], "loss": [], "num_points": [],
                                    "seconds_per_iteration": [], "eval_iteration": [],
                                    "test_psnr": [], "train_psnr": []}

    def record_step(self, iteration: int, loss: float, num_points: int,
                    seconds_per_iteration: float) -> None:
        """seconds_per_iteration: mean wall time of the iterations since the previous record
        (training only: evaluation and saving excluded)."""
        self.history["iteration"].append(iteration)
        self.history["loss"].append(loss)
        self.history["num_points"].append(num_points)
        self.history["seconds_per_iteration"].append(seconds_per_iteration)

    def record_eval(self, iteration: int, test_psnr, train_psnr) -> None:
        self.history["eval_iteration"].append(iteration)
        self.history["test_psnr"].append(test_psnr)
        self.history["train_psnr"].append(train_psnr)

    def write(self, model_path: str) -> str:
        """training_log.json and training_curve.png in model_path; returns the PNG's path."""
        write_text_atomic(os.path.join(model_path, "training_log.json"),
                          json.dumps(self.history))
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        h = self.history
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(h["iteration"], h["loss"])
        axes[0].set(title="training loss (EMA)", xlabel="iteration", yscale="log")
        for key, label in (("train_psnr", "train"), ("test_psnr", "test")):
            points = [(i, v) for i, v in zip(h["eval_iteration"], h[key]) if v is not None]
            if points:
                axes[1].plot(*zip(*points), marker="o", label=label)
        axes[1].set(title="PSNR (dB)", xlabel="iteration")
        if h["eval_iteration"]:
            axes[1].legend()
        axes[2].plot(h["iteration"], h["num_points"])
        axes[2].set(title="Gaussians", xlabel="iteration")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(model_path, "training_curve.png")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        return path

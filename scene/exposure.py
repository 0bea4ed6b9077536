"""Per-image exposure compensation (the 2024 original's --train_test_exp): a 3×4 affine colour
transform E per training image, applied to the rendered image, trained with its own Adam and
learning-rate schedule, saved as exposure.json beside each saved iteration's parent folder.

    image' = E[:, :3] · image + E[:, 3]     (per pixel, colours as column vectors)
"""
import json
from typing import Dict, List, Optional

import torch
from torch import nn

from utils.errors import DatasetError
from utils.general_utils import get_expon_lr_func
from utils.system_utils import write_text_atomic



def apply_exposure(image: torch.Tensor, exposure: torch.Tensor) -> torch.Tensor:
    """image [3, H, W], exposure [3, 4] → [3, H, W] (the original's
    (image.permute(1, 2, 0) @ E[:3, :3]).permute(2, 0, 1) + E[:3, 3])."""
    return (image.permute(1, 2, 0) @ exposure[:3, :3]).permute(2, 0, 1) \
        + exposure[:3, 3, None, None]


class Exposures:
    """The trainable exposures of the training images (by image name), or exposures read back
    from exposure.json for rendering (`pretrained`)."""

    def __init__(self, names: List[str], device="cpu"):
        self.mapping = {name: i for i, name in enumerate(names)}
        identity = torch.eye(3, 4, device=device)[None].repeat(len(names), 1, 1)
        self._exposure = nn.Parameter(identity.requires_grad_(True))
        self.optimizer = None
        self.scheduler = None
        self.pretrained: Optional[Dict[str, torch.Tensor]] = None

    @classmethod
    def from_file(cls, path: str, device="cpu") -> "Exposures":
        try:
            with open(path) as f:
                values = json.load(f)
            pretrained = {name: torch.tensor(m, dtype=torch.float32, device=device)
                          for name, m in values.items()}
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetError(path, f"not a readable exposure file ({exc})") from None
        if any(m.shape != (3, 4) for m in pretrained.values()):
            raise DatasetError(path, "every exposure must be a 3x4 matrix")
        exposures = cls([], device)
        exposures.pretrained = pretrained
        return exposures

    def training_setup(self, opt) -> None:
        # Adam with torch's defaults (eps 1e-8), as the original's exposure optimizer.
        self.optimizer = torch.optim.Adam([self._exposure], lr=opt.exposure_lr_init)
        self.scheduler = get_expon_lr_func(opt.exposure_lr_init, opt.exposure_lr_final,
                                           lr_delay_steps=opt.exposure_lr_delay_steps,
                                           lr_delay_mult=opt.exposure_lr_delay_mult,
                                           max_steps=opt.iterations)

    def update_learning_rate(self, iteration: int) -> None:
        if self.optimizer is not None and self.pretrained is None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.scheduler(iteration)

    def step(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def matrix(self, name: str) -> Optional[torch.Tensor]:
        """[3, 4] exposure of image `name`, or None for an image without one."""
        if self.pretrained is not None:
            return self.pretrained.get(name)
        index = self.mapping.get(name)
        return None if index is None else self._exposure[index]

    def apply(self, image: torch.Tensor, name: str) -> torch.Tensor:
        exposure = self.matrix(name)
        return image if exposure is None else apply_exposure(image, exposure)

    # --- files and checkpoints -----------------------------------------------------------------
    def as_dict(self) -> Dict[str, list]:
        if self.pretrained is not None:
            return {name: m.tolist() for name, m in self.pretrained.items()}
        return {name: self._exposure[i].detach().cpu().tolist()
                for name, i in self.mapping.items()}

    def save(self, path: str) -> None:
        """exposure.json (the model folder names it: utils/model_folder.py)."""
        write_text_atomic(path, json.dumps(self.as_dict(), indent=1))

    def state_dict(self) -> dict:
        return {"names": list(self.mapping), "exposure": self._exposure.detach().clone(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None}

    def load_state_dict(self, state: dict, path: str) -> None:
        if list(state["names"]) != list(self.mapping):
            raise DatasetError(path, "its exposures are for other training images")
        with torch.no_grad():
            self._exposure.copy_(state["exposure"])
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])

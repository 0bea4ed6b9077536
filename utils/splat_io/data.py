"""SplatData (the raw parameters every codec reads and writes) and the numeric helpers the
quantising codecs share."""
from dataclasses import dataclass, fields

import numpy as np

# f_rest coefficient signs under the flip of the y and z axes, (x, y, z) → (x, −y, −z), in the
# original's SH order (degree 1: y, z, x; degree 2: xy, yz, 3z²−1, xz, x²−y²; degree 3: y(3x²−y²),
# xyz, y(5z²−1), z(5z²−3), x(5z²−1), z(x²−y²), x(x²−3y²)): −1 where the basis function is odd in
# y and z together.
YZ_FLIP_SH_SIGNS = np.array([-1, -1, 1,
                             -1, 1, 1, -1, 1,
                             -1, 1, -1, -1, 1, -1, 1], dtype=np.float32)


@dataclass
class SplatData:
    """N Gaussians as trained: xyz [N, 3], f_dc [N, 3] (SH DC per channel), f_rest [N, K, 3]
    (K = (degree + 1)² − 1 coefficients per channel, the model's layout), opacity [N] (logit),
    scale [N, 3] (log), rotation [N, 4] (w, x, y, z, not necessarily unit). float32."""
    xyz: np.ndarray
    f_dc: np.ndarray
    f_rest: np.ndarray
    opacity: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray

    def __post_init__(self):
        for field in fields(self):
            setattr(self, field.name, np.ascontiguousarray(getattr(self, field.name),
                                                           dtype=np.float32))
        n = len(self.xyz)
        shapes = {"xyz": (n, 3), "f_dc": (n, 3), "opacity": (n,), "scale": (n, 3),
                  "rotation": (n, 4)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"SplatData.{name} has shape {getattr(self, name).shape}, "
                                 f"expected {shape}")
        if self.f_rest.ndim != 3 or self.f_rest.shape[0] != n or self.f_rest.shape[2] != 3:
            raise ValueError(f"SplatData.f_rest has shape {self.f_rest.shape}, expected "
                             f"({n}, K, 3)")
        if self.f_rest.shape[1] not in (0, 3, 8, 15):
            raise ValueError(f"SplatData.f_rest has {self.f_rest.shape[1]} coefficients per "
                             f"channel: no SH degree 0-3")

    def __len__(self) -> int:
        return len(self.xyz)

    @property
    def sh_degree(self) -> int:
        return {0: 0, 3: 1, 8: 2, 15: 3}[self.f_rest.shape[1]]

    def take(self, index) -> "SplatData":
        """The Gaussians at `index` (an index array or boolean mask), in that order."""
        return SplatData(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def with_sh_degree(self, degree: int) -> "SplatData":
        """Bands above `degree` dropped, or missing bands added as zeros (the colour a model
        without them shows)."""
        k = (degree + 1) ** 2 - 1
        rest = self.f_rest[:, :k]
        if rest.shape[1] < k:
            rest = np.concatenate(
                [rest, np.zeros((len(self), k - rest.shape[1], 3), np.float32)], axis=1)
        return SplatData(self.xyz, self.f_dc, rest, self.opacity, self.scale, self.rotation)

    def flip_yz(self) -> "SplatData":
        """The same scene with the y and z axes reversed (COLMAP's right-down-forward ↔
        OpenGL's right-up-back): positions, rotations (conjugation by a half turn about x:
        (w, x, −y, −z)) and view-dependent colour; scales and DC colour are unchanged. Its own
        inverse."""
        flip = np.array([1, -1, -1], np.float32)
        rest = self.f_rest * YZ_FLIP_SH_SIGNS[:self.f_rest.shape[1], None]
        return SplatData(self.xyz * flip, self.f_dc, rest, self.opacity, self.scale,
                         self.rotation * np.array([1, 1, -1, -1], np.float32))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Inverse sigmoid, with p kept eps away from 0 and 1 (an 8-bit alpha of 0 or 255 would
    give ±inf)."""
    p = np.clip(p.astype(np.float64), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def unit_quaternions(q: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows become the identity, w = 1)."""
    q = q.astype(np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    out = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), 0.0)
    out[norm[:, 0] == 0, 0] = 1.0
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round to nearest and clamp to 0..255."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)

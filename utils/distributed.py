"""Data-parallel training over torch.distributed: every rank holds the whole model, renders its
share of a batch's views, and the gradients and the views' densification records are exchanged
before the optimizer step, so that every rank applies the same update and the replicas stay
identical. gloo on CPU tensors (also across machines over TCP), NCCL on CUDA. Started by
torchrun (RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT in the environment); without it
a single process is a group of one and nothing is exchanged.
"""
import datetime
import hashlib
import os
import signal
from typing import List

import torch

from .errors import ReportedError


RESUME_ADVICE = ("the checkpoints already written are kept and resume with any number of "
                 "processes at the same --batch_size")


class RankLost(ReportedError):
    """A collective failed: another rank died, hung past the timeout, or the network broke."""
    exit_code = 4

    def __init__(self, what: str, exc):
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        first_line = first_line.split(". ")[0]  # gloo appends advice; its first sentence says it
        super().__init__(f"distributed training stopped during {what}: another process ended or "
                         f"did not answer ({first_line}); {RESUME_ADVICE}")


def _stopped_by_launcher(signum, frame):
    # torchrun ends the remaining processes with SIGTERM once one of them has died.
    raise RankLost("training", "torchrun stopped this process after another one ended")


class Group:
    """This process's place in the job: rank, world size, and the collectives training uses."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_world_size: int = 1):
        self.rank, self.world_size, self.local_world_size = rank, world_size, local_world_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def my_views(self, count: int) -> List[int]:
        """Positions in a batch of `count` views this rank renders (round robin)."""
        return list(range(self.rank, count, self.world_size))

    def sum_gradients(self, params: List[torch.Tensor]) -> None:
        """Sum every parameter's .grad over the ranks (missing gradients count as zero), as one
        flat buffer: one all-reduce per step."""
        if not self.distributed:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self._all_reduce(flat, "the gradient all-reduce")
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def gather_views(self, local: torch.Tensor) -> List[torch.Tensor]:
        """local: [k, ...] this rank's view records (k = its share of the batch). Returns every
        rank's records, in batch order (view j comes from rank j % world_size)."""
        if not self.distributed:
            return list(local)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        try:
            torch.distributed.all_gather(gathered, local.contiguous())
        except RuntimeError as exc:
            raise RankLost("the exchange of densification records", exc) from None
        count = sum(g.shape[0] for g in gathered)
        return [gathered[j % self.world_size][j // self.world_size] for j in range(count)]

    def same_on_every_rank(self, tensors: List[torch.Tensor]) -> bool:
        """Whether every rank holds bit-identical `tensors` (compares a SHA-256 of their bytes)."""
        if not self.distributed:
            return True
        digest = hashlib.sha256()
        for t in tensors:
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        mine = torch.tensor([int.from_bytes(digest.digest()[:8], "little", signed=True)])
        everyone = [torch.empty_like(mine) for _ in range(self.world_size)]
        try:
            torch.distributed.all_gather(everyone, mine)
        except RuntimeError as exc:
            raise RankLost("the replica check", exc) from None
        return all(bool((e == mine).all()) for e in everyone)

    def barrier(self, what: str) -> None:
        if self.distributed:
            try:
                torch.distributed.barrier()
            except RuntimeError as exc:
                raise RankLost(what, exc) from None

    def _all_reduce(self, tensor, what, op=None):
        try:
            torch.distributed.all_reduce(tensor, op=op or torch.distributed.ReduceOp.SUM)
        except RuntimeError as exc:
            raise RankLost(what, exc) from None

    def close(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def join(device: str, timeout_s: float, threads: int = 0) -> Group:
    """The group torchrun's environment describes (a group of one without torchrun). Sets the
    threads per rank: `threads`, or the cores divided among this machine's ranks."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        if threads > 0:
            torch.set_num_threads(threads)
        return Group()
    rank = int(os.environ["RANK"])
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    torch.set_num_threads(threads if threads > 0
                          else max(1, (os.cpu_count() or 1) // local_world_size))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend,
                                         timeout=datetime.timedelta(seconds=timeout_s))
    signal.signal(signal.SIGTERM, _stopped_by_launcher)
    return Group(rank, world_size, local_world_size)

"""Data-parallel training with PyTorch's own engine (``torch.distributed``).

A run started by ``torchrun --nproc-per-node N -m molgen train ...`` (or
``molgen train --nproc N``, which launches exactly that) has one process per
rank. Every rank prepares the same data (same seed), builds the same model
and takes its contiguous share of each step's *global* batch; gradients are
averaged by :class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA,
gloo on CPU). Because the global batch at a step is a pure function of (data,
seed, step) (:class:`~molgen.train.data.SeededBatches`) and a checkpoint
holds only global state (weights, optimizer, step), a run resumes with any
world size and follows the same trajectory. Rank 0 alone writes the log,
checkpoints and the final model.

Why not Lightning Fabric: the trainer already has exact resume, safetensors
checkpoints and its own schedule; DDP plus a process group is the part
Fabric would add, and it is a few lines of torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from molgen.core.errors import MolgenError
from molgen.core.outputs import LOCK_HELD_ENV



@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistributedContext":
        """From the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
        try:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError as exc:
            raise MolgenError(f"bad torchrun environment: {exc}") from None

    def device(self, requested: torch.device) -> torch.device:
        """The rank's device: ``cuda:LOCAL_RANK`` when the run is on CUDA, else the requested one."""
        if self.enabled and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo otherwise); a no-op for one process."""
        if not self.enabled or torch.distributed.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def all_reduce_sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Sum floats over ranks (returned unchanged for one process)."""
        if not self.enabled:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            torch.distributed.barrier()

    def shutdown(self) -> None:
        """Leave the process group."""
        if self.enabled and torch.distributed.is_initialized():
            try:
                # Every rank arrives before any tears gloo down: a rank that left while its peer still
                # used the connections aborted at exit once ("terminate called without an active exception").
                torch.distributed.barrier()
            finally:
                torch.distributed.destroy_process_group()


def shard(rows: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """A rank's contiguous share of a global batch's rows (shares differ by at most one row)."""
    return np.array_split(np.asarray(rows), world_size)[rank]


def micro_batches(rows: np.ndarray, size: int | None) -> list[np.ndarray]:
    """Rows split into pieces of at most ``size`` (gradient accumulation; None: one piece)."""
    if size is None or len(rows) <= size:
        return [rows]
    return np.array_split(rows, -(-len(rows) // size))


class LossModule(torch.nn.Module):
    """``forward(batch) = model.loss(batch)``: what DistributedDataParallel wraps,
    since backbones expose a loss rather than a forward pass."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.loss(batch)


def without_option(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (e.g. ``--nproc`` before relaunching per rank)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == name:
            skip = True
        elif not item.startswith(name + "="):
            out.append(item)
    return out


def relaunched(args, what: str, out_dir: str | None = None) -> bool:
    """Handle a command's ``--nproc``: with N > 1 outside torchrun, run the
    same command under torchrun with N processes and return True (the caller
    is done); return False when this process should do the work itself.

    Args:
        args: The parsed command line (``nproc`` and ``argv``).
        what: The work, for the failure message ("training", "sampling").
        out_dir: The run directory this process already holds, if any.

    Raises:
        MolgenError: N < 1, or torchrun failed.
    """
    if args.nproc < 1:
        raise MolgenError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc == 1 or "WORLD_SIZE" in os.environ:
        return False
    code = launch(without_option(args.argv, "--nproc"), args.nproc, out_dir)
    if code != 0:
        raise MolgenError(f"distributed {what} failed (torchrun exit code {code}); the messages above name the rank")
    return True


def launch(argv: Sequence[str], nproc: int, out_dir: str | None = None) -> int:
    """Run ``molgen <argv>`` under torchrun with ``nproc`` processes on this machine.

    Args:
        argv: The command's arguments without ``--nproc``.
        nproc: Processes (one per GPU, or CPU processes with gloo).
        out_dir: The run directory this (launching) process already holds, if any.

    Returns:
        torchrun's exit code.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "molgen", *argv]
    env = dict(os.environ)
    if out_dir is not None:
        env[LOCK_HELD_ENV] = os.path.abspath(out_dir)
    return subprocess.call(command, env=env)

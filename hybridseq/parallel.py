"""Data-parallel training with PyTorch's own engine: ``torchrun`` starts the processes and
``DistributedDataParallel`` averages the gradients; this module is the glue.

    torchrun --nproc-per-node 2 -m hybridseq train demo --out runs/ddp
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \
        -m hybridseq train CONFIG ...

Each process is a rank of a ``World`` read from torchrun's environment (gloo on CPU, nccl on
CUDA with one GPU per process, ``LOCAL_RANK``). Every rank draws the same global batches in the
same order as one process would, and trains on its stride of each (``shard``). Each rank's loss
is scaled so that DDP's mean of the ranks' gradients is the gradient of the whole batch's mean
over its target positions: a step is the same step whatever the world size. After each step
one small all-reduce shares rank 0's clock and any rank's stop request (Ctrl-C, SIGTERM,
``max_minutes``), so all ranks stop together; rank 0 validates, logs and saves. A checkpoint
holds no per-rank state, so ``--resume`` works with another world size.

``train.processes: N`` is a shortcut for torchrun on one machine: it starts the same N ranks
through ``torch.distributed.launcher`` (the library behind torchrun) and returns rank 0's
result.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hybridseq.config import Config, ConfigError


@dataclass(frozen=True)
class StepSync:
    """What every rank knows after a step: rank 0's clock and whether any rank asked to stop."""

    seconds: float
    time_up: bool
    signum: int  # a stop signal a rank received (0: none)


@dataclass
class World:
    """This process's place among the data-parallel ranks; ``World()`` is one process alone,
    for which every exchange is the identity."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def lead(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> World:
        """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK),
        its process group started (gloo on CPU, nccl on CUDA); one process alone without."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        world = cls(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return world

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (``LOCAL_RANK``) on CUDA."""
        if device.type == "cuda" and self.size > 1:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def shard(self, idx: list[int]) -> list[int]:
        """This rank's part of a batch (possibly empty when the batch is small)."""
        return list(idx[self.rank :: self.size])

    def reseed(self, seed: int, step: int, generator: torch.Generator) -> None:
        """Distinct dropout and sampling draws per rank; rank 0 keeps a single process's."""
        if self.rank:
            torch.manual_seed(seed + 7919 * self.rank + step)
            generator.manual_seed(seed + 7919 * self.rank + step)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module training calls: ``model`` itself, or its DistributedDataParallel."""
        if self.size == 1:
            return model
        ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def loss_scale(self, n_local: int, n_batch: int) -> float:
        """What this rank's mean loss is multiplied by so that DDP's mean over ranks of the
        gradients is the gradient of the batch's mean: n_local / n_batch * world size."""
        return n_local * self.size / max(n_batch, 1)

    def sync(self, seconds: float, time_up: bool, signum: int) -> StepSync:
        """Rank 0's clock and time limit, and the largest stop signal any rank received."""
        if self.size == 1:
            return StepSync(seconds, time_up, signum)
        mine = [seconds, float(time_up), signum] if self.lead else [0.0, 0.0, signum]
        t = torch.tensor(mine, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return StepSync(float(t[0]), bool(t[1] > 0), round(float(t[2])))

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (early stopping is decided at validation)."""
        if self.size == 1:
            return flag
        t = torch.tensor([float(flag)], device=_collective_device())
        dist.broadcast(t, src=0)
        return bool(t[0] > 0)

    def close(self) -> None:
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where small collectives' tensors live: nccl takes CUDA tensors only."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or the model)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def check(cfg: Config, device: torch.device) -> None:
    if cfg.train.processes > 1 and device.type != "cpu":
        raise ConfigError(
            f"train.processes: {cfg.train.processes} starts CPU processes on this machine; on "
            f"GPUs use torchrun --nproc-per-node N -m hybridseq train (one GPU per process)"
        )


def launch(entry: Any, cfg: Config, *args: Any) -> Any:
    """Run ``entry(cfg, *args)`` as ``cfg.train.processes`` ranks on this machine, through
    torch's elastic launcher (torchrun's engine), and return rank 0's value.

    ``entry`` returns ``("ok", value)`` or ``("error", exception)``; a user's error (a bad
    data file, say) is raised here as it would be in one process."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch_cfg = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=cfg.train.processes,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    outcome = elastic_launch(launch_cfg, entry)(cfg, *args)[0]
    kind, value = outcome
    if kind == "error":
        raise value
    return value

"""Process-group set-up that works alike on one CPU, one GPU, and under `torchrun`."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "init_distributed", "wrap_module", "unwrap", "mean_across"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Read torchrun's environment (RANK/WORLD_SIZE/LOCAL_RANK); start the process group if needed.

    `device`: "auto" (cuda:LOCAL_RANK when CUDA is there, else cpu), "cpu", or "cuda".
    """
    info = DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device(f"cuda:{info.local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if info.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, dev


def wrap_module(module: nn.Module, info: DistInfo, device: torch.device, strategy: str = "ddp") -> nn.Module:
    """DDP (or FSDP with strategy="fsdp") when running distributed; the module itself otherwise."""
    if not info.distributed:
        return module
    if strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel(module, use_orig_params=True, device_id=device if device.type == "cuda" else None)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP/FSDP wrapper (parameter names without wrapper prefixes)."""
    return getattr(module, "module", module)


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over all ranks (for logging); identity on one process."""
    if not info.distributed:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size

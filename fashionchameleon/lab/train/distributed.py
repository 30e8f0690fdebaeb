"""Process-group set-up that works alike on one CPU, one GPU, and under `torchrun`.

Data parallelism is explicit gradient averaging (`sync_gradients`), equivalent to DDP; sharded
training (FSDP) for real-scale models is not wired into the stages yet.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "init_distributed", "unwrap", "sync_gradients"]


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


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP/FSDP wrapper (parameter names without wrapper prefixes)."""
    return getattr(module, "module", module)


def sync_gradients(parameters, info: DistInfo) -> None:
    """Average gradients over ranks after `backward()` (data parallelism for any call pattern).

    Stages call their networks through methods (`encode_video`, `text_kv`, ...), not only through
    `forward`, so instead of relying on DDP's forward hooks they all-reduce gradients explicitly:
    the same result as DDP, one flat buffer per call.
    """
    if not info.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()

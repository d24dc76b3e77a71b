"""Distributed data parallel: which process this is, and the few collectives the Trainer uses.

With ``distributed="auto"`` the Trainer trains data-parallel when the script was launched by
``torchrun`` (``WORLD_SIZE`` > 1 in the environment) or a process group with more than one
process already exists. It creates the process group if needed (gloo on CPU, NCCL on CUDA)
and destroys it when the program exits, only if it created it. Not at the end of ``fit``:
torch cannot create the group a second time in the same torchrun launch (the rendezvous keys
of the first remain), and a script may well call ``fit`` twice.
"""

import atexit
import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Context:
    """This process's place in the run; ``world == 1`` means a single process."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # chosen for this process under DDP; else None

    @property
    def is_main(self) -> bool:
        """The process that prints and writes files."""
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes (in place); itself when there is one process."""
        if self.world > 1:
            torch.distributed.all_reduce(tensor)
        return tensor

    def from_main(self, value):
        """The main process's ``value``, on every process."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every process's ``value``, in rank order, on every process."""
        if self.world == 1:
            return [value]
        values = [None] * self.world
        torch.distributed.all_gather_object(values, value)
        return values

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` inside ``DistributedDataParallel`` under DDP, else ``model`` itself."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)


def setup(distributed, device) -> Context:
    """The Context for ``distributed`` ("auto" or False), creating the process group if needed.

    ``device`` is the Trainer's device setting. Under DDP, without one each process takes the
    GPU of its ``LOCAL_RANK`` when CUDA is available, else the CPU; "cuda" without an index
    also means the GPU of its ``LOCAL_RANK``.
    """
    if distributed is False:
        return Context()
    dist = torch.distributed
    create = not (dist.is_available() and dist.is_initialized())
    world = int(os.environ.get("WORLD_SIZE", "1")) if create else dist.get_world_size()
    if world == 1:
        return Context()
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world} asks for distributed training, but this torch build has no "
            "torch.distributed; pass distributed=False to train alone"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if create:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy_process_group)
    return Context(dist.get_rank(), dist.get_world_size(), device)


def _destroy_process_group() -> None:
    if torch.distributed.is_initialized():  # unless the program destroyed it already
        # Leave together: a process tearing down its gloo connections while another is
        # still using them aborts the other ("terminate called without an active exception").
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def process_rank() -> int:
    """This process's rank: the process group's, or torchrun's ``RANK`` before the group
    exists (0 for a script run alone). Rank 0 is the one that writes files."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))

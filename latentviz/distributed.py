"""One SAE trained by several processes (`torchrun --nproc-per-node N -m latentviz train sae ...`):
data parallel, each process a slice of every batch, gradients averaged, so N processes take the steps
one process would on the same batches (to float tolerance).

What a batch decides is decided on the whole batch: the first batch that initialises the model is
read whole by every process; the latents that fired (for AuxK's dead-latent count), AuxK's
normaliser and BatchTopK's threshold are combined across processes. Process 0 alone writes to the
workspace and the checkpoints; the others read the same capture. Without torchrun (no WORLD_SIZE, or
1) every function here is a no-op and training is as it always was.

gloo on CPU (and in the tests: 2 processes against 1), NCCL when each process has a GPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from latentviz.errors import ConfigError


def requested() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start() -> None:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, MASTER_ADDR, ...), once."""
    if requested() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def size() -> int:
    return dist.get_world_size() if active() else 1


def launched_rank() -> int:
    """The rank torchrun gave this process (0 without torchrun), in the group or out of it."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def my_slice(index: torch.Tensor) -> torch.Tensor:
    """This process's equal share of a batch's row indices."""
    if not active():
        return index
    if len(index) % size():
        raise ConfigError(f"a batch of {len(index):,} rows does not split evenly over {size()} processes")
    return index.chunk(size())[rank()]


def average_gradients(model: torch.nn.Module) -> None:
    """Each gradient replaced by its mean over the processes: the gradient of the whole batch's mean loss."""
    if not active():
        return
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= size()


def mean(value: torch.Tensor) -> torch.Tensor:
    """A per-process mean (over equal slices) made the whole batch's mean; no gradient flows through it."""
    if not active():
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / size()


def any_(mask: torch.Tensor) -> torch.Tensor:
    """True where any process has True."""
    if not active():
        return mask
    combined = mask.to(torch.uint8)
    dist.all_reduce(combined, op=dist.ReduceOp.MAX)
    return combined.bool()


def kth_largest(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest of all processes' values together (each process passes its own)."""
    mine = values.detach().flatten().topk(min(k, values.numel())).values
    if not active():
        return mine[-1]
    found = [torch.empty_like(mine) for _ in range(size())]
    dist.all_gather(found, mine)  # equal slices: every process holds the same number of candidates
    return torch.cat(found).topk(k).values[-1]


def sweep_value(sweep: str) -> tuple[str, str]:
    """(flag, this process's value) of `--sweep FLAG=V1,V2,...`: one value per torchrun process."""
    flag, _, values = sweep.partition("=")
    values = [value.strip() for value in values.split(",") if value.strip()]
    if not flag or len(values) < 2:
        raise ConfigError(f"--sweep takes FLAG=V1,V2,... (say layer=4,8,12); got {sweep!r}")
    if int(os.environ.get("WORLD_SIZE", "1")) != len(values):
        raise ConfigError(f"--sweep gives {len(values)} values: run it with torchrun --nproc-per-node {len(values)}")
    return flag.strip().lstrip("-"), values[int(os.environ["RANK"])]


def stop() -> None:
    """Leave the process group: the processes go on alone (a sweep, once its captures are taken)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """Wait for every process, then leave the group: a process that exits while another still holds
    the group open can be aborted in gloo's teardown ("terminate called without an active exception")."""
    if active():
        barrier()
    stop()


def broadcast(numbers: list[int]) -> list[int]:
    """Process 0's integers, on every process (an id it created, say); the others pass placeholders."""
    if not active():
        return numbers
    held = torch.tensor(numbers, dtype=torch.long)
    dist.broadcast(held, src=0)
    return held.tolist()


def barrier() -> None:
    if active():
        dist.barrier()

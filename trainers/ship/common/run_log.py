"""What a run's log records about where and how it ran: a header (a separator, the date and time, the command
line, the library versions, the device) and the timestamp format of ``log.txt`` lines.

Both entry points write the header: the core (``python -m trainers.ship``, the scripts) through the ``ship``
logger, Dassl's ``train.py`` with ``print(run_header(device))`` after Dassl's ``setup_logger``. A rerun into the
same folder appends to ``log.txt``; the separator line shows where each run starts.
"""
from __future__ import annotations

import logging
import os
import platform
import shlex
import sys
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SEPARATOR = "=" * 80
TIMESTAMPED = logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")  # log.txt lines
# distributions a result depends on besides torch; of alternatives (CLIP's packages) the first installed is reported
LIBRARIES = (("torchvision",), ("clip-anytorch", "clip", "openai-clip"), ("numpy",), ("yacs",), ("dassl",))


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, e.g. under Slurm or taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def library_versions() -> str:
    """``python 3.11.7, torch 2.4.1+cu121, ...``: the libraries a result depends on; one not installed is left out."""
    import torch  # here, not at the top: the config module reads usable_cpus without loading torch

    versions = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for distributions in LIBRARIES:
        for name in distributions:
            try:
                versions.append(f"{name} {metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return ", ".join(versions)


def describe_device(device: torch.device | str | None = None) -> str:
    """``cuda:0 (NVIDIA H200, CUDA 12.4, CUDA_VISIBLE_DEVICES=1)`` or ``cpu (2 threads, 2 usable cores)``;
    None: the device ``auto`` picks."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda":
        return f"{device} ({torch.get_num_threads()} threads, {usable_cpus()} usable cores)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (f"cuda:{index} ({torch.cuda.get_device_name(index)}, CUDA {torch.version.cuda}"
            + (f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None else "") + ")")


def command_line() -> str:
    """The command as typed (``python -m trainers.ship ...``), shell-quoted."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]  # orig_argv: Python 3.10+
    return shlex.join(argv)


def run_header(device: torch.device | str | None = None) -> str:
    """The lines that open a run in its log: a separator, the start time, the command, the working directory,
    the library versions and the device."""
    return "\n".join([
        SEPARATOR,
        f"run started {datetime.now().astimezone().isoformat(sep=' ', timespec='seconds')} on {platform.node()}",
        f"command: {command_line()}",
        f"working directory: {os.getcwd()}",
        f"versions: {library_versions()}",
        f"device: {describe_device(device)}",
    ])

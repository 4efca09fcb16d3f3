"""What the kit runs on: versions and the compute device, printed at the start of every job."""

from __future__ import annotations

import platform
import sys


def pick_device(prefer: str | None = None):
    """``torch.device``: ``prefer`` if given, else CUDA when there is a GPU, else the CPU."""
    import torch

    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_environment() -> dict:
    import numpy
    import torch

    from . import __version__

    dev = pick_device()
    info = {
        "coursekit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
    }
    try:
        import nbgrader

        info["nbgrader"] = nbgrader.__version__
    except ImportError:  # the kit's own functions work without it; release needs it
        info["nbgrader"] = "not installed"
    return info


def environment_line() -> str:
    i = describe_environment()
    return (
        f"coursekit {i['coursekit']} | python {i['python']} | torch {i['torch']} | numpy {i['numpy']} | "
        f"nbgrader {i['nbgrader']} | device {i['device']} ({i['device_name']}, {i['cpu_threads']} CPU threads)"
    )


if __name__ == "__main__":
    print(environment_line(), file=sys.stdout)

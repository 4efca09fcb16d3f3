"""GPUs for grading: which GPU a job slot uses, which device nodes its sandboxed worker gets, how much of the GPU's
memory the worker may take, and what the worker says about the device it runs on.

How it fits together (each piece a function below, tested without a GPU by passing fake listings):

- the engine gives job slot ``s`` of ``jobs`` the GPU ``s % gpus`` (``assign_slot``) and tells the grader process,
  through its environment (``slot_env``): ``COURSEKIT_GPU`` (the GPU's index in PCI bus order, nvidia-smi's),
  ``COURSEKIT_GPU_MEMORY_FRACTION`` (its share of the GPU's memory when several slots share one GPU) and
  ``COURSEKIT_REQUIRE_CUDA`` (the full profile on a GPU machine: a worker without CUDA is the staff's problem);
- the sandbox (``sandbox.py``) binds into bubblewrap's fresh ``/dev`` the control nodes (``nvidiactl``,
  ``nvidia-uvm``, ``nvidia-uvm-tools``, where present) and that one GPU's ``/dev/nvidia<minor>``, nothing else of
  ``/dev`` (``device_nodes``), and gives the worker ``CUDA_VISIBLE_DEVICES`` naming that GPU (``worker_env``);
- the worker, before the student's code runs, caps its caching allocator at the fraction
  (``torch.cuda.set_per_process_memory_fraction``) and reports the device it sees (``worker_setup``); a student's
  ``torch.cuda.OutOfMemoryError`` is told as such (``oom_message``).

The memory cap is not a hard limit: it binds PyTorch's caching allocator, and the student's code runs in the same
process, so it can call ``set_per_process_memory_fraction`` again (or allocate through another library). It keeps
honest submissions from starving each other; a hostile one can still take the GPU's memory, and the others sharing
that GPU then fail with an out-of-memory error (told as such; grade them again with ``--jobs`` = the GPU count).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")  # what CUDA needs besides the GPU's own node
PROC_GPUS = "/proc/driver/nvidia/gpus"  # one folder per GPU (named by its PCI bus location), with an ``information`` file
MEMORY_HEADROOM = 0.9  # the share of a GPU's memory its workers may take together (the rest: CUDA contexts, fragmentation)
# Deterministic cuBLAS (https://docs.nvidia.com/cuda/cublas/#results-reproducibility), set for every worker
CUBLAS_WORKSPACE_CONFIG = ":4096:8"

# The grader process's environment (set by the engine per job slot; read by the sandbox)
ENV_GPU = "COURSEKIT_GPU"
ENV_FRACTION = "COURSEKIT_GPU_MEMORY_FRACTION"
ENV_REQUIRE = "COURSEKIT_REQUIRE_CUDA"
ENV_WORKER_INFO = "COURSEKIT_WORKER_INFO"  # a file the sandbox appends each worker's device line (and staff errors) to


class GpuError(RuntimeError):
    """The GPU this grading was given cannot be handed to the worker: the staff's problem, not the student's."""


@dataclass(frozen=True)
class Gpu:
    index: int  # CUDA's index with CUDA_DEVICE_ORDER=PCI_BUS_ID, which is nvidia-smi's
    minor: int  # its device node is /dev/nvidia<minor>
    uuid: str = ""  # GPU-...; "" where the driver does not say
    bus: str = ""  # PCI bus location, e.g. 0000:17:00.0


def _parse_information(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def list_gpus(proc_dir: str | Path = PROC_GPUS, dev_entries: list[str] | None = None, dev_dir: str | Path = "/dev") -> list[Gpu]:
    """The machine's NVIDIA GPUs in PCI bus order: from the driver's ``/proc`` files (minor number, UUID), else from
    the ``/dev/nvidia<N>`` nodes alone (``dev_entries``: a fake listing of ``dev_dir`` for tests)."""
    found = []
    proc_dir = Path(proc_dir)
    if proc_dir.is_dir():
        for d in sorted(proc_dir.iterdir(), key=lambda p: p.name.lower()):
            try:
                info = _parse_information((d / "information").read_text())
                found.append((info.get("Bus Location", d.name).lower(), int(info["Device Minor"]), info.get("GPU UUID", "")))
            except (OSError, KeyError, ValueError):
                continue
    if found:
        found.sort()
        return [Gpu(i, minor, uuid if uuid.startswith(("GPU-", "MIG-")) else "", bus) for i, (bus, minor, uuid) in enumerate(found)]
    if dev_entries is None:
        try:
            dev_entries = os.listdir(dev_dir)
        except OSError:
            return []
    minors = sorted(int(m.group(1)) for m in (re.fullmatch(r"nvidia(\d+)", e) for e in dev_entries) if m)
    return [Gpu(i, minor) for i, minor in enumerate(minors)]


def device_nodes(gpu: Gpu | None, dev_entries: list[str] | None = None, dev_dir: str | Path = "/dev") -> list[str]:
    """The device nodes to bind into the worker's ``/dev`` for ``gpu`` (none for ``None``): the control nodes that
    exist and the GPU's own node, never another GPU's. ``dev_entries``: a listing of ``dev_dir`` (tests pass a fake)."""
    if gpu is None:
        return []
    entries = set(os.listdir(dev_dir) if dev_entries is None else dev_entries)
    own = f"nvidia{gpu.minor}"
    if own not in entries or "nvidiactl" not in entries:
        missing = [n for n in (own, "nvidiactl") if n not in entries]
        raise GpuError(f"GPU {gpu.index} was given to this grading, but {', '.join(f'{dev_dir}/{n}' for n in missing)} "
                       "does not exist: is the NVIDIA driver loaded, and (in a container) were the GPU's devices passed in?")
    return [f"{dev_dir}/{n}" for n in (*CONTROL_NODES, own) if n in entries]


# --- job slots ----------------------------------------------------------------------------------------------------
def assign_slot(slot: int, jobs: int, gpus: int) -> tuple[int, float] | None:
    """(GPU index, memory fraction) of job slot ``slot`` (0-based) of ``jobs``, or None without a GPU. Slots take the
    GPUs in turn; each worker of a GPU shared by ``n`` slots may take ``MEMORY_HEADROOM / n`` of its memory."""
    if gpus <= 0:
        return None
    jobs = max(1, jobs)
    gpu = slot % gpus
    sharing = sum(1 for s in range(jobs) if s % gpus == gpu)
    return gpu, round(MEMORY_HEADROOM / max(1, sharing), 4)


def slot_env(slot: int, jobs: int, gpus: int, profile: str) -> dict[str, str]:
    """The grader process's environment for job slot ``slot`` (empty without a GPU): which GPU its workers get,
    their memory share, and that a worker without CUDA is an error; for a profile other than ``full``, that its
    workers get no GPU (``COURSEKIT_GPU=none``)."""
    assigned = assign_slot(slot, jobs, gpus)
    if assigned is None:
        return {}
    if profile != "full":  # the smoke profile is the CPU's, measured on CPUs: its workers get no GPU
        return {ENV_GPU: "none"}
    gpu, fraction = assigned
    env = {ENV_GPU: str(gpu), "CUDA_VISIBLE_DEVICES": str(gpu), "CUDA_DEVICE_ORDER": "PCI_BUS_ID", ENV_REQUIRE: "1"}
    if fraction < MEMORY_HEADROOM or jobs > gpus:
        env[ENV_FRACTION] = f"{fraction:g}"
    return env


def sandbox_gpu(environ: dict | None = None, gpus: list[Gpu] | None = None) -> Gpu | None:
    """The GPU the grader process's workers get: ``COURSEKIT_GPU`` (set by the engine; ``none``: no GPU), else the first in
    ``CUDA_VISIBLE_DEVICES``, else the first GPU; None where there is none or ``CUDA_VISIBLE_DEVICES`` hides all.
    Never more than one."""
    environ = os.environ if environ is None else environ
    gpus = list_gpus() if gpus is None else gpus
    if not gpus:
        return None
    want = environ.get(ENV_GPU)
    if want == "none":
        return None
    if want is None:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            first = visible.split(",")[0].strip()
            if first == "" or first == "-1":
                return None
            by_uuid = [g for g in gpus if g.uuid and g.uuid == first]
            if by_uuid:
                return by_uuid[0]
            want = first
        else:
            want = "0"
    try:
        index = int(want)
    except ValueError:
        raise GpuError(f"{ENV_GPU}={want!r} (or CUDA_VISIBLE_DEVICES) is not a GPU index") from None
    for g in gpus:
        if g.index == index:
            return g
    raise GpuError(f"GPU {index} was given to this grading, but this machine has GPUs 0-{len(gpus) - 1}")


def worker_env(gpu: Gpu | None, environ: dict | None = None, bubblewrap: bool = True) -> dict[str, str]:
    """The worker's CUDA environment for ``gpu``: ``CUDA_VISIBLE_DEVICES`` naming it (by UUID where known, which
    holds however CUDA numbers what it sees; under bubblewrap, where it is the only GPU there, else ``0``), the
    memory fraction and deterministic cuBLAS. Without a GPU, ``CUDA_VISIBLE_DEVICES`` is empty: no CUDA."""
    environ = os.environ if environ is None else environ
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": ""}
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE_CONFIG,
           "CUDA_VISIBLE_DEVICES": gpu.uuid or ("0" if bubblewrap else str(gpu.index))}
    if environ.get(ENV_FRACTION):
        env[ENV_FRACTION] = environ[ENV_FRACTION]
    return env


def cuda_required(environ: dict | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(ENV_REQUIRE) == "1"


def no_cuda_message(info: dict, gpu: Gpu | None) -> str:
    """The staff's message when a worker that must train on a GPU cannot reach CUDA."""
    given = f"GPU {gpu.index} ({gpu.uuid or 'no UUID'}, /dev/nvidia{gpu.minor})" if gpu else "no GPU (none found on this machine)"
    return (f"the full profile trains on a GPU, but the sandboxed worker cannot reach CUDA (it was given {given}; it "
            f"reports {info.get('device', 'nothing')}{': ' + info['cuda_error'] if info.get('cuda_error') else ''}). This is "
            "the grading machine's problem, not the student's: nothing was graded. Check `nvidia-smi`, the container's GPU "
            "flags (--gpus / --nv) and `python benchmarks/gpu_check.py`, or grade with --profile smoke on CPUs")


# --- in the worker --------------------------------------------------------------------------------------------------
def worker_setup(torch) -> dict:
    """Called by the worker before the student's code runs: the memory cap, CUDA's deterministic settings, and
    what it sees: {"cuda": bool, "device": str, "gpus": int, "memory_fraction": float | None, "cuda_error": str}."""
    info = {"cuda": False, "device": "cpu", "gpus": 0, "memory_fraction": None}
    try:
        available = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001 - a broken driver: no CUDA, and say why
        available, info["cuda_error"] = False, f"{type(e).__name__}: {e}"[:300]
    if not available:
        return info
    try:
        props = torch.cuda.get_device_properties(0)
        info.update(cuda=True, gpus=torch.cuda.device_count(), device=f"cuda:0 ({props.name}, {props.total_memory / 2**30:.0f} GiB)")
        fraction = os.environ.get(ENV_FRACTION)
        if fraction:
            torch.cuda.set_per_process_memory_fraction(float(fraction), 0)
            info["memory_fraction"] = float(fraction)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception as e:  # noqa: BLE001 - CUDA there but unusable (out of memory at start, a driver mismatch)
        info.update(cuda=False, device="cpu", cuda_error=f"{type(e).__name__}: {e}"[:300])
    return info


def is_oom(exc: BaseException) -> bool:
    """Is ``exc`` CUDA running out of memory (``torch.cuda.OutOfMemoryError``, or its message in older releases)?"""
    try:
        import torch

        if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
            return True
    except ImportError:
        pass
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def oom_message(total_bytes: int | None = None, environ: dict | None = None) -> str:
    """For the student: their model did not fit in the GPU memory grading gives one submission."""
    environ = os.environ if environ is None else environ
    fraction = environ.get(ENV_FRACTION)
    share = ""
    if fraction and total_bytes:
        share = f" (grading gives each submission {float(fraction) * total_bytes / 2**30:.1f} GiB of the GPU's memory)"
    elif total_bytes:
        share = f" (the GPU has {total_bytes / 2**30:.1f} GiB)"
    return (f"CUDA ran out of GPU memory{share}: the model or its batches are larger than the assignment needs; keep "
            "the notebook's sizes (hidden units, batch size) and do not keep tensors of every step (e.g. losses without .item())")


def training_device(requested: str | None, torch) -> "object":
    """The device a training probe uses: ``cpu``, ``cuda`` (an error naming the staff's problem where CUDA is missing:
    never a quiet CPU run under GPU limits) or ``auto`` (CUDA where there is one). None means ``cpu``."""
    requested = (requested or "cpu").lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("internal: this grading profile trains on a GPU, but the worker cannot reach CUDA: the grading "
                           "machine's problem, not the student's")
    return torch.device(requested)


def per_gpu_hour(submissions: int, seconds: float, gpus: int) -> float | None:
    """Submissions graded per GPU-hour (None without a GPU or time)."""
    if gpus <= 0 or seconds <= 0:
        return None
    return submissions / (seconds / 3600.0) / gpus


"""GPU grading, prepared on a machine without one: which device nodes a worker gets (fake /dev and /proc listings,
and a real bubblewrap binding a stand-in character device), the job slots' GPUs and memory shares, the worker's
device report, the full profile's "no CUDA is the staff's problem" rule, out-of-memory messages, the runner image
files and the device check's dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import paths
from coursekit.grading import gpu
from coursekit.grading.sandbox import IsolationError, Sandbox, SubmissionError, strong_isolation_available

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
KIT = paths.kit_root()
FAKE_DEV = ["null", "zero", "nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset",
            "nvidia-caps", "sda", "kvm"]
BWRAP = strong_isolation_available()


def _fake_proc(root: Path, gpus: list[tuple[str, int, str]]) -> Path:
    for bus, minor, uuid in gpus:
        d = root / bus
        d.mkdir(parents=True)
        (d / "information").write_text(f"Model: \t\t NVIDIA H100\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\nBus Location: \t {bus}\n"
                                        f"Device Minor: \t {minor}\nGPU Excluded:\t No\n")
    return root


# --- which GPU, which nodes ------------------------------------------------------------------------------------------
def test_gpus_are_listed_in_pci_order_with_their_minor_numbers(tmp_path):
    proc = _fake_proc(tmp_path / "gpus", [("0000:b1:00.0", 0, "GPU-bbbb"), ("0000:17:00.0", 2, "GPU-aaaa")])
    assert gpu.list_gpus(proc) == [gpu.Gpu(0, 2, "GPU-aaaa", "0000:17:00.0"), gpu.Gpu(1, 0, "GPU-bbbb", "0000:b1:00.0")]
    # no driver files: the /dev nodes alone, in their order
    assert gpu.list_gpus(tmp_path / "none", dev_entries=FAKE_DEV) == [gpu.Gpu(0, 0), gpu.Gpu(1, 1), gpu.Gpu(2, 2)]
    assert gpu.list_gpus(tmp_path / "none", dev_entries=["null", "nvidiactl"]) == []


def test_a_slot_s_worker_gets_its_gpu_s_node_and_the_control_nodes_only():
    nodes = gpu.device_nodes(gpu.Gpu(1, 1), FAKE_DEV)
    assert nodes == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1"]
    assert gpu.device_nodes(None, FAKE_DEV) == []
    assert gpu.device_nodes(gpu.Gpu(0, 2), ["nvidia2", "nvidiactl"]) == ["/dev/nvidiactl", "/dev/nvidia2"]  # no uvm here
    with pytest.raises(gpu.GpuError, match=r"/dev/nvidia3 does not exist.*passed in"):
        gpu.device_nodes(gpu.Gpu(3, 3), FAKE_DEV)


def test_the_bwrap_command_binds_exactly_the_assigned_gpu_after_the_fresh_dev(tmp_path):
    code = tmp_path / "c.py"
    code.write_text("")
    sb = Sandbox(code, code, isolation="bubblewrap")
    try:
        sb.gpu, sb.dev_entries = gpu.Gpu(1, 1, "GPU-1111"), FAKE_DEV
        cmd = sb._command()
        binds = [(cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "--dev-bind"]
        assert binds == [(f"/dev/{n}", f"/dev/{n}") for n in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia1")]
        first_bind = cmd.index("--dev-bind")
        assert cmd[cmd.index("--dev") + 1] == "/dev" and cmd.index("--dev") < first_bind  # on top of the fresh /dev
        assert not any(a in ("/dev/nvidia0", "/dev/nvidia2", "/dev/nvidia-modeset", "/dev/sda") for a in cmd)
        assert cmd.index("--remount-ro") > max(i for i, a in enumerate(cmd) if a == "--dev-bind")
        sb.gpu = None  # no GPU: nothing of the host's /dev
        assert "--dev-bind" not in sb._command()
        sb.gpu = gpu.Gpu(5, 5)  # a GPU whose node is missing: the staff's problem, said before anything runs
        with pytest.raises(IsolationError, match="nvidia5 does not exist"):
            sb._command()
    finally:
        sb.cleanup()


def test_slots_share_gpus_with_a_share_of_their_memory_each():
    assert gpu.assign_slot(0, 1, 0) is None
    assert [gpu.assign_slot(s, 4, 2) for s in range(4)] == [(0, 0.45), (1, 0.45), (0, 0.45), (1, 0.45)]
    assert [gpu.assign_slot(s, 3, 2) for s in range(3)] == [(0, 0.45), (1, 0.9), (0, 0.45)]
    assert gpu.slot_env(0, 1, 0, "full") == {}
    one = gpu.slot_env(1, 2, 2, "full")
    assert one[gpu.ENV_GPU] == "1" and one["CUDA_VISIBLE_DEVICES"] == "1" and one[gpu.ENV_REQUIRE] == "1" and gpu.ENV_FRACTION not in one
    shared = gpu.slot_env(2, 4, 1, "full")
    assert shared[gpu.ENV_GPU] == "0" and shared[gpu.ENV_FRACTION] == "0.225"
    assert gpu.slot_env(0, 4, 1, "smoke") == {gpu.ENV_GPU: "none"}  # the CPU's profile: its workers get no GPU
    assert gpu.per_gpu_hour(10, 1800, 2) == 10 and gpu.per_gpu_hour(3, 0, 1) is None and gpu.per_gpu_hour(3, 60, 0) is None


def test_the_grader_s_gpu_and_the_worker_s_cuda_environment():
    gpus = [gpu.Gpu(0, 0, "GPU-a"), gpu.Gpu(1, 3, "GPU-b")]
    assert gpu.sandbox_gpu({gpu.ENV_GPU: "1"}, gpus) == gpus[1]
    assert gpu.sandbox_gpu({gpu.ENV_GPU: "none"}, gpus) is None
    assert gpu.sandbox_gpu({"CUDA_VISIBLE_DEVICES": "GPU-b,GPU-a"}, gpus) == gpus[1]
    assert gpu.sandbox_gpu({"CUDA_VISIBLE_DEVICES": ""}, gpus) is None
    assert gpu.sandbox_gpu({}, gpus) == gpus[0]  # never all of them
    assert gpu.sandbox_gpu({gpu.ENV_GPU: "0"}, []) is None
    with pytest.raises(gpu.GpuError, match="GPU 7 was given"):
        gpu.sandbox_gpu({gpu.ENV_GPU: "7"}, gpus)
    env = gpu.worker_env(gpus[1], {gpu.ENV_FRACTION: "0.45"})
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-b" and env[gpu.ENV_FRACTION] == "0.45" and env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert gpu.worker_env(gpu.Gpu(1, 3), {})["CUDA_VISIBLE_DEVICES"] == "0"  # the only GPU inside bubblewrap
    assert gpu.worker_env(None, {}) == {"CUDA_VISIBLE_DEVICES": ""}


def test_training_device_never_falls_back_to_the_cpu_quietly():
    assert gpu.training_device(None, torch).type == "cpu" and gpu.training_device("cpu", torch).type == "cpu"
    assert gpu.training_device("auto", torch).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="^internal: .*not the student's"):
            gpu.training_device("cuda", torch)


# --- a real bubblewrap, a stand-in device node -----------------------------------------------------------------------
@pytest.mark.skipif(not BWRAP or os.geteuid() != 0, reason="needs bubblewrap and root (mknod)")
def test_a_real_sandbox_sees_its_gpu_node_and_no_other(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir(mode=0o755)
    for name in ("nvidia3", "nvidia7", "nvidiactl"):
        subprocess.run(["mknod", "-m", "666", str(dev / name), "c", "1", "3"], check=True)  # /dev/null's numbers
    os.chmod(tmp_path, 0o755)
    code = tmp_path / "c.py"
    code.write_text("")
    sb = Sandbox(code, code, isolation="bubblewrap")
    try:
        sb.gpu, sb.dev_dir = gpu.Gpu(1, 7, "GPU-seven"), str(dev)
        script = ("import os; print(sorted(n for n in os.listdir('/dev') if n.startswith('nvidia'))); "
                  "open('/dev/nvidia7', 'w').write('x'); print(os.environ['CUDA_VISIBLE_DEVICES'])")
        sb.proc = sb._spawn([sys.executable, "-c", script])
        out, _ = sb.proc.communicate(timeout=60)
        assert sb.proc.returncode == 0, sb._launcher_error()
        assert out.decode().split("\n")[:2] == ["['nvidia7', 'nvidiactl']", "GPU-seven"]
    finally:
        sb.proc = None
        sb.cleanup()


# --- the worker's device report and the full profile's rule ---------------------------------------------------------
PROBES = "def probe_big(sub):\n    return sub.big()\n"
CODE = textwrap.dedent("""
    import torch
    def big():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "sub.py").write_text(CODE)
    (tmp_path / "probes.py").write_text(PROBES)
    return tmp_path / "sub.py", tmp_path / "probes.py"


def test_the_worker_reports_its_device_and_a_cuda_oom_is_told_as_such(files, tmp_path, monkeypatch):
    info = tmp_path / "workers.jsonl"
    monkeypatch.setenv(gpu.ENV_WORKER_INFO, str(info))
    monkeypatch.delenv(gpu.ENV_REQUIRE, raising=False)
    with Sandbox(*files, insecure=True) as sb:
        with pytest.raises(SubmissionError) as e:
            sb.call("big")
        assert sb.worker_info["device"] == ("cpu" if not torch.cuda.is_available() else sb.worker_info["device"])
    assert "CUDA ran out of GPU memory" in str(e.value) and "in `big`" in str(e.value), str(e.value)
    [line] = [json.loads(x) for x in info.read_text().splitlines()]
    assert line["device"] == sb.worker_info["device"] and "staff_error" not in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA side")
def test_a_worker_without_cuda_under_a_gpu_profile_is_the_staff_s_problem(files, tmp_path, monkeypatch):
    info = tmp_path / "workers.jsonl"
    monkeypatch.setenv(gpu.ENV_WORKER_INFO, str(info))
    monkeypatch.setenv(gpu.ENV_REQUIRE, "1")
    with Sandbox(*files, insecure=True) as sb:
        with pytest.raises(IsolationError, match="cannot reach CUDA.*not the student's"):
            sb.call("big")
    assert "not the student's" in json.loads(info.read_text().splitlines()[0])["staff_error"]


def _toy_notebook(path: Path) -> None:
    nb = new_notebook(metadata={"coursekit": {"assignment": "toy"}})
    nb.cells = [new_code_cell("import torch\nimport torch.nn.functional as F\n"),
                new_code_cell("def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA side")
@pytest.mark.slow
def test_a_grading_whose_worker_cannot_reach_cuda_stops_instead_of_giving_zeros(tmp_path, monkeypatch):
    from coursekit.grading.engine import GradeOptions, WorkerDeviceError, grade_submission
    from coursekit.grading.submissions import Submission

    monkeypatch.setenv("COURSEKIT_ROOT", str(TOYKIT))
    _toy_notebook(tmp_path / "in" / "ann" / "toy.ipynb")
    sub = Submission(student="ann", folder="ann", assignment="toy", notebook=tmp_path / "in" / "ann" / "toy.ipynb",
                     source=tmp_path / "in")
    opts = dict(profile="smoke", call_timeout=20, insecure=not strong_isolation_available())
    report = grade_submission(sub, tmp_path / "out", GradeOptions(**opts))  # a CPU grading: fine, and says where it ran
    assert report["points"] == report["max_points"] and report["worker_device"] == "cpu"
    with pytest.raises(WorkerDeviceError, match="ann/toy: .*cannot reach CUDA.*not the student's"):
        grade_submission(sub, tmp_path / "out2", GradeOptions(**opts, force=True, env={gpu.ENV_REQUIRE: "1"}))
    assert not list((tmp_path / "out2").rglob("report.json"))  # no zeros written as if the student had failed


# --- the runner image and the device check -------------------------------------------------------------------------
def test_the_runner_images_install_bubblewrap_torch_and_the_kit_and_run_coursekit():
    docker = (KIT / "Dockerfile").read_text()
    steps = [line.strip() for line in docker.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert steps[0].startswith("ARG") or steps[0].startswith("FROM")
    assert any(s.startswith("FROM ubuntu:24.04") for s in steps)  # bubblewrap 0.9: --disable-userns needs 0.8
    assert "bubblewrap" in docker and 'pip install "$TORCH"' in docker and "pip install -e /opt/coursekit" in docker
    assert 'ENTRYPOINT ["coursekit"]' in steps
    for part in ("coursekit", "autograder", "solutions", "data"):
        assert f"COPY {part} ./{part}" in docker
    runner = (KIT / "runner.def").read_text()
    assert "Bootstrap: docker" in runner and "From: ubuntu:24.04" in runner and "bubblewrap" in runner
    assert "pip install -e /opt/coursekit" in runner and 'exec /opt/venv/bin/coursekit "$@"' in runner
    for part in ("coursekit", "autograder", "solutions", "data"):
        assert f"    {part} /opt/coursekit/{part}" in runner


def _gpu_check(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KIT / "benchmarks" / "gpu_check.py"), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.skipif(not BWRAP, reason="the device check needs bubblewrap")
@pytest.mark.slow
def test_the_device_check_s_dry_run_plans_and_checks_its_pieces(tmp_path):
    ok = _gpu_check("--dry-run", "--assignment", "vae")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "sandbox: bubblewrap works here" in ok.stdout and "plan: " in ok.stdout and "nothing was graded" in ok.stdout
    assert "vae: full profile for the GPU" in ok.stdout and "mistake(s): " in ok.stdout
    bad = json.loads((KIT / "benchmarks" / "gpu_sizing.json").read_text())
    del bad["vae"]["train_steps"]
    bad["vae"]["epochs"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    wrong = _gpu_check("--dry-run", "--assignment", "vae", "--sizing-file", str(tmp_path / "bad.json"))
    assert wrong.returncode == 1 and "lacks 'train_steps'" in wrong.stdout and "['epochs']" in wrong.stdout
    if not torch.cuda.is_available():  # without --dry-run on a CPU machine: it says so and fails
        nogpu = _gpu_check("--assignment", "vae", "--skip-reference")
        assert nogpu.returncode == 2 and "no GPU here" in nogpu.stderr


def test_the_gpu_sizing_is_the_lecture_s_pixelrnn_on_cuda():
    sizing = json.loads((KIT / "benchmarks" / "gpu_sizing.json").read_text())
    px = sizing["pixelrnn"]["train"]
    assert px["model"] == "PixelLSTM" and px["hidden"] == 512 and px["train_subset"] is None and px["device"] == "cuda"
    assert sizing["gan"]["train"]["device"] == "cuda"
    for a in ("pixelrnn", "vae", "gan"):  # the committed full profile stays as measured (CPU-sized) until a GPU run
        assert json.loads((KIT / "autograder" / a / "profiles.json").read_text())["full"] != sizing[a]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="pretends a GPU machine whose workers have no CUDA")
def test_a_batch_on_a_gpu_machine_checks_its_workers_first_and_reports_submissions_per_gpu_hour(tmp_path, monkeypatch):
    from coursekit.grading import engine
    from coursekit.grading.sandbox import check_gpu_worker

    assert check_gpu_worker({})["device"] == "cpu"
    monkeypatch.setenv("COURSEKIT_ROOT", str(TOYKIT))
    monkeypatch.setattr(engine, "_gpu_count", lambda: 1)
    for name in ("ann", "bob"):
        _toy_notebook(tmp_path / "in" / name / "toy.ipynb")
    opts = dict(call_timeout=20, insecure=not strong_isolation_available())
    with pytest.raises(IsolationError, match="cannot reach CUDA"):  # full profile: nothing is graded
        engine.grade_batch([tmp_path / "in"], tmp_path / "out", ["toy"], jobs=2, options=engine.GradeOptions(profile="full", **opts),
                           progress=False)
    assert not list((tmp_path / "out").rglob("report.json"))
    said = []
    reports = engine.grade_batch([tmp_path / "in"], tmp_path / "out", ["toy"], jobs=2,
                                 options=engine.GradeOptions(profile="smoke", **opts), progress=False, log=said.append)
    assert [r["worker_device"] for r in reports] == ["cpu", "cpu"]  # smoke: the workers got no GPU
    assert any("2 submission(s) graded" in s and "submissions per GPU-hour" in s for s in said), said


def test_two_gradings_at_once_never_share_a_job_slot(tmp_path, monkeypatch):
    """A slot is free again only when its grading ends: a quick submission finishing first must not hand its successor
    the slot (and GPU share) of a slow one still running."""
    import threading
    import time

    from coursekit.grading import engine

    monkeypatch.setenv("COURSEKIT_ROOT", str(TOYKIT))
    monkeypatch.setattr(engine, "_gpu_count", lambda: 2)
    monkeypatch.setattr(engine._sandbox, "check_gpu_worker", lambda env: {"device": "cuda"})
    names = ["a_slow", "b_quick", "c", "d", "e"]
    for name in names:
        _toy_notebook(tmp_path / "in" / name / "toy.ipynb")
    busy, clashes, lock = set(), [], threading.Lock()

    def fake_grade(sub, out, opts, stop):
        gpu_of_slot = opts.env[gpu.ENV_GPU]
        with lock:
            if gpu_of_slot in busy:
                clashes.append((sub.student, gpu_of_slot))
            busy.add(gpu_of_slot)
        time.sleep(0.6 if sub.student == "a_slow" else 0.05)
        with lock:
            busy.discard(gpu_of_slot)
        return {"student": sub.student, "folder": sub.folder, "assignment": sub.assignment, "skipped": True, "points": 0,
                "max_points": 4}

    monkeypatch.setattr(engine, "grade_submission", fake_grade)
    engine.grade_batch([tmp_path / "in"], tmp_path / "out", ["toy"], jobs=2, progress=False,
                       options=engine.GradeOptions(profile="full", insecure=not strong_isolation_available()))
    assert not clashes, clashes

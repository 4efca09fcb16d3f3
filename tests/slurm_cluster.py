"""A one-node Slurm cluster on this machine, for the tests: Debian's ``slurmctld``, ``slurmd`` and ``munge``.

``start_cluster`` installs the packages with apt where they are missing and it may (root, apt-get), then starts
``munged`` with a key and socket of its own and ``slurmctld`` + ``slurmd`` in the foreground with a minimal
``slurm.conf`` in a temporary folder (one node ``localhost`` with 2 CPUs, no cgroups, no accounting), on ports of
their own; nothing of the machine's own Slurm or munge set-up is used or changed. The clients (``sbatch``,
``squeue``, ``scancel``) find it through ``SLURM_CONF``, which ``Cluster.env`` sets. ``Cluster.stop`` ends the
daemons it started. Where it cannot be started, ``SlurmUnavailable`` says why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")  # Debian's; slurm-wlm is these and many plugins
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


class SlurmUnavailable(RuntimeError):
    """The one-node cluster cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None)


def install_packages(timeout: float = 600) -> None:
    """apt-get install the Slurm and munge daemons where they are missing (root and apt-get needed)."""
    if all(_which(d) for d in DAEMONS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable(f"Slurm is not installed ({', '.join(d for d in DAEMONS if not _which(d))} missing) and this "
                               "process cannot install it (needs root and apt-get): apt-get install " + " ".join(PACKAGES))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    missing = [d for d in DAEMONS if not _which(d)]
    if missing:
        raise SlurmUnavailable(f"after installing {' '.join(PACKAGES)}, still missing: {', '.join(missing)}")


SLURM_CONF = """ClusterName=coursekit
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    root: Path
    cpus: int = 2
    procs: list = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict:
        """What the clients need to find this cluster (add it to ``os.environ``)."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        r = subprocess.run(list(cmd), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}\n{self.logs()}")
        return r

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(self.root.glob("*.log")))

    def stop(self) -> None:
        """End the daemons this cluster started (and the jobs left on it), newest first."""
        if self.procs:
            subprocess.run(["scancel", "--quiet", "--full", "-u", str(os.geteuid())], env={**os.environ, **self.env},
                           capture_output=True, timeout=30)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(cpus: int = 2, timeout: float = 60) -> Cluster:
    """Install (if need be) and start munged, slurmctld and slurmd; returns once the node takes jobs."""
    install_packages()
    root = Path(tempfile.mkdtemp(prefix="coursekit-slurm-"))
    os.chmod(root, 0o755)
    for d in ("state", "spool", "munge"):
        (root / d).mkdir()
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = root / "munge" / "munge.socket"
    cluster = Cluster(root, cpus)
    cluster.conf.write_text(SLURM_CONF.format(ctld_port=_free_port(), d_port=_free_port(), munge_socket=sock, root=root, cpus=cpus))
    logs = open(root / "daemons.out", "ab")
    try:
        munged = subprocess.Popen([_which("munged"), "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
                                   f"--pid-file={root / 'munge' / 'munged.pid'}", f"--log-file={root / 'munged.log'}",
                                   f"--seed-file={root / 'munge' / 'munged.seed'}"], stdout=logs, stderr=logs)
        cluster.procs.append(munged)
        _until(lambda: sock.exists(), timeout, "munged did not open its socket", cluster)
        env = {**os.environ, **cluster.env}
        for cmd in ([_which("slurmctld"), "-D", "-i", "-f", str(cluster.conf)],
                    [_which("slurmd"), "-D", "-N", "localhost", "-f", str(cluster.conf)]):
            cluster.procs.append(subprocess.Popen(cmd, env=env, stdout=logs, stderr=logs, start_new_session=True))
        _until(lambda: _node_idle(cluster), timeout, "the node did not come up idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_idle(cluster: Cluster) -> bool:
    for p in cluster.procs:
        if p.poll() is not None:
            raise SlurmUnavailable(f"{p.args[0]} exited with {p.returncode}\n{cluster.logs()}\n"
                                   + (cluster.root / "daemons.out").read_text(errors="replace")[-2000:])
    r = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
    return r.returncode == 0 and r.stdout.strip().rstrip("*") in ("idle", "mixed", "allocated")


def _until(cond, timeout: float, what: str, cluster: Cluster) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SlurmUnavailable(f"{what} within {timeout:.0f} s\n{cluster.logs()}")
        time.sleep(0.3)

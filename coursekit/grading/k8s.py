"""Grading a course on Kubernetes: an Indexed Job whose completion index is the shard (``shards``).

``job_manifest`` writes the Job (JSON, which ``kubectl apply -f`` reads like YAML): ``completions`` = the number of
shards, pod ``K`` runs ``coursekit grade INPUTS -o OUT --shard K/N`` in the runner image, with a GPU each
(``nvidia.com/gpu``) and the volume (a PersistentVolumeClaim, e.g. the course's JupyterHub storage) that holds the
submissions and ``OUT`` mounted at the same path in every pod. A pod that fails is retried per index
(``backoffLimitPerIndex``; finished reports are skipped, so a retry grades only what is left). Nothing here talks to
a cluster: ``kubectl apply -f job.json``, wait (``kubectl wait --for=condition=complete job/NAME``), then
``coursekit gradebook OUT`` (where the volume is mounted) builds the gradebook and lists what is missing.

The sandbox (bubblewrap) needs unprivileged user namespaces in the pod; many clusters' default seccomp profile
forbids them, so the pod asks for ``seccompProfile: Unconfined`` (no privileged container, no added capability).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass


@dataclass
class K8sOptions:
    image: str = "coursekit-runner:latest"  # the runner image (the GPU-runner issue's), holding the kit and its graders
    claim: str = "coursekit-grading"  # the PersistentVolumeClaim holding the submissions and OUT
    mount: str = "/grading"  # where it is mounted; INPUTS and OUT are paths under it, as the pods see them
    shards: int | None = None  # completions N; None: the number of submissions, when the inputs are readable here
    parallelism: int = 4  # pods at once (GPUs the course may use at once)
    gpus_per_task: int = 1  # nvidia.com/gpu per pod; 0 on CPU nodes
    cpu: str = "4"  # cpu request per pod
    memory: str = "16Gi"  # memory request and limit per pod
    retries: int = 2  # backoffLimitPerIndex: retries of a failed pod, per shard
    name: str = "coursekit-grade"
    namespace: str | None = None
    active_deadline_s: int | None = None  # the whole Job's wall-clock limit; None: none


def job_manifest(inputs: list[str], out: str, count: int, opts: K8sOptions, grade_args: list[str] = ()) -> dict:
    """The Indexed Job grading ``count`` shards of ``inputs`` into ``out`` (paths as the pods see them)."""
    if count < 1:
        raise ValueError(f"{count} shards: an Indexed Job needs at least one completion")
    for p in [*inputs, out]:
        if not str(p).startswith(opts.mount.rstrip("/") + "/"):
            raise ValueError(f"{p} is not under the volume's mount path {opts.mount} (--k8s-mount): the pods see only the "
                             "volume, so INPUTS and -o OUT must be paths under it")
    cmd = " ".join(shlex.quote(c) for c in ["coursekit", "grade", *map(str, inputs), "-o", str(out), *grade_args])
    resources = {"requests": {"cpu": opts.cpu, "memory": opts.memory}, "limits": {"memory": opts.memory}}
    if opts.gpus_per_task:
        resources["requests"]["nvidia.com/gpu"] = str(opts.gpus_per_task)
        resources["limits"]["nvidia.com/gpu"] = str(opts.gpus_per_task)
    labels = {"app.kubernetes.io/name": "coursekit", "app.kubernetes.io/component": "grading"}
    spec = {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": max(1, min(opts.parallelism, count)),
        "backoffLimitPerIndex": opts.retries,
        "maxFailedIndexes": count,  # a shard that keeps failing does not stop the others; the merge lists it
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"seccompProfile": {"type": "Unconfined"}},  # bubblewrap's user namespaces
                "containers": [{
                    "name": "grader",
                    "image": opts.image,
                    # JOB_COMPLETION_INDEX: set by Kubernetes in each pod of an Indexed Job, 0 .. completions - 1
                    "command": ["sh", "-c", f'exec {cmd} --shard "$JOB_COMPLETION_INDEX/{count}"'],
                    "env": [{"name": "MPLBACKEND", "value": "Agg"}],
                    "resources": resources,
                    "volumeMounts": [{"name": "grading", "mountPath": opts.mount}],
                }],
                "volumes": [{"name": "grading", "persistentVolumeClaim": {"claimName": opts.claim}}],
            },
        },
    }
    if opts.active_deadline_s:
        spec["activeDeadlineSeconds"] = int(opts.active_deadline_s)
    meta = {"name": opts.name, "labels": labels}
    if opts.namespace:
        meta["namespace"] = opts.namespace
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2) + "\n"

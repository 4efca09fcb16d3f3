"""The Kubernetes Indexed Job that `coursekit grade --backend k8s --dry-run` writes: completion index -> shard, a GPU per
pod, the runner image, the volume holding INPUTS and OUT; checked against Kubernetes' own schema (kubernetes-validate,
which .ci/run installs: `kubectl create --dry-run=client` needs a cluster's API to validate). No cluster needed."""

import copy
import json
import os

import pytest
from toy_batch import TOYKIT, toy_class

from coursekit import cli
from coursekit.grading import k8s

K8S_VERSION = "1.30.0"  # backoffLimitPerIndex is beta and on by default from 1.29


@pytest.fixture(scope="module")
def validate():
    try:
        import kubernetes_validate
    except ImportError:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI must check the Job against the schema: pip install kubernetes-validate (.ci/run does)")
        pytest.skip("kubernetes-validate is not installed (pip install kubernetes-validate)")

    def check(manifest: dict) -> None:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)

    return check, kubernetes_validate.ValidationError


def test_the_job_is_valid_kubernetes_and_maps_each_index_to_a_shard(validate):
    check, invalid = validate
    job = k8s.job_manifest(["/grading/submitted"], "/grading/out", 40,
                           k8s.K8sOptions(image="registry.example.edu/coursekit-runner:1.0", parallelism=8), ["--profile", "full"])
    check(job)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 40 and spec["parallelism"] == 8
    pod = spec["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == "registry.example.edu/coursekit-runner:1.0"
    assert c["command"][:2] == ["sh", "-c"]
    assert c["command"][2] == 'exec coursekit grade /grading/submitted -o /grading/out --profile full --shard "$JOB_COMPLETION_INDEX/40"'
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["volumeMounts"] == [{"name": "grading", "mountPath": "/grading"}]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "coursekit-grading"
    # the check can fail: a field of the wrong type, or one Kubernetes does not know, is refused
    bad = copy.deepcopy(job)
    bad["spec"]["completions"] = "forty"
    with pytest.raises(invalid):
        check(bad)
    bad = copy.deepcopy(job)
    bad["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(invalid):
        check(bad)
    # CPU nodes: no GPU asked for
    cpu = k8s.job_manifest(["/grading/in"], "/grading/out", 2, k8s.K8sOptions(gpus_per_task=0))
    check(cpu)
    assert "nvidia.com/gpu" not in json.dumps(cpu)


def test_paths_outside_the_volume_are_refused():
    with pytest.raises(ValueError, match="not under the volume's mount path /grading"):
        k8s.job_manifest(["/home/ta/submitted"], "/grading/out", 3, k8s.K8sOptions())


def test_cli_dry_run_prints_the_job(validate, tmp_path, capsys, monkeypatch):
    check, _ = validate
    monkeypatch.setenv("COURSEKIT_ROOT", str(TOYKIT))
    args = ["grade", "/grading/submitted", "-o", "/grading/out", "--backend", "k8s", "--dry-run", "--shards", "30",
            "--image", "runner:2", "--max-parallel", "6"]
    assert cli.main(args) == 0
    job = json.loads(capsys.readouterr().out)
    check(job)
    assert job["spec"]["completions"] == 30 and job["spec"]["parallelism"] == 6
    assert "--profile full" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    # without --shards, the inputs must be readable here to count them; a clear error otherwise
    assert cli.main(args[:7] + ["--image", "runner:2"]) == 2
    assert "give --shards N" in capsys.readouterr().err
    # without --dry-run there is nothing this command can do with a cluster: it says so
    assert cli.main(args[:6] + ["--shards", "3"]) == 2
    assert "add --dry-run" in capsys.readouterr().err
    # counted from readable inputs (one pod per submission)
    cls = toy_class(tmp_path / "grading" / "class")
    assert cli.main(["grade", str(cls), "-o", str(tmp_path / "grading" / "out"), "--backend", "k8s", "--dry-run",
                     "--k8s-mount", str(tmp_path / "grading")]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["completions"] == 3

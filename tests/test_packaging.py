"""pyproject.toml and environment.yml name the same packages; the set-up files stay true."""

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _env_pip_requirements() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1 :]:
        m = re.match(r"^\s{6,}- (.+)$", line)
        if not m:
            break
        reqs.append(m.group(1).strip())
    return reqs


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = sorted(project["dependencies"], key=_name)
    env = sorted(_env_pip_requirements(), key=_name)
    assert [_name(r) for r in env] == [_name(r) for r in py], "environment.yml and pyproject.toml name different packages"
    assert env == py, "environment.yml and pyproject.toml pin different versions"


def test_required_dependencies_are_declared():
    names = {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for need in ("torch", "numpy", "matplotlib", "jupyter", "nbgrader", "nbformat", "nbclient", "pytest", "pillow", "tqdm"):
        assert need in names, need


def test_torch_spec_pins_a_local_cpu_wheel(tmp_path):
    (tmp_path / "torch-9.8.7+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    env = {"PATH": "/usr/bin:/bin", "PIP_FIND_LINKS": str(tmp_path)}
    out = subprocess.run(["sh", str(ROOT / "tools" / "torch_spec.sh")], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch==9.8.7"
    env["TORCH"] = "torch==1.2.3"
    out = subprocess.run(["sh", str(ROOT / "tools" / "torch_spec.sh")], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch==1.2.3"


def test_torch_spec_without_local_wheel_is_plain_pypi_torch(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PIP_FIND_LINKS": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"}
    out = subprocess.run(["sh", str(ROOT / "tools" / "torch_spec.sh")], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch>=2.1"


def test_readme_two_commands_and_ci():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup", makefile, re.M) and re.search(r"^test: setup", makefile, re.M)

"""``coursekit reference``: the TA's one command that regenerates every reference output.

It runs the reference solutions and writes what the graders compare against:

- the evaluator network of each data set (``autograder/reference/evaluator_<name>.pt``),
  trained on its training split, which the sample-quality metrics use, and the course data set's
  copy thresholds (``autograder/reference/copies_<name>.json``, measured on its real images);
- per assignment, ``autograder/<assignment>/expected.json`` from its ``make_expected.py``
  (expected values on fixed inputs, and thresholds measured over several seeds in each
  grading profile, each with its rule), and the reference pictures shown in feedback
  (``autograder/<assignment>/reference/feedback/*.png``) where it makes them;
- ``autograder/reference/manifest.json``: versions, seeds, device, and a SHA-256 of every file.

Everything is built in a staging folder first; ``check=True`` compares it with the files in
place and reports drift instead of writing. A ``make_expected.py`` provides
``build(profiles, previous, log) -> dict`` and may provide ``pictures(dest, log)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .notebook import module_from_file

EVALUATOR_DATASETS = ("sprites", "digits")  # always built; the course data set's evaluator is added when it is another
EVALUATOR_SEED = 0


@dataclass
class ReferenceResult:
    written: list[Path] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # with check=True: files that differ or are missing
    seconds: float = 0.0


def _sha(path: Path) -> str:
    """SHA-256 of a file's content. For torch files, of the tensors and values they hold: torch.save
    writes a random serialization id into every file, so their bytes differ from save to save."""
    if path.suffix != ".pt":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    import torch

    h = hashlib.sha256()

    def walk(obj, key=""):
        if isinstance(obj, torch.Tensor):
            h.update(f"{key}:{obj.dtype}:{tuple(obj.shape)}".encode())
            h.update(obj.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(obj[k], f"{key}/{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{key}[{i}]")
        else:
            h.update(f"{key}={obj!r}".encode())

    walk(torch.load(path, map_location="cpu", weights_only=True))
    return h.hexdigest()


def _load_make_expected(assignment: str):
    path = paths.autograder_dir() / assignment / "make_expected.py"
    mod = module_from_file(path, f"make_expected_{assignment}")
    if not hasattr(mod, "build"):
        raise RuntimeError(f"{path}: has no build(profiles, previous, log) function")
    return mod


def reference_assignments() -> list[str]:
    root = paths.autograder_dir()
    return sorted(p.parent.name for p in root.glob("*/make_expected.py"))


def evaluator_specs(course_spec: str, switching: bool) -> list[str]:
    """The data sets whose evaluators a rebuild trains: every one the kit keeps (``EVALUATOR_DATASETS``) and the course
    data set; when switching to a data set (``--dataset``), that one only, so the others' files and hashes stay."""
    from .data.course import course_dataset

    if switching:
        return [course_spec]
    specs = list(EVALUATOR_DATASETS)
    if course_dataset(course_spec).name not in specs:
        specs.append(course_spec)
    return specs


def describe_evaluator(r: dict) -> str:
    """What an evaluator's training reached, in the terms of what it is: held-out accuracy for a classifier, held-out
    reconstruction error for an autoencoder (it has no accuracy)."""
    if r.get("kind") == "autoencoder" or r.get("test_reconstruction_rmse") is not None:
        return (f"no labels: autoencoder features; held-out reconstruction error {r['test_reconstruction_rmse']:.3f} "
                "(RMS over RGB values in [0, 1])")
    return f"held-out accuracy {r['test_accuracy']:.3f}, chance {r['chance']:.3f}"


def _stage_evaluators(stage: Path, course_spec: str, log, switching: bool = False) -> list[str]:
    from .data.course import course_dataset
    from .metrics.evaluator import build_reference_evaluator

    rels = []
    for spec in evaluator_specs(course_spec, switching):
        name = course_dataset(spec).name
        rel = f"reference/evaluator_{name}.pt"
        t0 = time.time()
        r = build_reference_evaluator(spec, stage / rel, seed=EVALUATOR_SEED)
        log(f"evaluator for {name}: {time.time() - t0:.1f} s ({describe_evaluator(r)})")
        rels.append(rel)
    from .metrics.copies import build_copy_calibration

    name = course_dataset(course_spec).name  # the copy thresholds of the course data set, measured on its real images
    rel = f"reference/copies_{name}.json"
    t0 = time.time()
    cal = build_copy_calibration(course_dataset(course_spec), stage / rel)
    log(f"copy thresholds for {name}: {time.time() - t0:.1f} s (fresh real images flagged {100 * cal['base_rate']:.1f}% of the time)")
    rels.append(rel)
    return rels


def _stage_assignment(assignment: str, profiles: list[str] | None, stage: Path, log) -> list[str]:
    mod = _load_make_expected(assignment)
    current = paths.autograder_dir() / assignment / "expected.json"
    previous = json.loads(current.read_text()) if current.is_file() else None
    expected = mod.build(profiles, previous, log=log)
    rel = f"{assignment}/expected.json"
    (stage / assignment).mkdir(parents=True, exist_ok=True)
    (stage / rel).write_text(json.dumps(expected, indent=1) + "\n")
    rels = [rel]
    if hasattr(mod, "pictures"):
        pic_dir = stage / assignment / "reference" / "feedback"
        pic_dir.mkdir(parents=True, exist_ok=True)
        mod.pictures(pic_dir, log=log)
        rels += [f"{assignment}/reference/feedback/{p.name}" for p in sorted(pic_dir.glob("*.png"))]
    return rels


def _seeds(expected: dict) -> list[int]:
    """Every training seed an expected.json was measured with (its "reference_seeds" / "seeds" lists)."""
    found: set[int] = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("reference_seeds", "seeds") and isinstance(v, list):
                    found.update(int(x) for x in v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(expected)
    return sorted(found)


def _manifest(stage: Path, rels: list[str], profiles: list[str] | None, course_spec: str) -> dict:
    from .data.course import course_dataset, describe_for_expected
    from .envinfo import describe_environment

    env = describe_environment()
    return {
        "made_by": "coursekit reference",
        "versions": {k: env[k] for k in ("coursekit", "python", "torch", "numpy", "nbgrader")},
        "device": env["device"],
        "profiles": profiles or "all",
        "dataset": describe_for_expected(course_dataset(course_spec), course_spec),
        "evaluator_seed": EVALUATOR_SEED,
        "reference_seeds": {rel.split("/")[0]: _seeds(json.loads((stage / rel).read_text()))
                            for rel in rels if rel.endswith("/expected.json")},
        "files": {rel: _sha(stage / rel) for rel in sorted(rels)},
    }


def build_reference(assignments: list[str] | None = None, profiles: list[str] | None = None, evaluators: bool = True,
                    check: bool = False, dataset: str | None = None, log=print) -> ReferenceResult:
    """Rebuild the reference outputs (or, with ``check``, report where the files in place differ).

    ``dataset`` switches the course data set (a name, or a path relative to ``data/``): everything is
    measured on it, and ``data/course.json`` names it once the rebuild succeeded (not with ``check``).
    """
    from .data.course import course_dataset, course_dataset_spec, set_course_dataset

    spec = dataset or course_dataset_spec()
    course_dataset(spec)  # a data set that does not load fails here, before any training
    with _env("COURSEKIT_DATASET", spec):
        result = _build(assignments, profiles, evaluators, check, spec, log, switching=dataset is not None)
    if dataset is not None and not check:
        log(f"course data set: {set_course_dataset(spec)} names {spec!r}")
    return result


@contextlib.contextmanager
def _env(name: str, value: str | None):
    """Set an environment variable for the rebuild: the make_expected modules and the probes read the course data
    set from COURSEKIT_DATASET, and the evaluators just trained (not yet in place) from COURSEKIT_EVALUATOR_DIR."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _build(assignments, profiles, evaluators, check, spec, log, switching: bool = False) -> ReferenceResult:
    import torch

    t0 = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same files on every run, and no slow-down on a busy machine
    known = reference_assignments()
    assignments = known if assignments is None else assignments
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise ValueError(f"no make_expected.py for {unknown}; assignments with reference outputs: {known}")
    result = ReferenceResult()
    root = paths.autograder_dir()
    with tempfile.TemporaryDirectory(prefix="coursekit-reference-") as tmp:
        stage = Path(tmp)
        rels = _stage_evaluators(stage, spec, log, switching) if evaluators else []
        with _env("COURSEKIT_EVALUATOR_DIR", str(stage / "reference") if evaluators else None):
            for a in assignments:
                ta = time.time()
                rels += _stage_assignment(a, profiles, stage, log)
                log(f"{a}: reference outputs in {time.time() - ta:.0f} s")
        for rel in rels:
            target = root / rel
            if check:
                if not target.is_file() or _sha(target) != _sha(stage / rel):
                    result.drift.append(rel)
                    log(f"DRIFT: {rel} differs from what the reference solution gives now")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(stage / rel, target)
            result.written.append(target)
        if not check:
            manifest_path = root / "reference" / "manifest.json"
            manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"files": {}}
            new = _manifest(stage, rels, profiles, spec)
            new["files"] = {**manifest.get("files", {}), **new["files"]}  # a partial rebuild keeps the others' entries
            new["reference_seeds"] = {**manifest.get("reference_seeds", {}), **new["reference_seeds"]}
            manifest_path.parent.mkdir(parents=True, exist_ok=True)
            manifest_path.write_text(json.dumps(new, indent=1) + "\n")
            result.written.append(manifest_path)
    torch.set_num_threads(threads)
    result.seconds = time.time() - t0
    log(("no drift" if not result.drift else f"{len(result.drift)} file(s) drifted") if check else f"wrote {len(result.written)} files")
    log(f"reference outputs: {result.seconds:.0f} s")
    return result

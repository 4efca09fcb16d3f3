"""The course data set: named once in data/course.json, recorded in every expected.json, checked before grading."""

import json
import os
import shutil

import pytest

from coursekit import paths
from coursekit.data import DataError, DatasetMismatch, check_measured_on, course_dataset, course_dataset_spec, dataset_fingerprint
from coursekit.data.course import course_file, describe_for_expected, set_course_dataset


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A kit whose data/ folder is a copy naming the sprites, whatever the real kit's course data set is (course.json can
    be changed); autograder/ is the real one, read only."""
    (tmp_path / "data").mkdir()
    shutil.copy(paths.data_dir() / "sprites.npz", tmp_path / "data")
    (tmp_path / "data" / "course.json").write_text(json.dumps({"dataset": "sprites"}))
    monkeypatch.setenv("COURSEKIT_ROOT", str(tmp_path))
    monkeypatch.delenv("COURSEKIT_DATASET", raising=False)
    monkeypatch.delenv("COURSEKIT_COURSE_FILE", raising=False)
    return tmp_path


def _other_than(name: str) -> str:
    """A data set that is not ``name`` (both load anywhere: sprites are embedded, digits come with scikit-learn)."""
    return "digits" if name != "digits" else "sprites"


def test_the_kit_names_a_course_data_set_that_loads():
    """Whatever course.json names (the sprites, or the data set a course switched to), it loads, and it is what the
    graders' thresholds were measured on (test_every_assignment_records_the_data_it_was_measured_on)."""
    spec = json.loads(course_file().read_text())["dataset"] if course_file().is_file() else "sprites"
    assert isinstance(spec, str) and spec
    if "COURSEKIT_DATASET" not in os.environ:
        assert course_dataset_spec() == spec
    assert len(course_dataset(spec)) > 0


def test_spec_from_file_then_environment(kit, monkeypatch):
    assert course_dataset_spec() == "sprites" and course_dataset().name == "sprites"
    monkeypatch.setenv("COURSEKIT_DATASET", "digits")
    assert course_dataset().name == "digits"
    # a course file elsewhere (how the tests run as a course that switched data sets)
    monkeypatch.delenv("COURSEKIT_DATASET")
    (kit / "switched.json").write_text(json.dumps({"dataset": "digits"}))
    monkeypatch.setenv("COURSEKIT_COURSE_FILE", str(kit / "switched.json"))
    assert course_file() == kit / "switched.json" and course_dataset_spec() == "digits" and course_dataset().name == "digits"


def test_a_relative_path_is_taken_from_data_not_the_working_directory(kit, monkeypatch, tmp_path):
    from coursekit.data import load_dataset
    from coursekit.data.files import write_course_files

    write_course_files(load_dataset("digits"), kit / "data" / "my_course")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    set_course_dataset("my_course")
    assert json.loads((kit / "data" / "course.json").read_text()) == {"dataset": "my_course"}
    assert course_dataset().name == "my_course" and course_dataset().image_shape == (8, 8)


def test_a_data_set_that_does_not_load_is_not_written(kit):
    before = (kit / "data" / "course.json").read_text()
    with pytest.raises(DataError, match="no_such_folder: not a data set name"):
        set_course_dataset("no_such_folder")
    assert (kit / "data" / "course.json").read_text() == before


def test_a_broken_course_file_is_named(kit):
    (kit / "data" / "course.json").write_text('{"data": "sprites"}')
    with pytest.raises(DataError, match=r"course\.json: should hold"):
        course_dataset_spec()


def test_fingerprint_sees_images_palette_and_split():
    from coursekit.data import load_dataset

    a, b = load_dataset("digits"), load_dataset("digits")
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(load_dataset("digits", split_seed=1)) != dataset_fingerprint(a)
    b.indices[0, 0, 0] ^= 1
    assert dataset_fingerprint(b) != dataset_fingerprint(a)


def test_thresholds_of_other_data_are_refused_with_the_command_to_run(kit, monkeypatch):
    from coursekit.data import load_dataset

    record = describe_for_expected(load_dataset("sprites"), "sprites")
    check_measured_on({"dataset": record}, "x/expected.json")  # same data: fine
    # the course file switched: it is named, with the command that rebuilds the thresholds
    (kit / "data" / "course.json").write_text(json.dumps({"dataset": "digits"}))
    with pytest.raises(DatasetMismatch, match=r"x/expected.json was measured on 'sprites' \(1442 images\), but the course data set "
                                              r"is now 'digits' \(1797 images, named in .*course.json\): its thresholds do not "
                                              r"apply. Rebuild them with `coursekit reference --dataset digits`") as e:
        check_measured_on({"dataset": record}, "x/expected.json")
    assert "COURSEKIT_DATASET" not in str(e.value)
    # the environment variable switched it: that is what the message names, and how to go back
    (kit / "data" / "course.json").write_text(json.dumps({"dataset": "sprites"}))
    monkeypatch.setenv("COURSEKIT_DATASET", "digits")
    with pytest.raises(DatasetMismatch, match=r"is now 'digits' \(1797 images, set by the environment variable "
                                              r"COURSEKIT_DATASET=digits\): its thresholds do not apply. Unset "
                                              r"COURSEKIT_DATASET to use the data set .*course.json names, or rebuild .*"
                                              r"`coursekit reference --dataset digits`") as e:
        check_measured_on({"dataset": record}, "x/expected.json")
    assert "named in" not in str(e.value)
    with pytest.raises(DatasetMismatch, match="records no data set"):
        check_measured_on({}, "x/expected.json")


def test_every_assignment_records_the_data_it_was_measured_on():
    from coursekit.grading.engine import check_reference_outputs, graded_assignments

    for a in graded_assignments():
        expected = json.loads((paths.autograder_dir() / a / "expected.json").read_text())
        assert expected["dataset"]["fingerprint"] == dataset_fingerprint(course_dataset()), a
    check_reference_outputs(graded_assignments())


def test_grading_stops_before_anyone_loses_points_when_the_data_changed(monkeypatch, tmp_path):
    from coursekit.grading.engine import GradeOptions, grade_batch

    measured_on = json.loads((paths.autograder_dir() / "pixelrnn" / "expected.json").read_text())["dataset"]["name"]
    monkeypatch.setenv("COURSEKIT_DATASET", _other_than(measured_on))  # data the thresholds were not measured on
    sub = tmp_path / "subs" / "ada"
    sub.mkdir(parents=True)
    shutil.copy(paths.assignments_dir() / "pixelrnn" / "pixelrnn.ipynb", sub)
    with pytest.raises(DatasetMismatch, match=f"pixelrnn/expected.json was measured on '{measured_on}'.*COURSEKIT_DATASET"):
        grade_batch([tmp_path / "subs"], tmp_path / "grades", assignments=["pixelrnn"], progress=False,
                    options=GradeOptions(insecure=True))  # nothing is graded: the data check comes first
    assert not (tmp_path / "grades" / "gradebook.csv").exists()


# --- coursekit reference --dataset: only the new data set's evaluator is trained ------------------------------------
def test_switching_trains_only_the_new_data_sets_evaluator(tmp_path, monkeypatch):
    """`coursekit reference --dataset X` trains X's evaluator (an autoencoder here: the files have no labels, and the
    log says what it measures, not "accuracy nan"); the sprites' and digits' evaluators and their manifest hashes stay
    as they were. On a tiny course-format data set, in a kit of its own, in seconds."""
    import numpy as np
    import torch

    from coursekit import reference
    from coursekit.data import PaletteDataset
    from coursekit.data.files import write_course_files

    sprites = paths.data_dir() / "sprites.npz"
    monkeypatch.setenv("COURSEKIT_ROOT", str(tmp_path))
    monkeypatch.delenv("COURSEKIT_DATASET", raising=False)
    monkeypatch.delenv("COURSEKIT_COURSE_FILE", raising=False)
    (tmp_path / "data").mkdir()
    shutil.copy(sprites, tmp_path / "data")
    (tmp_path / "data" / "course.json").write_text(json.dumps({"dataset": "sprites"}))
    rng = np.random.default_rng(0)
    write_course_files(PaletteDataset("tiny", rng.integers(0, 4, (24, 8, 8)).astype(np.uint8),
                                      np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8)),
                       tmp_path / "data" / "tiny")
    ref = tmp_path / "autograder" / "reference"
    ref.mkdir(parents=True)
    for name in ("sprites", "digits"):  # stand-ins for the kit's evaluators: they must come out untouched
        torch.save({"format": 2, "marker": torch.tensor([1.0]), "name": name}, ref / f"evaluator_{name}.pt")
    before = {p.name: p.read_bytes() for p in ref.glob("evaluator_*.pt")}
    hashes = {f"reference/evaluator_{n}.pt": reference._sha(ref / f"evaluator_{n}.pt") for n in ("sprites", "digits")}
    (ref / "manifest.json").write_text(json.dumps({"files": hashes}))
    assert reference.evaluator_specs("sprites", switching=False) == ["sprites", "digits"]  # a plain rebuild: all of them
    from coursekit.metrics import evaluator as ev

    trained, train = [], ev.build_reference_evaluator
    quick = lambda ds, config=ev.default_config: ev.EvaluatorConfig(**{**config(ds).__dict__, "epochs": 2})  # noqa: E731

    def recorded(spec, out, seed=0, **kw):  # the real training, two epochs: what is trained matters here, not how well
        trained.append(spec)
        return train(spec, out, seed=seed, **kw)

    monkeypatch.setattr(ev, "build_reference_evaluator", recorded)
    monkeypatch.setattr(ev, "default_config", quick)
    lines = []
    res = reference.build_reference(assignments=[], dataset="tiny", log=lines.append)
    assert trained == ["tiny"], trained
    assert {p.name: p.read_bytes() for p in ref.glob("evaluator_*.pt") if p.name in before} == before
    manifest = json.loads((ref / "manifest.json").read_text())
    assert {k: manifest["files"][k] for k in hashes} == hashes and "reference/evaluator_tiny.pt" in manifest["files"]
    assert (ref / "evaluator_tiny.pt").is_file() and json.loads((tmp_path / "data" / "course.json").read_text()) == {"dataset": "tiny"}
    said = "\n".join(lines)
    assert "nan" not in said and "autoencoder features; held-out reconstruction error 0." in said, said
    assert not res.drift

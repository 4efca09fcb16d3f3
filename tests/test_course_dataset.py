"""The course data set: named once in data/course.json, recorded in every expected.json, checked before grading."""

import json
import shutil

import pytest

from coursekit import paths
from coursekit.data import DataError, DatasetMismatch, check_measured_on, course_dataset, course_dataset_spec, dataset_fingerprint
from coursekit.data.course import describe_for_expected, set_course_dataset


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A kit whose data/ folder is a copy (course.json can be changed); autograder/ is the real one, read only."""
    (tmp_path / "data").mkdir()
    shutil.copy(paths.data_dir() / "sprites.npz", tmp_path / "data")
    shutil.copy(paths.data_dir() / "course.json", tmp_path / "data")
    monkeypatch.setenv("COURSEKIT_ROOT", str(tmp_path))
    monkeypatch.delenv("COURSEKIT_DATASET", raising=False)
    return tmp_path


def test_the_kit_names_the_sprites():
    assert json.loads((paths.data_dir() / "course.json").read_text()) == {"dataset": "sprites"}


def test_spec_from_file_then_environment(kit, monkeypatch):
    assert course_dataset_spec() == "sprites" and course_dataset().name == "sprites"
    monkeypatch.setenv("COURSEKIT_DATASET", "digits")
    assert course_dataset().name == "digits"


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
    monkeypatch.setenv("COURSEKIT_DATASET", "digits")
    with pytest.raises(DatasetMismatch, match=r"x/expected.json was measured on 'sprites' \(1442 images\), but the course data set "
                                              r"is now 'digits'.*coursekit reference --dataset digits"):
        check_measured_on({"dataset": record}, "x/expected.json")
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

    monkeypatch.setenv("COURSEKIT_DATASET", "digits")
    sub = tmp_path / "subs" / "ada"
    sub.mkdir(parents=True)
    shutil.copy(paths.assignments_dir() / "pixelrnn" / "pixelrnn.ipynb", sub)
    with pytest.raises(DatasetMismatch, match="pixelrnn/expected.json was measured on 'sprites'"):
        grade_batch([tmp_path / "subs"], tmp_path / "grades", assignments=["pixelrnn"], progress=False,
                    options=GradeOptions(insecure=True))  # nothing is graded: the data check comes first
    assert not (tmp_path / "grades" / "gradebook.csv").exists()

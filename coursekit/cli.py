"""``coursekit``: the kit's one command-line tool. Each subcommand is a thin layer over a library function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


# --- data ------------------------------------------------------------------------------
def _cmd_data_list(args) -> int:
    from .data.registry import DATASETS

    docs = {
        "sprites": "the embedded default: 20x20 emoji icons, k-means palette, category labels",
        "digits": "scikit-learn's 8x8 digits, 17 grey levels, labels 0-9 (tiny, for tests)",
        "pokemon": "the course's 792 Pokemon sprites (after `coursekit data fetch pokemon`)",
    }
    for name in DATASETS:
        print(f"{name:10s} {docs.get(name, '')}")
    print("or a path: a .npz written by `coursekit data build`, or a folder with pixel_color.txt + colormap.txt")
    from .data.course import course_dataset_origin, course_dataset_spec

    print(f"course data set (notebooks and graders): {course_dataset_spec()}  ({course_dataset_origin()}; "
          "switch with `coursekit reference --dataset NAME`)")
    return 0


def _load(args):
    from .data import load_dataset

    return load_dataset(args.name, root=getattr(args, "root", None))


def _cmd_data_info(args) -> int:
    print(_load(args).describe())
    return 0


def _cmd_data_show(args) -> int:
    import numpy as np

    from .data.files import check_writable
    from .plot import save_grid

    ds = _load(args)
    out = Path(args.output)
    check_writable(out, args.force)
    pos = ds.split_indices(args.split)
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(pos, size=min(args.n, len(pos)), replace=False))
    save_grid(ds.indices[pick], ds.palette, out, title=f"{ds.name} ({args.split}): {len(pick)} of {len(pos)}")
    print(f"wrote {out}")
    return 0


def _cmd_data_fetch(args) -> int:
    from .data.fetch import FetchError, fetch_pokemon

    try:
        fetch_pokemon(dest=args.dest, url=args.url, force=args.force, timeout=args.timeout)
    except FetchError as e:
        print(f"coursekit data fetch: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_data_build(args) -> int:
    from tqdm.auto import tqdm

    from .data.build import BuildConfig, build_from_folder
    from .data.files import check_writable, save_npz, write_course_files

    out = Path(args.output)
    if args.format == "npz":
        check_writable(out, args.force)
    cfg = BuildConfig(size=args.size, colors=args.colors, seed=args.seed)
    ds = build_from_folder(args.images_dir, cfg, progress=lambda it: tqdm(it, desc="reading images", unit="img"))
    if args.format == "npz":
        save_npz(ds, out, meta={"built_with": vars(cfg)}, force=args.force)
    else:
        write_course_files(ds, out, force=args.force)
    print(ds.describe())
    print(f"wrote {out}")
    return 0


def _cmd_data_export(args) -> int:
    from .data.files import write_course_files

    pix, cmap = write_course_files(_load(args), args.output, force=args.force)
    print(f"wrote {pix} and {cmap}")
    return 0


# --- release / check / demo / env --------------------------------------------------------
def _cmd_release(args) -> int:
    from . import release

    if args.check:
        drift = release.find_drift(args.assignments or None)
        for name in drift:
            print(f"assignments/{name}/{name}.ipynb is out of date with solutions/{name}: run `coursekit release --force`")
        print("student versions up to date" if not drift else f"{len(drift)} student version(s) drifted")
        return 1 if drift else 0
    if args.out:
        release.build_release(args.out, args.assignments or None, force=args.force)
    else:
        release.update_assignments(args.assignments or None, force=args.force)
    return 0


def _cmd_check(args) -> int:
    from .checks.runner import check_notebook

    notes: list[str] = []
    results = check_notebook(args.notebook, args.assignment, timeout=args.timeout, notes=notes)
    for n in notes:  # what grading leaves out of the notebook (top-level work, cells that are not valid Python)
        print(f"[NOTE] {n}")
    for r in results:
        print(r.line())
    n_ok = sum(r.passed for r in results)
    print(f"{n_ok}/{len(results)} public checks passed")
    return 0 if n_ok == len(results) else 1


def _cmd_submit(args) -> int:
    from .submit import SubmissionError, submit

    try:
        res = submit(args.notebook, out_dir=args.out, assignment=args.assignment, run_checks=not args.no_checks,
                     timeout=args.timeout, allow_broken=args.allow_broken, force=args.force)
    except SubmissionError as e:
        print(f"coursekit submit: not submitted: {e}", file=sys.stderr)
        return 1
    for n in res.notes:
        print(f"[NOTE] {n}")
    for r in res.checks:
        print(r.line())
    if res.checks:
        print(f"{len(res.checks) - len(res.failed_checks)}/{len(res.checks)} public checks passed"
              + (" (failed checks do not stop a submission; fix them for more points)" if res.failed_checks else ""))
    print(f"{res.assignment} of {res.student_name} ({res.student_id}) packed into {res.zip_path}: hand in this file")
    return 0


STAFF_COMMANDS = {"release": ("solutions",), "grade": ("autograder",), "similarity": ("autograder",), "gradebook": ("autograder",), "reference": ("autograder", "solutions"),
                  "demo": ("autograder", "solutions")}  # the course staff's commands, and the hidden folders each needs
STAFF_COMMANDS["export"] = ("autograder",)  # coursekit export gradescope: the hidden graders go into the bundle


def _missing_staff_folders(command: str) -> list[str]:
    from . import paths

    return [f"{name}/" for name in STAFF_COMMANDS.get(command, ()) if not (paths.kit_root() / name).is_dir()]


def _staff_only(args) -> int:
    """A staff command in a student release: say what it is and what a student runs instead."""
    print(f"coursekit {args.command}: this is a course-staff command; it needs the instructor's kit "
          f"({' and '.join(_missing_staff_folders(args.command))}), which the student release does not include. Students: "
          "`coursekit check NOTEBOOK` runs the public checks and `coursekit submit NOTEBOOK` packs your work to hand in.",
          file=sys.stderr)
    return 2


def _cmd_grade(args) -> int:
    from .envinfo import environment_line
    from .grading.engine import GradeOptions, GradingInterrupted, IsolationError, grade_batch
    from .grading.layout import describe_outputs
    from .grading.reports import summary_table
    from .grading.submissions import NothingToGrade

    if not args.dry_run:  # a dry run prints only the script or the manifest
        print(environment_line())
    opts = GradeOptions(profile=args.profile, timeout=args.timeout, call_timeout=args.call_timeout, force=args.force,
                        insecure=args.insecure)
    if args.nbgrader_course:
        return _grade_nbgrader_course(args, opts)
    if not args.submissions or not args.out:
        print("coursekit grade: error: give the submissions to grade and -o OUT (or --nbgrader-course DIR)", file=sys.stderr)
        return 2
    if args.backend != "local" or args.dry_run:
        return _grade_on_scheduler(args, opts)
    shard = None
    if args.shard:
        from .grading.shards import parse_shard

        shard = parse_shard(args.shard)
    if args.insecure:
        print("--insecure: where bubblewrap is missing, the students' code runs with limits only, as your user", file=sys.stderr)
    try:
        reports = grade_batch(args.submissions, args.out, args.assignment or None, jobs=args.jobs, options=opts,
                              log=lambda m: print(m, flush=True), shard=shard)
    except (IsolationError, NothingToGrade, FileNotFoundError) as e:
        print(f"coursekit grade: error: {e}", file=sys.stderr)
        return 2
    except GradingInterrupted as e:
        print(f"coursekit grade: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    print(summary_table(reports))
    if shard is not None:
        print(f"shard {shard}: its reports are in {args.out}/staff/; once every shard is done, `coursekit gradebook "
              f"{args.out}` builds the gradebook")
        return 0
    print(describe_outputs(args.out))
    return 0


def _grade_on_scheduler(args, opts) -> int:
    """``coursekit grade --backend slurm|k8s`` (and ``--dry-run``): the script or manifest, or the whole run on Slurm."""
    from .grading import k8s, slurm
    from .grading.engine import IsolationError
    from .grading.layout import describe_outputs
    from .grading.shards import count_submissions
    from .grading.submissions import NothingToGrade

    if args.shard:
        print("coursekit grade: error: --shard is what each task of --backend runs; give one or the other", file=sys.stderr)
        return 2
    if args.backend == "local":
        print("coursekit grade: error: --dry-run writes the batch script (--backend slurm) or the Job (--backend k8s); "
              "name one", file=sys.stderr)
        return 2
    sl = slurm.SlurmOptions(partition=args.partition, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                            mem=args.mem, time=args.time, max_parallel=args.max_parallel, shards=args.shards,
                            retries=args.retries, image=args.image, sbatch_args=list(args.sbatch_arg or []))
    profile = opts.profile or slurm.default_profile(sl)
    task_args = slurm.grade_args(opts, args.assignment, profile)
    try:
        if args.backend == "k8s":
            if not args.dry_run:
                print("coursekit grade: error: --backend k8s writes the Job for kubectl: add --dry-run (and `kubectl apply -f` "
                      "what it prints)", file=sys.stderr)
                return 2
            ko = k8s.K8sOptions(image=args.image or k8s.K8sOptions.image, claim=args.k8s_claim, mount=args.k8s_mount,
                                parallelism=args.max_parallel or k8s.K8sOptions.parallelism, gpus_per_task=args.gpus_per_task,
                                cpu=str(args.cpus_per_task), memory=args.mem or k8s.K8sOptions.memory, retries=args.retries)
            count = args.shards
            if count is None:
                if not all(Path(p).exists() for p in args.submissions):
                    print("coursekit grade: error: the inputs are not readable here (paths in the pods' volume?): give "
                          "--shards N", file=sys.stderr)
                    return 2
                count = count_submissions(args.submissions, args.assignment)
            print(k8s.manifest_text(k8s.job_manifest(args.submissions, args.out, count, ko, task_args)), end="")
            return 0
        if args.dry_run:
            count = args.shards or min(count_submissions(args.submissions, args.assignment), slurm.MAX_ARRAY + 1)
            print(slurm.batch_script(args.submissions, Path(args.out), count, sl, task_args), end="")
            return 0
        res = slurm.grade_on_slurm(args.submissions, args.out, args.assignment or None, opts, sl,
                                   log=lambda m: print(m, flush=True))
    except (IsolationError, NothingToGrade, FileNotFoundError, slurm.SlurmError) as e:
        print(f"coursekit grade: error: {e}", file=sys.stderr)
        return 2
    print(res.merged.summary())
    print(describe_outputs(args.out))
    return 1 if res.merged.missing else 0


def _cmd_gradebook(args) -> int:
    from .grading.layout import describe_outputs
    from .grading.shards import merge

    merged = merge(args.out)
    print(merged.summary())
    print(describe_outputs(args.out))
    return 1 if merged.missing else 0


def _grade_nbgrader_course(args, opts) -> int:
    """``coursekit grade --nbgrader-course DIR``: grade DIR/submitted/, then write the points into nbgrader's gradebook."""
    from .grading.engine import GradingInterrupted, IsolationError
    from .grading.layout import describe_outputs
    from .grading.nbgrader_course import NbgraderCourseError, grade_nbgrader_course
    from .grading.reports import summary_table
    from .grading.submissions import NothingToGrade

    if args.submissions:
        print("coursekit grade: error: --nbgrader-course grades the course's submitted/ folder; give no other inputs",
              file=sys.stderr)
        return 2
    if args.shard or args.backend != "local" or args.dry_run:
        print("coursekit grade: error: --nbgrader-course grades here, in one run (no --shard, --backend or --dry-run)",
              file=sys.stderr)
        return 2
    try:
        course, reports, summary = grade_nbgrader_course(args.nbgrader_course, args.out, args.assignment or None,
                                                         jobs=args.jobs, options=opts, log=lambda m: print(m, flush=True))
    except (IsolationError, NothingToGrade, NbgraderCourseError, FileNotFoundError) as e:
        print(f"coursekit grade: error: {e}", file=sys.stderr)
        return 2
    except GradingInterrupted as e:
        print(f"coursekit grade: {e} (nothing was written into nbgrader's gradebook)", file=sys.stderr, flush=True)
        return e.exit_code
    print(summary_table(reports))
    print("\n".join(summary.lines(course)))
    print(describe_outputs(args.out or course.root / "coursekit-grades"))
    return 0


def _cmd_similarity(args) -> int:
    from .similarity import SimilarityOptions, similarity_report

    opts = SimilarityOptions(top=args.top)
    res = similarity_report(args.submissions, args.assignment, args.output, options=opts, force=args.force)
    for line in res.summary_lines():
        print(line)
    return 0


def _cmd_reference(args) -> int:
    from .envinfo import environment_line
    from .reference import build_reference

    print(environment_line())
    res = build_reference(args.assignment or None, args.profile or None, evaluators=not args.no_evaluators, check=args.check,
                          dataset=args.dataset)
    return 1 if res.drift else 0


def _cmd_demo(args) -> int:
    from .demo import run_demo
    from .grading.engine import GradingInterrupted

    try:
        return run_demo(out=args.out, jobs=args.jobs, profile=args.profile, mistakes=args.mistakes)
    except GradingInterrupted as e:
        print(f"coursekit demo: {e}", file=sys.stderr, flush=True)
        return e.exit_code


def _cmd_export_gradescope(args) -> int:
    from .export.gradescope import BundleConfig, build_bundle

    cfg = BundleConfig(args.assignment, profile=args.profile, hidden_visibility=args.hidden_tests, output_format=args.output_format,
                       leaderboard=args.leaderboard, timeout=args.timeout, torch_spec=args.torch or "")
    out = build_bundle(cfg, args.output, force=args.force)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): Gradescope's autograder of {cfg.assignment}, {cfg.profile} profile, "
          f"grading stopped after {cfg.timeout:g} s; upload it as the assignment's autograder (Ubuntu base image). Hidden "
          f"tests: {cfg.hidden_visibility}; leaderboard: {'on' if cfg.leaderboard else 'off'}. Final grades on a GPU: "
          "coursekit grade on Gradescope's export of the submissions (README, 'Gradescope')")
    return 0


def _cmd_env(args) -> int:
    from .envinfo import environment_line

    print(environment_line())
    return 0


# --- parser ----------------------------------------------------------------------------
def build_parser(staff: bool | None = None) -> argparse.ArgumentParser:
    """The command line; ``staff`` (default: the hidden folders are there, ``paths.is_staff_kit``) lists and enables the
    course staff's commands. Without them (a student release) those commands are left out of ``--help`` and refuse
    with a message saying what to run instead."""
    from . import paths

    staff = paths.is_staff_kit() if staff is None else staff
    p = argparse.ArgumentParser(
        prog="coursekit",
        description=("Assignments, reference solutions and autograder for a course on deep generative models "
                     "(PixelRNN, VAE, GAN) on small palette images." if staff else
                     "The course's library for its assignments on deep generative models (PixelRNN, VAE, GAN): the data, "
                     "the public checks and the packing of your submission."),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser("data", help="list, inspect, fetch and build palette-image data sets")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    x = dsub.add_parser("list", help="the data sets the kit knows")
    x.set_defaults(func=_cmd_data_list)
    x = dsub.add_parser("info", help="size, palette, classes and split of a data set")
    x.add_argument("name", help="sprites, digits, pokemon, or a path (.npz or a folder with the course's text files)")
    x.add_argument("--root", help="folder holding pokemon's pixel_color.txt and colormap.txt")
    x.set_defaults(func=_cmd_data_info)
    x = dsub.add_parser("show", help="save a grid picture of a data set's images")
    x.add_argument("name", help="sprites, digits, pokemon, or a path")
    x.add_argument("-o", "--output", default="grid.png", help="PNG to write (default: grid.png)")
    x.add_argument("-n", type=int, default=100, help="how many images (default: 100)")
    x.add_argument("--split", choices=["train", "test", "all"], default="all", help="which split to draw from")
    x.add_argument("--seed", type=int, default=0, help="which images are drawn (default: 0)")
    x.add_argument("--root", help="folder holding pokemon's text files")
    x.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    x.set_defaults(func=_cmd_data_show)
    x = dsub.add_parser(
        "fetch", help="download the course's Pokemon files, check them and store them",
        description="Download pixel_color.txt and colormap.txt, check that they are in the course's format, and store "
        "them with SOURCE.json (the URL they came from) in data/downloads/pokemon/, where load_dataset('pokemon') and "
        "`coursekit reference --dataset pokemon` read them. Offline, check and store a copy you have with "
        "--url file:///path/to/folder/ (or the folder's path), or copy the two files into data/downloads/pokemon/.")
    x.add_argument("name", choices=["pokemon"], help="the data set to download")
    x.add_argument("--url", help="base URL holding pixel_color.txt and colormap.txt (default: the course's site); "
                   "file:///path/to/folder/ or a folder's path takes a local copy, without network")
    x.add_argument("--dest", help="folder to store them in (default: data/downloads/pokemon, where the kit reads them)")
    x.add_argument("--timeout", type=float, default=30.0, help="seconds per download (default: 30)")
    x.add_argument("--force", action="store_true", help="download again over an existing copy")
    x.set_defaults(func=_cmd_data_fetch)
    x = dsub.add_parser("build", help="quantise a folder of images into a palette data set")
    x.add_argument("images_dir", help="folder of images; class subfolders (folder/CLASS/img.png) become labels")
    x.add_argument("--size", type=int, default=20, help="output images are SIZE x SIZE (default: 20)")
    x.add_argument("--colors", type=int, default=167, help="palette size found by k-means (default: 167, at most 256)")
    x.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    x.add_argument("--format", choices=["npz", "course"], default="npz", help="a .npz file, or the course's two text files in a folder")
    x.add_argument("-o", "--output", required=True, help="file (npz) or folder (course) to write")
    x.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    x.set_defaults(func=_cmd_data_build)
    x = dsub.add_parser("export", help="write a data set in the course's text format (pixel_color.txt, colormap.txt)")
    x.add_argument("name", help="sprites, digits, pokemon, or a path")
    x.add_argument("-o", "--output", required=True, help="folder to write the two files in")
    x.add_argument("--root", help="folder holding pokemon's text files")
    x.add_argument("--force", action="store_true", help="overwrite existing files")
    x.set_defaults(func=_cmd_data_export)

    def staff_parser(name, help, **kw):
        """A course-staff command: listed only in the instructor's kit (argparse lists only subcommands given a help)."""
        return sub.add_parser(name, **({"help": help} if staff else {}), **kw)

    r = staff_parser(
        "release",
        help="generate the student notebooks from solutions/ (and, with --out, the folder students receive)",
        description="Without --out: regenerate assignments/<name>/<name>.ipynb from solutions/<name>/<name>.ipynb. "
        "With --out DIR: write the whole student release (student notebooks, the students' README, the coursekit "
        "package with its data) to DIR and audit that it holds no solution and no hidden test. DIR may be an existing "
        "folder (a git repository, say): with --force only the files an earlier release wrote there (listed in "
        "DIR/.coursekit-release.json) are replaced, and nothing else is touched; a changed release file, or a file of "
        "yours where the release writes one, stops it before anything is written.",
    )
    r.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    r.add_argument("--out", help="write the full student release to this folder")
    r.add_argument("--check", action="store_true", help="only report student versions that drifted from their source; exit 1 if any")
    r.add_argument("--force", action="store_true",
                   help="replace differing student notebooks / write into an existing --out folder (replacing only the "
                   "files an earlier release wrote)")
    r.set_defaults(func=_cmd_release)

    c = sub.add_parser(
        "check",
        help="run an assignment's public checks on a notebook (in a separate process)",
        description="Run the public checks of the notebook's assignment (named in its metadata) on its definitions, taken as "
        "the grader takes them (imports, functions, classes and constants; cells tagged train, demo or check and top-level "
        "work such as training runs and plots left out, each named in a note), in a separate process with a time limit, "
        "so an endless loop or a crash cannot hang the command. The checks test shapes and simple properties and give "
        "hints; they are not the grader's tests. Exit code 0 when every check passed, 1 otherwise.",
    )
    c.add_argument("notebook", help="the student's notebook (.ipynb)")
    c.add_argument("--assignment", help="which assignment's checks (default: from the notebook)")
    c.add_argument("--timeout", type=float, default=300.0, help="seconds before the notebook's code is stopped (default: 300)")
    c.set_defaults(func=_cmd_check)

    u = sub.add_parser(
        "submit",
        help="check a notebook and pack it into the zip to hand in",
        description="Validate a notebook for submission (it can be read, it is the assignment it says it is, your name and "
        "student ID are filled in at its top, its code runs through the public checks) and write <ID>_<Name>.zip holding "
        "<assignment>/<assignment>.ipynb, exactly what the grader reads. Failed public checks are listed but do not stop "
        "the submission; code that does not run at all does, unless --allow-broken. Exit code 0 when the zip was written, "
        "1 when the notebook cannot be submitted as it is (the message says why).",
    )
    u.add_argument("notebook", help="your notebook (.ipynb), saved")
    u.add_argument("-o", "--out", help="folder to write the zip in (default: the notebook's folder)")
    u.add_argument("--assignment", help="the assignment it must be (default: the one its metadata names)")
    u.add_argument("--timeout", type=float, default=300.0, help="seconds for the public checks (default: 300)")
    u.add_argument("--no-checks", action="store_true", help="pack without running the public checks")
    u.add_argument("--allow-broken", action="store_true", help="pack even when the notebook's code does not run")
    u.add_argument("--force", action="store_true", help="replace an existing zip of the same name")
    u.set_defaults(func=_cmd_submit)

    g = staff_parser(
        "grade",
        help="grade submissions with the hidden graders: gradebook, reports and feedback pages",
        description="Grade each submission (nbgrader's submitted/, a folder of student folders, zips or loose notebooks "
        "such as alice.ipynb, a zip of a whole class, one student's folder or zip, a notebook) in a sandboxed process. "
        "Each student is graded for the assignments their notebooks name (an assignment not handed in is 'not "
        "submitted'). What may go back to students is written under OUT/feedback/ (feedback.html, Gradescope's "
        "results.json, a summary page per student); the full reports and the graders' logs under OUT/staff/; the "
        "gradebook, an LMS export and per-test pass rates in OUT. Submissions "
        "already graded with the same graders and profile are skipped, so a stopped batch can be restarted: Ctrl-C "
        "(exit code 130) or SIGTERM (143) stops it cleanly, and the same command resumes. Refuses to start where "
        "bubblewrap's sandbox is missing, unless --insecure.",
    )
    g.add_argument("submissions", nargs="*", help="folders, zips or notebooks")
    g.add_argument("-o", "--out", help="folder for the gradebook and reports (required, but with --nbgrader-course: "
                   "default DIR/coursekit-grades)")
    g.add_argument("--nbgrader-course", metavar="DIR",
                   help="grade the nbgrader course's DIR/submitted/ and write the points into its gradebook database "
                   "(one grade cell per rubric test, beside the manually graded cells, for formgrader and `nbgrader "
                   "export`) and the feedback pages into DIR/feedback/ for `nbgrader release_feedback` (a page there "
                   "that the kit did not write is replaced only with --force)")
    g.add_argument("-a", "--assignment", action="append",
                   help="grade only this assignment (repeatable; default: each student's notebooks, by the assignment they name)")
    g.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once (default: 1; one GPU each where there are several)")
    g.add_argument("--profile", choices=["smoke", "full"], help="grading profile (default: full on a GPU, smoke on a CPU)")
    g.add_argument("--timeout", type=float, default=1800.0, help="seconds for one submission (default: 1800)")
    g.add_argument("--call-timeout", type=float, help="seconds for one call into student code (default: the profile's)")
    g.add_argument("--force", action="store_true", help="grade again even where a report exists")
    g.add_argument("--insecure", action="store_true",
                   help="grade without bubblewrap: the student's code then runs with limits only, as the grader's user, and can "
                   "read and change what that user can (without this flag, grading refuses to start where bubblewrap is missing)")
    g.add_argument("--shard", metavar="K/N",
                   help="grade only shard K of N (K from 0 to N-1) of the submissions, by a hash of student and assignment, "
                   "into an OUT other shards share; no gradebook (`coursekit gradebook OUT` builds it)")
    g.add_argument("--backend", choices=["local", "slurm", "k8s"], default="local",
                   help="local (default): grade here; slurm: submit a job array (one shard per task), wait, retry failed "
                   "tasks, merge; k8s: with --dry-run, print an Indexed Job for kubectl")
    g.add_argument("--dry-run", action="store_true", help="print the Slurm batch script or the Kubernetes Job; submit nothing")
    s = g.add_argument_group("--backend slurm and k8s")
    s.add_argument("--shards", type=int, help="array tasks / Job completions N (default: the number of submissions)")
    s.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    s.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per task (default: 1; 0 for CPU nodes, then the smoke "
                   "profile is the default)")
    s.add_argument("--cpus-per-task", type=int, default=4, help="CPUs per task (default: 4)")
    s.add_argument("--mem", help="memory per task, e.g. 16G (Slurm) or 16Gi (Kubernetes)")
    s.add_argument("--time", default="02:00:00", help="Slurm time limit per task, HH:MM:SS (default: 02:00:00)")
    s.add_argument("--max-parallel", type=int, help="tasks at once (Slurm's %%M; Kubernetes' parallelism, default 4)")
    s.add_argument("--retries", type=int, default=2, help="resubmissions of shards with reports missing (default: 2)")
    s.add_argument("--image", help="Slurm: an Apptainer image (.sif) to grade in (default: this installation, shared); "
                   "k8s: the runner image")
    s.add_argument("--sbatch-arg", action="append", help="another sbatch option for the script, e.g. --sbatch-arg=--account=X")
    s.add_argument("--k8s-claim", default="coursekit-grading", help="PersistentVolumeClaim holding INPUTS and OUT")
    s.add_argument("--k8s-mount", default="/grading", help="where the pods mount it (INPUTS and OUT are paths under it)")
    g.set_defaults(func=_cmd_grade)

    sim = staff_parser(
        "similarity",
        help="compare the students' answer cells pairwise and write an HTML report of the most similar pairs",
        description="Fingerprint each student's answer cells (copydetect's winnowing over tokens, with names replaced, so "
        "renamed variables and reordered functions still match), leave out the code the student notebook gives, and "
        "write OUTPUT: the pairs ranked by how much of their own code they share, the most similar side by side with the "
        "shared lines highlighted. Similarity is evidence for a person to look at, not a verdict: shared code can come "
        "from the lectures, the documentation or the assignment's hints.",
    )
    sim.add_argument("submissions", nargs="+", help="folders, zips or notebooks, as `coursekit grade` reads them")
    sim.add_argument("-a", "--assignment", required=True, help="the assignment whose answer cells are compared")
    sim.add_argument("-o", "--output", required=True, help="the HTML report to write")
    sim.add_argument("--top", type=int, default=20, help="pairs shown side by side (default: 20; every pair is in the table)")
    sim.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    sim.set_defaults(func=_cmd_similarity)

    b = staff_parser(
        "gradebook",
        help="build the gradebook of OUT from its complete reports (after sharded grading) and list what is missing",
        description="Write OUT/gradebook.csv, the LMS export, the pass rates and the summary pages from whatever reports "
        "in OUT are complete, for the students of the latest roster, and list the submissions with no complete report "
        "(shards not run, killed or failed) and the reports whose grading had a problem. Exit code 1 while a submission "
        "is missing. Run it once the shards of `coursekit grade --shard K/N` are done; it never grades.",
    )
    b.add_argument("out", help="the grading output folder the shards wrote into")
    b.set_defaults(func=_cmd_gradebook)

    f = staff_parser(
        "reference",
        help="TA: rerun the reference solutions and rewrite every reference output (expected values, thresholds, evaluators, pictures)",
        description="Train the evaluator networks, run each assignment's make_expected.py (reference solution, several seeds, "
        "each grading profile) and write autograder/*/expected.json, the feedback's reference pictures and "
        "autograder/reference/manifest.json. With --check, rebuild in a scratch folder and report drift instead of writing.",
    )
    f.add_argument("-a", "--assignment", action="append", help="only this assignment (repeatable; default: all)")
    f.add_argument("-p", "--profile", action="append", choices=["smoke", "full"], help="only this grading profile (repeatable; default: all)")
    f.add_argument("--no-evaluators", action="store_true", help="keep the evaluator networks as they are")
    f.add_argument("--dataset", default=None,
                   help="switch the course data set (sprites, pokemon, or a path relative to data/): train its evaluator "
                   "(the other data sets' evaluators are kept as they are), measure everything on it, then name it in "
                   "data/course.json (default: the one data/course.json names)")
    f.add_argument("--check", action="store_true", help="report files that would change; write nothing; exit 1 on drift")
    f.set_defaults(func=_cmd_reference)

    m = staff_parser(
        "demo",
        help="the main job on the embedded data: build and audit the release, grade example submissions",
        description="The instructor's tour of the kit: print the versions and the device, describe the course data set, check "
        "that the committed student notebooks match their sources, build the student release and audit it, then grade "
        "example submissions per assignment (the reference solution, the untouched student version and typical mistakes) "
        "in the sandbox and print the table and where the gradebook and feedback pages are. Exit code 0 when every "
        "example got the grade it should.",
    )
    m.add_argument("--out", help="folder for the release, the example submissions and their grades (default: out/demo in the kit)")
    m.add_argument("-j", "--jobs", type=int, default=2, help="submissions graded at once (default: 2)")
    m.add_argument("--profile", choices=["smoke", "full"], help="grading profile (default: by device)")
    m.add_argument("--mistakes", type=int, default=2, help="typical mistakes graded per assignment (default: 2)")
    m.set_defaults(func=_cmd_demo)

    x = staff_parser(
        "export",
        help="export the grading to where a course grades: a Gradescope autograder zip",
        description="Write what another platform runs to grade with this kit.",
    )
    xsub = x.add_subparsers(dest="export_command", metavar="TARGET", required=True)
    gs = xsub.add_parser(
        "gradescope",
        help="a Gradescope autograder zip for one assignment",
        description="Write Gradescope's autograder zip of an assignment: setup.sh (installs PyPI's CPU build of torch and "
        "the kit carried in the zip, with the assignment's hidden graders, reference outputs and data) and run_autograder "
        "(finds the notebook in /autograder/submission, grades it in the smoke profile inside the sandbox where the "
        "container allows it, with limits only otherwise, said in the results, and writes "
        "/autograder/results/results.json). Gradescope has no GPU: for final grades on a GPU, grade Gradescope's export "
        "of the submissions with `coursekit grade EXPORT --profile full` (the hybrid pattern, README).",
    )
    gs.add_argument("-a", "--assignment", required=True, help="the assignment to grade")
    gs.add_argument("-o", "--output", required=True, help="the zip to write (e.g. autograder.zip)")
    gs.add_argument("--profile", choices=["smoke", "full"], default="smoke", help="grading profile (default: smoke; Gradescope has no GPU)")
    gs.add_argument("--hidden-tests", choices=["after_due_date", "after_published", "hidden", "visible"], default="after_due_date",
                    help="Gradescope visibility of the tests the rubric hides the details of (default: after_due_date; "
                    "visible: shown at once with their message replaced)")
    gs.add_argument("--output-format", choices=["md", "html"], default="md", help="how Gradescope renders the outputs (default: md)")
    gs.add_argument("--leaderboard", action="store_true", help="send held-out bits per pixel and FID to Gradescope's leaderboard")
    gs.add_argument("--timeout", type=float, default=480.0,
                    help="seconds of grading before it is stopped (default: 480, under Gradescope's default 10 minutes; "
                    "raise both where the assignment's limit is raised, up to 40 minutes)")
    gs.add_argument("--torch", help="the torch setup.sh installs from the CPU index (default: this machine's version, e.g. torch==2.3.1)")
    gs.add_argument("--force", action="store_true", help="replace an existing zip")
    gs.set_defaults(func=_cmd_export_gradescope)

    e = sub.add_parser(
        "env",
        help="print versions and the compute device",
        description="Print one line with the versions of Python, PyTorch and the kit's main packages, the number of CPU "
        "threads and the compute device (CUDA GPU or CPU): the line to include in a question or a bug report.",
    )
    e.set_defaults(func=_cmd_env)
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's --help opens with a description: its one-line help where it has no longer one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None and helps.get(name):
                    sub.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe(sub)


def main(argv: list[str] | None = None) -> int:
    from .data.errors import DataError
    from .notebook import NotebookError

    parser = build_parser()
    args = parser.parse_args(argv)
    if _missing_staff_folders(args.command):
        return _staff_only(args)
    try:
        return args.func(args)
    except (DataError, NotebookError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"coursekit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

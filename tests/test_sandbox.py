"""The sandbox: cheats, crashes and endless loops cost the submission, never the grader."""

import http.server
import threading
from pathlib import Path

import pytest
import torch

from coursekit import paths
from coursekit.grading.sandbox import Limits, Sandbox, SubmissionError, _which_isolation

PROBES = Path(__file__).parent / "fixtures" / "sandbox_probes.py"

CODE = r'''
import os, sys, ctypes, socket
import torch

def honest(n):
    return torch.arange(n) * 2

class Liar:
    def __eq__(self, other):
        return True

def liar():
    return Liar()

class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return torch.ones((), dtype=torch.bool)

def sneaky_tensor():
    return torch.zeros(3).as_subclass(AlwaysEqual)

def patch_allclose():
    torch.allclose = lambda *a, **k: True
    return torch.zeros(1)

def exits():
    sys.exit(0)

def hard_exit():
    os._exit(0)

def loops():
    while True:
        pass

def hog():
    return torch.empty(100 * 1024**3, dtype=torch.uint8)

def segfault():
    ctypes.string_at(0)

def read(path):
    try:
        return open(path).read()
    except OSError as e:
        return "unreadable: " + type(e).__name__

def write(path):
    try:
        open(path, "w").write("forged")
        return "written"
    except OSError as e:
        return "refused: " + type(e).__name__

def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3)
        return "connected"
    except OSError as e:
        return "no network: " + type(e).__name__

def chatty():
    print("hello from the student")
    return 1
'''


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    code = tmp_path_factory.mktemp("sub") / "submission.py"
    code.write_text(CODE)
    sb = Sandbox(code, PROBES, Limits(call_timeout=20, memory_mb=3072))
    yield sb
    sb.cleanup()


def call(box, fn, *args, timeout=None):
    return box.call("call", fn=fn, args=list(args), timeout=timeout)["out"]


def test_honest_result_crosses_as_plain_tensor(box):
    out = call(box, "honest", 4)
    assert type(out) is torch.Tensor and out.tolist() == [0, 2, 4, 6]


def test_cheating_objects_do_not_cross(box):
    with pytest.raises(SubmissionError, match="is a Liar, not a tensor"):
        call(box, "liar")
    out = call(box, "sneaky_tensor")
    assert type(out) is torch.Tensor and not torch.equal(out, torch.ones(3))
    call(box, "patch_allclose")  # patches torch in the worker only
    assert not torch.allclose(torch.zeros(1), torch.ones(1))


def test_exit_crash_loop_and_hog_are_messages_and_the_worker_comes_back(box):
    with pytest.raises(SubmissionError, match=r"called sys.exit\(0\)"):
        call(box, "exits")
    with pytest.raises(SubmissionError, match=r"ended \(exit code 0\).*os._exit"):
        call(box, "hard_exit")
    assert call(box, "honest", 2).tolist() == [0, 2]  # restarted
    with pytest.raises(SubmissionError, match="took longer than 2 s"):
        call(box, "loops", timeout=2)
    with pytest.raises(SubmissionError, match="segmentation fault"):
        call(box, "segfault")
    with pytest.raises(SubmissionError, match="RuntimeError|MemoryError"):
        call(box, "hog")
    assert call(box, "honest", 3).tolist() == [0, 2, 4]


def test_prints_go_to_the_log_not_the_protocol(box):
    assert call(box, "chatty") == 1
    assert "hello from the student" in box.log_tail()


@pytest.mark.skipif(_which_isolation() != "bubblewrap", reason="needs bubblewrap (installed by .ci/run)")
def test_hidden_files_readonly_fs_and_no_network(box, tmp_path):
    secret = paths.autograder_dir() / "README.md"
    assert secret.is_file()
    assert call(box, "read", str(secret)).startswith("unreadable")
    out_dir = paths.kit_root() / "README.md"
    assert call(box, "write", str(out_dir)).startswith("refused")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert call(box, "connect", srv.server_address[1]).startswith("no network")
    finally:
        srv.shutdown()
        srv.server_close()


def test_code_that_fails_to_load(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    with Sandbox(bad, PROBES) as sb:
        with pytest.raises(SubmissionError, match="failed to run: SyntaxError"):
            sb.call("call", fn="f")
    loop = tmp_path / "loop.py"
    loop.write_text("while True:\n    pass\n")
    with Sandbox(loop, PROBES, Limits(load_timeout=2)) as sb:
        for _ in range(2):  # the second call does not wait again
            with pytest.raises(SubmissionError, match="took longer than 2 s while loading"):
                sb.call("call", fn="f")
        assert sb.starts == 1

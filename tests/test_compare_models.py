"""benchmarks/compare_models.py, the source of the metrics report's model table, still runs and prints it."""

import subprocess
import sys

import pytest

from coursekit import paths


@pytest.mark.slow
def test_compare_models_prints_both_tables_and_draws_the_picture(tmp_path):
    script = paths.kit_root() / "benchmarks" / "compare_models.py"
    run = subprocess.run([sys.executable, str(script), "--seconds", "1", "--seeds", "0", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "| PixelRNN |" in out and "| GAN | none (no likelihood) |" in out
    header = next(line for line in out.splitlines() if line.startswith("| metric |"))
    for column in ("held-out real", "PixelRNN", "VAE", "GAN", "untrained GAN", "memorising", "collapsed"):
        assert f" {column} |" in header
    copying = next(line for line in out.splitlines() if line.startswith("| copying |")).split("|")[1:-1]
    assert [c.strip() for c in copying[-2:]] == ["1", "1"]  # memorising and collapsed are flagged on every seed
    assert (tmp_path / "models_side_by_side.png").stat().st_size > 10_000

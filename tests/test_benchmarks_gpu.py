"""The prepared GPU check runs on a CPU machine: a dry run, and a clean refusal."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import gpu_check  # noqa: E402


def test_without_cuda_it_says_so_and_exits_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No CUDA device: nothing measured")
    assert "|" not in out  # no table


def test_dry_run_prints_one_full_table(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    header, *rows = table
    assert header.split("|")[1].strip() == "measure"
    # 2 shapes x 3 precisions of throughput, then time to accuracy in 2 precisions
    assert len(rows) == 1 + 6 + 2  # the rule under the header, then the rows
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows[1:]]
    assert [c[1] for c in cells] == ["fp32", "bf16", "fp16"] * 2 + ["fp32", "bf16"]
    assert all(c[2].endswith("samples/s") for c in cells[:6])
    assert all(c[4].endswith("x") for c in cells)
    assert cells[6][0].startswith("s to KNN")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_throughput_is_positive_on_the_cpu(precision):
    rate = gpu_check.throughput(
        (8, 8), 4, torch.device("cpu"), precision, steps=1, filters=(2, 4), warmup=1
    )
    assert rate > 0

"""README.rst's commands and .ci/run stay in step."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command():
    text = (ROOT / "README.rst").read_text()
    after = text.split(".. test-command", 1)[1]
    return re.search(r"^    (\S.*)$", after, re.M).group(1)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    extract = next(line for line in ci.splitlines() if line.startswith("cmd="))
    out = subprocess.run(
        ["bash", "-c", f'{extract}; printf "%s" "$cmd"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == _readme_test_command()
    assert "pytest" in out and "torch==2.13.0" in out
    assert 'bash -c "$cmd"' in ci


def test_readme_demo_command_installs_and_runs_the_demo():
    text = (ROOT / "README.rst").read_text()
    assert re.search(
        r"^    .*pip install torch==2\.13\.0 .*&& skavae demo$", text, re.M
    )

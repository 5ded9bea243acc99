"""The README's Python examples run, and its test command is the one CI runs."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(EXAMPLES[index], f"README example {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out  # every example prints what it shows


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```\n(pip install[^\n]*)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()

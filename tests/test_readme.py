"""The README's Python examples run, and its test command is the one CI runs."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


LITERAL = re.compile(r"\[.*\]|(?:-?[\d.e+-]+|inf|True|False)(?: (?:-?[\d.e+-]+|inf|True|False))*")


def _claims(example: str) -> list[str | None]:
    """Per print() of an example, what its comment says it prints: the comment up to its
    first colon when that is a literal (a list, ending in ``...]`` for a prefix, or numbers),
    else None (a comment in words)."""
    claims = []
    for line in example.splitlines():
        if line.startswith("print("):
            comment = line.partition("  # ")[2].partition(":")[0].strip()
            claims.append(comment if LITERAL.fullmatch(comment) else None)
    return claims


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Oracle: the values the README's comments say each print() shows."""
    exec(compile(EXAMPLES[index], f"README example {index}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.splitlines()
    claims = _claims(EXAMPLES[index])
    assert len(printed) == len(claims)  # one line per print()
    for claim, line in zip(claims, printed, strict=True):
        if claim is not None and claim.endswith("...]"):
            assert line.startswith(claim[:-4]), (claim, line)
        elif claim is not None:
            assert line == claim, (claim, line)


def test_readme_comments_state_values() -> None:
    """The first example's four prints all state their values (the check above is not empty)."""
    assert None not in _claims(EXAMPLES[0]) and "True" in _claims(EXAMPLES[1])


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```\n(pip install[^\n]*)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()

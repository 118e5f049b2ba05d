"""The README's commands and routes must exist as shown."""

from __future__ import annotations

import re
import shlex

import pytest

from recommender.cli import build_parser

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = shlex.split(line)
            if words[0].endswith("recommender"):
                commands.append(words[1:])
    return commands


def test_readme_shows_the_two_setup_commands() -> None:
    assert "make run" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


@pytest.mark.parametrize("args", readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses(args: list[str]) -> None:
    parsed = build_parser().parse_args(args)
    assert parsed.command == args[0]


def test_every_cli_command_is_in_the_readme() -> None:
    shown = {args[0] for args in readme_commands()}
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(subparsers.choices) <= shown | {"serve"} and "recommender serve" in README


def test_every_readme_route_exists(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from recommender.api.app import create_app
    from recommender.api.settings import Settings

    shown = re.findall(r"`(GET|POST|PUT|DELETE) (/[^ `?]*)", README)
    # The curl examples show the write routes with their methods.
    shown += re.findall(r"curl -X (PUT|DELETE|POST) https://[^/ ]+(/[^ ?]*)", README)
    assert {"PUT", "DELETE"} <= {method for method, _ in shown}
    assert len(shown) >= 12
    # No model is loaded: a served route answers (503, 401, 200...), an unknown
    # one gets the router's bare 404 "Not Found" or 405.
    with TestClient(create_app(Settings(models_dir=tmp_path, admin_token="t"))) as client:
        for method, path in shown:
            response = client.request(
                method, path.replace("{id}", "some-id"), json={} if method in ("POST", "PUT") else None
            )
            assert response.status_code != 405, f"{method} {path}"
            assert not (response.status_code == 404 and response.json() == {"detail": "Not Found"}), f"{method} {path}"


def test_the_readme_python_example_runs(tmp_path) -> None:
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "the README shows no Python example"
    models = tmp_path / "models"
    for block in blocks:
        # The example saves to models/: here into a temporary folder instead of the repository's.
        code = block.replace('"models"', repr(str(models)))
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        # It prints the five items of the box: a score in (0, 1], a title and a URL each.
        lines = proc.stdout.splitlines()
        assert len(lines) == 5, proc.stdout
        assert all(0 < float(line.split()[0]) <= 1 for line in lines), proc.stdout
    assert (models / "current").is_symlink()

"""docs/tutorial.md is checked, not just written: its YAML blocks (each headed `# FILE`) are put
together into the files, and every `$ composer ...` line of its console blocks is run on them in
a fresh folder; the lines shown under a command are what it must print (`...` stands for any
lines). `composer run` gets a few steps instead of the tutorial's hundreds and no metrics (their
names and options are checked by validate)."""
import re
import shlex

import pytest

from composer.tools import cli
from composer.api import load, validate
from conftest import ROOT

PAGE = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
SHORT_RUN = ["train.steps=4", "train.log_every=2", "eval.metrics={}"]    # metrics: checked by validate


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(PAGE.read_text()) if lang == kind]


def files() -> dict[str, str]:
    """The tutorial's files: its YAML blocks, in order, under the name of their first line."""
    out: dict[str, str] = {}
    for body in blocks("yaml"):
        name = re.fullmatch(r"# (\S+\.yaml)", body.splitlines()[0])
        assert name, f"a tutorial YAML block must start with '# FILE.yaml': {body.splitlines()[0]!r}"
        out[name.group(1)] = out.get(name.group(1), "") + body
    return out


def commands() -> list[tuple[str, list[str]]]:
    """(command line, the lines shown under it) for every `$ ` line of the console blocks."""
    out = []
    for body in blocks("console"):
        for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
            line, *shown = chunk.rstrip("\n").split("\n")
            out.append((line, shown))
    return out


def matches(shown: list[str], printed: str) -> bool:
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line.rstrip()) + r"\n" for line in shown)
    text = "".join(line.rstrip() + "\n" for line in printed.splitlines())
    return re.fullmatch(pattern, text) is not None


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for name, text in files().items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_tutorial_has_its_steps():
    assert set(files()) == {"cvae.yaml", "cvae_long.yaml"}
    assert [c for c, _ in commands()] == [
        "composer validate cvae.yaml", "composer validate cvae.yaml modules.dec.in_features=16",
        "composer plan cvae.yaml", "composer run cvae.yaml",
        "composer sample runs/cvae -n 100 --labels y_prior=0:10 -o digits.png",
        "composer validate cvae_long.yaml --print"]


def test_the_files_validate(folder):
    for name in files():
        assert validate(name).phases
    long = load("cvae_long.yaml")
    assert {m.name: m.args["hidden"] for m in long.modules} == {"enc": 512, "dec": 512}
    assert (long.name, long.train.steps, long.train.batch) == ("cvae_long", 3000, 64)


def test_every_command_prints_what_the_tutorial_shows(folder, capsys):
    for line, shown in commands():
        argv = shlex.split(line)[1:]
        argv += SHORT_RUN if argv[0] == "run" else []
        code = cli.main(argv)
        out, err = capsys.readouterr()
        failed = any(s.startswith("error:") for s in shown)
        assert code == (2 if failed else 0), (line, out, err)
        if shown:
            assert matches(shown, err if failed else out), f"{line}\nprinted:\n{err if failed else out}"
    assert (folder / "digits.png").is_file() and (folder / "runs" / "cvae" / "eval.json").is_file()


def test_the_images_next_to_the_commands_exist():
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text()):
        assert (PAGE.parent / image).is_file(), image

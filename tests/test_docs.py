"""Docs that cannot drift: every command's help has a runnable example and is listed in the
README; the README's layout is the tree; docs point only to files of this repository."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from annuaire.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
# Written by the benchmarks, ignored by git: docs may name where results land.
GENERATED = ("bench/out/",)


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and subcommand (hidden ones too), as (path, command)."""
    yield path, group
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            yield from _commands(command, (*path, name))  # type: ignore[arg-type]


COMMANDS = dict(_commands())


def _options(command: click.Command) -> dict[str, click.Option]:
    """The command's options by each of their names (`--help` is not a parameter)."""
    out: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            out.update(dict.fromkeys([*param.opts, *param.secondary_opts], param))
    return out


def _resolve(tokens: list[str], *, placeholders: bool = False) -> tuple[tuple[str, ...], list[str]]:
    """The command path an `annuaire …` line invokes, and the options it names that the
    command it reaches does not have. `placeholders`: README usage lines ([--json], A|B)."""
    command: click.Command = cli
    path: tuple[str, ...] = ()
    unknown: list[str] = []
    rest = list(tokens)
    while rest:
        token = rest.pop(0)
        if placeholders:
            token = token.strip("[]")
        if token.startswith("-") and token not in ("-", "--"):
            name = token.split("=", 1)[0]
            option = _options(command).get(name)
            if option is None and name not in ("-h", "--help"):
                unknown.append(name)
            elif option is not None and not placeholders and "=" not in token and not option.is_flag \
                    and not option.count:
                del rest[: option.nargs]  # its value(s)
            continue
        if isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
            path = (*path, token)
            continue
        if isinstance(command, click.Group) and not command.invoke_without_command:
            unknown.append(f"subcommand {token!r}")
    return path, unknown


def _examples(help_text: str) -> list[str]:
    """The `annuaire …` lines under the help's "Example:"/"Examples:" headings
    (continuation lines ending in a backslash joined)."""
    lines: list[str] = []
    inside = False
    for raw in help_text.splitlines():
        line = raw.strip()
        if re.fullmatch(r"Examples?:", line):
            inside = True
            continue
        if not line:
            inside = False
            continue
        if inside:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line
            else:
                lines.append(line)
    return [line for line in lines if line.startswith("annuaire ") or line == "annuaire"]


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "annuaire")
def test_every_command_has_help_with_a_runnable_example(path: tuple[str, ...]) -> None:
    """`--help` works and shows at least one example of this very command whose options exist."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    examples = _examples(result.output)
    assert examples, f"`annuaire {' '.join(path)} --help` has no example (an 'Example:' block)"
    reached = []
    for example in examples:
        invoked, unknown = _resolve(shlex.split(example, comments=True)[1:])
        assert not unknown, f"example {example!r}: unknown {', '.join(unknown)}"
        reached.append(invoked)
    leaf = not isinstance(COMMANDS[path], click.Group)
    assert any(r == path if leaf else r[: len(path)] == path for r in reached), (
        f"no example of `annuaire {' '.join(path)}` among {examples}")


def _section(title: str) -> str:
    """The first code block of the README section `## title`."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].split("\n", 1)[1]


def test_the_readme_lists_every_command() -> None:
    """The command list of the README names every command and subcommand, and nothing else."""
    listed: set[tuple[str, ...]] = set()
    for line in _section("The command line").splitlines():
        if not line.startswith("annuaire "):
            continue
        path, unknown = _resolve(shlex.split(line.replace("|", " "), comments=True)[1:], placeholders=True)
        assert path in COMMANDS and not unknown, f"README: {line!r} (unknown {unknown})"
        command = COMMANDS[path]
        assert not isinstance(command, click.Group) or command.invoke_without_command, (
            f"README: {line!r} names a group, not a command")
        listed.update(path[:n] for n in range(len(path) + 1))
    missing = [" ".join(p) for p in COMMANDS if p not in listed]
    assert not missing, f"commands missing from the README's command list: {missing}"


def test_the_readme_layout_is_the_tree() -> None:
    """Each folder of the README's layout exists, every package folder of annuaire/ is in it,
    and its docs/ line names exactly the pages of docs/."""
    listed: set[str] = set()
    parent = ""
    for line in _section("Layout").splitlines():
        match = re.match(r"(\s*)([\w.-]+/)", line)
        if not match:
            continue
        name = match.group(2)
        if match.group(1):
            name = parent + name
        else:
            parent = name
        listed.add(name)
        assert (ROOT / name).is_dir(), f"README layout: {name} does not exist"
        if name == "docs/":  # its pages, by name
            pages = set(re.findall(r"[\w-]+\.md", line))
            assert pages == {p.name for p in (ROOT / "docs").glob("*.md")}, f"README layout: {line!r}"
    folders = {f"annuaire/{p.name}/" for p in (ROOT / "annuaire").iterdir()
               if p.is_dir() and p.name != "__pycache__" and not p.name.endswith(".egg-info")}
    assert folders <= listed, f"folders missing from the README's layout: {sorted(folders - listed)}"


PATH = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*(?:annuaire|tests|bench|docs|deploy|\.ci|shared)/[\w./*<>{}-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_point_only_inside_the_repository(doc: Path) -> None:
    """No path out of the repository (`../…`); every repository path and relative link named
    exists (patterns and placeholders such as `tests/*.py` or `<ts>` are not paths)."""
    text = doc.read_text(encoding="utf-8")
    assert "../" not in text, f"{doc.name} points outside the repository"
    named = [m.group(1).rstrip(".,;:)") for m in PATH.finditer(text)]
    named += [(doc.parent / m.group(1).split("#")[0]).resolve().relative_to(ROOT).as_posix()
              for m in LINK.finditer(text) if not re.match(r"[a-z]+:|#", m.group(1))]
    missing = [p for p in named if not any(c in p for c in "*<>{}") and not p.startswith(GENERATED)
               and not (ROOT / p.split("::")[0]).exists()]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def _variables_read_by_the_code() -> set[str]:
    """Every ANNUAIRE_* variable the package reads: the settings' and the others named in its code."""
    from dataclasses import fields

    from annuaire.config import Settings, variable

    named = {variable(f.name) for f in fields(Settings)}
    for path in (ROOT / "annuaire").rglob("*.py"):
        named.update(re.findall(r"\bANNUAIRE_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    return named


def test_operations_lists_every_variable() -> None:
    """docs/operations.md ("Environment") names every ANNUAIRE_* variable the code reads."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = text.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    missing = sorted(v for v in _variables_read_by_the_code() if f"`{v}`" not in table)
    assert not missing, f"variables read by the code but missing from docs/operations.md: {missing}"

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import PathEscapeError
from loomkin.tools.paths import display_path, resolve_in_project

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    return root


def test_relative_path_resolves_inside(project: Path) -> None:
    assert resolve_in_project(project, "src/a.py") == (project / "src" / "a.py").resolve()


def test_missing_file_inside_is_allowed(project: Path) -> None:
    assert resolve_in_project(project, "new/dir/b.py") == project.resolve() / "new/dir/b.py"


def test_dot_is_root(project: Path) -> None:
    assert resolve_in_project(project, ".") == project.resolve()


def test_inner_dotdot_staying_inside_is_allowed(project: Path) -> None:
    assert resolve_in_project(project, "src/../src/a.py") == project.resolve() / "src/a.py"


def test_absolute_path_inside_is_allowed(project: Path) -> None:
    inside = str(project / "src" / "a.py")
    assert resolve_in_project(project, inside) == project.resolve() / "src/a.py"


@pytest.mark.parametrize("bad", ["../x", "..", "a/../../x", "src/../../outside/secret.txt"])
def test_dotdot_escape_is_refused(project: Path, bad: str) -> None:
    with pytest.raises(PathEscapeError, match=r"leads out of the project root"):
        resolve_in_project(project, bad)


def test_absolute_path_outside_is_refused(project: Path) -> None:
    with pytest.raises(PathEscapeError, match=r"'/etc/passwd' is outside the project root"):
        resolve_in_project(project, "/etc/passwd")


def test_absolute_path_climbing_out_is_refused(project: Path) -> None:
    with pytest.raises(PathEscapeError, match="outside the project root"):
        resolve_in_project(project, f"{project}/../outside/secret.txt")


def test_symlinked_file_pointing_outside_is_refused(project: Path) -> None:
    (project / "link.txt").symlink_to(project.parent / "outside" / "secret.txt")
    with pytest.raises(PathEscapeError, match="symlink"):
        resolve_in_project(project, "link.txt")


def test_symlinked_dir_pointing_outside_is_refused(project: Path) -> None:
    (project / "ext").symlink_to(project.parent / "outside", target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink"):
        resolve_in_project(project, "ext/secret.txt")
    with pytest.raises(PathEscapeError, match="symlink"):
        resolve_in_project(project, "ext/not-yet-there.txt")


def test_symlink_in_the_middle_of_a_path_pointing_outside_is_refused(project: Path) -> None:
    (project / "src" / "up").symlink_to(project.parent, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink"):
        resolve_in_project(project, "src/up/outside/secret.txt")


def test_symlink_staying_inside_is_allowed(project: Path) -> None:
    (project / "alias.py").symlink_to(project / "src" / "a.py")
    (project / "lib").symlink_to(project / "src", target_is_directory=True)
    assert resolve_in_project(project, "alias.py") == project.resolve() / "src/a.py"
    assert resolve_in_project(project, "lib/a.py") == project.resolve() / "src/a.py"


def test_symlink_loop_is_refused_cleanly(project: Path) -> None:
    (project / "loop1").symlink_to(project / "loop2")
    (project / "loop2").symlink_to(project / "loop1")
    with pytest.raises(PathEscapeError):
        resolve_in_project(project, "loop1/x")


def test_nul_byte_is_refused(project: Path) -> None:
    with pytest.raises(PathEscapeError, match="NUL byte"):
        resolve_in_project(project, "src/a.py\0.txt")


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_path_is_refused(project: Path, empty: str) -> None:
    with pytest.raises(PathEscapeError, match="empty"):
        resolve_in_project(project, empty)


def test_tilde_is_not_expanded(project: Path) -> None:
    resolved = resolve_in_project(project, "~/notes.txt")
    assert resolved == project.resolve() / "~" / "notes.txt"
    assert not str(resolved).startswith(os.path.expanduser("~") + "/notes")


def test_project_root_given_through_a_symlink(project: Path, tmp_path: Path) -> None:
    via = tmp_path / "via"
    via.symlink_to(project, target_is_directory=True)
    assert resolve_in_project(via, "src/a.py") == project.resolve() / "src/a.py"
    assert resolve_in_project(via, str(via / "src" / "a.py")) == project.resolve() / "src/a.py"


def test_display_path(project: Path) -> None:
    assert display_path(project, project.resolve() / "src" / "a.py") == "src/a.py"
    assert display_path(project, project.resolve()) == "."

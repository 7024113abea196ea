"""The command guard on its own: parsing, unwrapping, lists, paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomkin.errors import ToolError
from loomkin.tools.builtin import ShellPolicy, check_command
from loomkin.tools.builtin._shparse import parse_script


def refused(command: str, project: Path, policy: ShellPolicy | None = None) -> str:
    with pytest.raises(ToolError, match=r"^Refused to run this command: ") as info:
        check_command(command, project, policy or ShellPolicy())
    return str(info.value)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("echo 'unbalanced", "single quote (') is never closed"),
        ('echo "unbalanced', 'double quote (") is never closed'),
        ("echo $(ls", "is never closed"),
        ("echo `ls", "backtick (`) is never closed"),
        ("echo ${X", "'${' is never closed"),
        ("echo )", "')' has no matching '('"),
        ("cat <", "has no target"),
    ],
)
def test_what_cannot_be_parsed_is_refused(project: Path, command: str, reason: str) -> None:
    message = refused(command, project)
    assert "cannot be parsed" in message
    assert reason in message


def test_a_quote_in_a_comment_is_not_a_parse_error(project: Path) -> None:
    check_command("ls # don't", project, ShellPolicy())
    assert "outside the project" in refused("rm -rf /etc #'", project)


@pytest.mark.parametrize(
    "command",
    [
        "nice -n 5 rm x",
        "nice -10 rm x",
        "env -u HOME -i A=1 rm x",
        "env -C src rm x",
        "timeout -k 1 -s TERM 5 rm x",
        "xargs -n 1 rm < list",
        "nohup rm x",
        "setsid -f rm x",
        "stdbuf -oL rm x",
        "command -p rm x",
        "builtin rm x",
        "exec -a name rm x",
        "time -p rm x",
        "ionice -c 2 -n 0 rm x",
        "chrt -r 10 rm x",
        "taskset 0x1 rm x",
        "busybox rm x",
        "{ rm x; }",
        "if true; then rm x; fi",
        "! rm x",
        "while false; do rm x; done",
        "(rm x)",
        "echo $(rm x)",
        "sh -c 'rm x'",
        "find . -exec rm {} +",
    ],
)
def test_wrappers_and_keywords_are_looked_through_by_the_deny_list(
    project: Path, command: str
) -> None:
    message = refused(command, project, ShellPolicy(deny=frozenset({"rm"})))
    assert "'rm' is on the [shell] deny list" in message


def test_deny_list_word_prefix_after_unwrapping(project: Path) -> None:
    policy = ShellPolicy(deny=frozenset({"git push"}))
    for command in ("timeout 60 git push", "git -C . push origin", "env GIT_X=1 git push"):
        assert "'git push' is on the [shell] deny list" in refused(command, project, policy)
    check_command("git status && nice git log", project, policy)


def test_allow_list_applies_to_the_wrapped_command(project: Path) -> None:
    policy = ShellPolicy(allow=frozenset({"ls", "true"}))
    check_command("nice ls && timeout 5 ls -la && env A=1 ls", project, policy)
    check_command("if true; then ls; fi", project, policy)
    assert "'make' is not on the [shell] allow list" in refused("nice make", project, policy)
    assert "'sh' is not on the [shell] allow list" in refused("sh -c ls", project, policy)


@pytest.mark.parametrize(
    "command",
    [
        "touch .git/hooks/pre-commit",
        "echo '[core] fsmonitor = x' >> .git/config",
        "rm -rf .git",
        "cp evil sub/.git/config",
        "echo x > .loomkin/loomkin.db",
        "ln -s .git/config cfg && echo x > cfg",
        "echo 'auto_approve = [\"*\"]' >> loomkin.toml",
        "cd sub && sed -i s/a/b/ ../loomkin.toml",
    ],
)
def test_git_internals_and_loomkin_state_are_not_written(project: Path, command: str) -> None:
    (project / "sub").mkdir()
    message = refused(command, project)
    assert ".git/" in message or ".loomkin" in message or "loomkin.toml" in message


@pytest.mark.parametrize(
    "command",
    [
        "cat .loomkin/server.json",
        "grep token .loom*/*",
        "cat < .loomkin/server.json",
        "cat /proc/$PPID/environ",
        "strings /proc/1/environ",
        "cat /proc/self/task/1/environ",
        "ps auxe",
    ],
)
def test_secrets_are_not_read(project: Path, command: str) -> None:
    refused(command, project)


def test_existing_symlink_out_of_the_project_is_followed(project: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (project / "link").symlink_to(tmp_path / "outside")
    assert "outside the project" in refused("echo x > link/file", project)
    assert "outside the project" in refused("touch link/file", project)


def test_relative_paths_follow_cd(project: Path) -> None:
    (project / "src").mkdir()
    check_command("cd src && touch ../x && cd .. && touch y", project, ShellPolicy())
    assert "outside the project" in refused("cd src && touch ../../x", project)
    check_command("pushd src && touch a && popd && touch b", project, ShellPolicy())
    assert "popd without a matching pushd" in refused("popd", project)


@pytest.mark.parametrize(
    "command",
    [
        "(cd src); touch ../x",
        "cd src | true; touch ../x",
        "cd src & touch ../x",
        "cd missing; touch ../x",
        "cd missing || touch ../x",
        "cd src\ntouch ../x",
        "cd src; cd ..",
    ],
)
def test_a_cd_that_may_not_have_happened(project: Path, command: str) -> None:
    (project / "src").mkdir()
    assert "outside the project" in refused(command, project) or "may leave" in refused(
        command, project
    )


def test_a_cd_joined_by_and(project: Path) -> None:
    (project / "src").mkdir()
    for command in ("cd src && touch ../x", "cd src && (cd ..; touch x) && touch ../y"):
        check_command(command, project, ShellPolicy())


@pytest.mark.parametrize(
    "command",
    [
        "mv a/up up2 && touch up2/../x",
        "cp -r src dst && cd dst/..",
        "tar -xf a.tar && touch sub/../x",
        "nice mv a b; echo x > b/../c",
    ],
)
def test_dotdot_after_links_moved_on_the_same_line(project: Path, command: str) -> None:
    assert "created or moved links" in refused(command, project)


def test_variables(project: Path) -> None:
    check_command("touch $PWD/x && D=build; mkdir -p $D && touch ~+/y", project, ShellPolicy())
    assert "cannot resolve" in refused("touch $SOMEWHERE/x", project)
    assert "outside the project" in refused("touch $HOME/x", project)
    assert "outside the project" in refused("D=/etc; touch $D/x", project)
    assert "comes from a variable" in refused("$CMD x", project)
    assert "cannot be checked" in refused("cd $(git rev-parse --show-toplevel)", project)


@pytest.mark.parametrize("command", ["rm -rf .*", "chmod -R 777 .?", "touch {a,../b}"])
def test_globs_and_braces_that_can_climb_out(project: Path, command: str) -> None:
    assert "outside the project" in refused(command, project)


def test_standard_input_of_xargs_is_unknown(project: Path) -> None:
    message = refused("find . -name '*.pyc' | xargs rm", project)
    assert "cannot resolve" in message
    check_command("find . -name '*.pyc' -delete", project, ShellPolicy())
    check_command("git ls-files | xargs grep -n TODO", project, ShellPolicy())


def test_heredocs(project: Path) -> None:
    check_command("cat <<'EOF' > notes.txt\n$(rm -rf /)\nEOF", project, ShellPolicy())
    refused("cat <<EOF > notes.txt\n$(rm -rf /etc)\nEOF", project)
    refused("bash <<'EOF'\nrm -rf /etc\nEOF", project)
    check_command("python3 - <<'EOF'\nprint(1)\nEOF", project, ShellPolicy())


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("sed -n '1e id' f", "runs shell commands"),
        ("sed 's/a/b/e' f", "runs shell commands"),
        ("git -c alias.x='!sh' x", "could make git run a program"),
        ("git config core.fsmonitor 'touch x'", "could make git run a program"),
        ("git config --global user.name x", "outside the repository"),
        ("tar --to-command=sh -xf a.tar", "run a command"),
        ("tar -xPf a.tar", "absolute paths"),
        ("kill -9 -1", "every process"),
        ("docker run -v /:/h alpine sh", "container access"),
        ("ssh -o ProxyCommand='sh -c x' host", "local command"),
        ("rsync -e 'sh -c x' a b:", "run a program"),
        ("sudo ls", "privilege escalation"),
        ("unshare -r sh", "outlives the command or leaves its confinement"),
        ("crontab -l", "outlives the command"),
        ("find -L . -delete", "follows symlinks"),
        ("echo x | sh", "pipes commands into sh"),
        ("source /dev/stdin", "cannot read"),
        ('sh -c "$X"', "cannot resolve"),
        ("eval $X", "cannot be checked"),
    ],
)
def test_programs_that_run_other_things(project: Path, command: str, reason: str) -> None:
    assert reason in refused(command, project)


def test_deep_nesting_is_refused(project: Path) -> None:
    command = "ls"
    for _ in range(12):
        command = f"echo $({command})"
    assert "nested too deeply" in refused(command, project)


@pytest.mark.parametrize(
    "command",
    [
        "cd src 2>/dev/null || mkdir -p src && cd src && ls",
        "for f in *.py; do echo $f; done",
        "[ -d build ] || mkdir build",
        "test -f x && echo yes",
        "diff <(sort a) <(sort b)",
        "echo $((1 + 2)) > n.txt",
        "export PATH=$PATH:./node_modules/.bin && npm test",
        "python3 -m pytest -q 2>&1 | tail -20",
        "git add -A && git commit -m 'msg' && git log --oneline | head",
        "git -c user.name=Ada commit -m x",
        "mktemp -d",
        "cp -r src dst && mv dst/a dst/b && rm -rf dst",
        "sed -i.bak 's/a/b/' file.txt",
        "tar -czf out.tgz src && tar -xzf out.tgz -C extracted",
        "ln -s src/main.py main.py",
        "kill %1; kill $!",
        "sleep 1 & wait",
        "case $1 in a) echo a;; *) echo other;; esac",
        "f() { echo hi; }; f",
        "ls -la ~",
        "cat /etc/os-release",
        "curl -sS https://example.com -o page.html",
        "make -C sub all",
        "echo 'sudo rm -rf /' > notes.txt",
    ],
)
def test_everyday_commands_pass(project: Path, command: str) -> None:
    (project / "sub").mkdir(exist_ok=True)
    check_command(command, project, ShellPolicy())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n;&|()<>'\"`$\\{}*?~#=!/.abcx0-9")), max_size=40))
def test_the_guard_either_refuses_or_accepts(text: str) -> None:
    # Never another exception, whatever the text: the parser's errors become refusals.
    try:
        check_command(text, Path("/nonexistent-loomkin-project"), ShellPolicy())
    except ToolError:
        return


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_the_parser_raises_only_syntax_errors(text: str) -> None:
    try:
        parse_script(text)
    except ValueError:
        return

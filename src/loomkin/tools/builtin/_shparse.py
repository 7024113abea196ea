"""A small POSIX shell parser for the command guard: words, redirections, simple commands.

How this works and why: the guard must see every command a command line will run, so it needs
the shell's own idea of words and quoting, not ``shlex``'s (which has no comments, no ``$(``,
no heredocs and no ANSI-C quotes, and gives up on the first unbalanced quote). This module
scans the text the way ``sh`` does: quotes (``'...'``, ``"..."``, ``$'...'``), backslashes,
comments, parameter expansions, command substitutions (``$(...)``, backticks, ``<(...)``,
``>(...)``) parsed recursively, arithmetic, heredocs and the control operators. It does not
build a full grammar tree: a command line becomes a flat list of simple commands, split at
``;``, ``&``, ``&&``, ``||``, pipes, newlines and parentheses; keywords (``if``, ``{``, ``!``)
stay words at the front of a command and the guard skips them. That is enough to check each
command by name and arguments, and anything the scanner cannot read (an unterminated quote or
substitution) raises :class:`ShellSyntaxError`, which the guard turns into a refusal.
"""

from __future__ import annotations

from loomkin.tools.builtin._shwords import (
    Command,
    Heredoc,
    Lit,
    Param,
    Part,
    Redirect,
    ShellSyntaxError,
    Subst,
    Word,
    decode_ansi_c,
)

__all__ = ["parse_script"]

_METACHARS = frozenset(" \t\n;&|()<>")
# Longest first, so ``>>`` wins over ``>`` and ``;;&`` over ``;;``.
_OPERATORS = (
    *(";;&", "&>>", "<<<", "<<-", "&&", "||", ";;", ";&", "|&", "&>", ">>", ">|", ">&", "<<"),
    *("<>", "<&", "|", "&", ";", "(", ")", "<", ">"),
)
_REDIRECTS = frozenset({"&>>", "<<<", "<<-", "&>", ">>", ">|", ">&", "<<", "<>", "<&", "<", ">"})
_SPECIAL_PARAMS = frozenset("@*#?$!-0123456789")
_MAX_DEPTH = 16


def parse_script(text: str) -> tuple[Command, ...]:
    """Split a command line into simple commands.

    Raises:
        ShellSyntaxError: an unterminated quote, substitution, ``${`` or heredoc delimiter,
            an unmatched ``)``, or nesting deeper than the guard follows.
    """
    return _Scanner(text, 0).script(closer=None)


class _CommandList:
    """Simple commands being collected, with the nesting that decides what ``)`` means."""

    __slots__ = ("cases", "commands", "current", "parens")

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.current = Command()
        self.parens = 0
        self.cases = 0

    def finish(self, op: str) -> None:
        """End the current command at ``op`` and start the next one."""
        pipe = op in {"|", "|&"}
        joined_by = op
        if self.current.words or self.current.redirects:
            self.current.isolated = self.current.isolated or pipe or op == "&"
            self.commands.append(self.current)
        elif op in {"(", ")"}:
            joined_by = self.current.joined_by  # `a && (b)`: b still runs only after a
        self.current = Command(stdin_pipe=pipe, isolated=pipe, joined_by=joined_by)
        self.current.depth = self.parens

    def add_word(self, word: Word) -> None:
        if not self.current.words and word.literal() == "case":
            self.cases += 1
        elif not self.current.words and word.literal() == "esac" and self.cases:
            self.cases -= 1
        self.current.words.append(word)

    def operator(self, op: str, closer: str | None) -> bool:
        """Apply a control operator; True when it closes the script being read."""
        if op == "(":
            self.finish(op)
            self.parens += 1
            self.current.depth = self.parens
        elif op != ")":
            self.finish(op)
        elif self.parens:
            self.finish(op)
            self.parens -= 1
            self.current.depth = self.parens
        elif self.cases:
            self.current.is_case_pattern = True  # ``pattern)`` inside a case
            self.finish(";")
        elif closer == ")":
            self.finish(op)
            return True
        else:
            raise ShellSyntaxError("a ')' has no matching '('")
        return False


class _Scanner:
    """A cursor over the text; nested substitutions get their own scanner over the same text."""

    def __init__(self, text: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ShellSyntaxError("substitutions are nested too deeply")
        self.s = text
        self.i = 0
        self.depth = depth
        self.pending: list[tuple[Heredoc, str, bool]] = []

    # -- commands ---------------------------------------------------------------------

    def script(self, closer: str | None) -> tuple[Command, ...]:
        """Read commands up to the end of the text, or up to ``closer`` (``)``)."""
        found = _CommandList()
        while True:
            self._blanks()
            if self.i >= len(self.s):
                if closer is not None:
                    raise ShellSyntaxError("a '$(' or '(' is never closed")
                if self.pending:
                    raise ShellSyntaxError("a heredoc has no body")
                found.finish("")
                return tuple(found.commands)
            c = self.s[self.i]
            if c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            elif c == "\n":
                self.i += 1
                found.finish("\n")
                self._heredoc_bodies()
            elif self.s.startswith(("<(", ">("), self.i) or c not in _METACHARS:
                fd = self._io_number() if c.isdigit() or c == "{" else None
                if fd is not None:
                    self._redirect(found.current, fd)
                else:
                    found.add_word(self._word())
            else:
                op = next(o for o in _OPERATORS if self.s.startswith(o, self.i))
                if op in _REDIRECTS:
                    self._redirect(found.current, None)
                    continue
                self.i += len(op)
                if found.operator(op, closer):
                    return tuple(found.commands)

    def _blanks(self) -> None:
        while self.i < len(self.s):
            if self.s[self.i] in " \t":
                self.i += 1
            elif self.s.startswith("\\\n", self.i):
                self.i += 2
            else:
                return

    def _io_number(self) -> str | None:
        """``2>``, ``10<``, ``{fd}>``: a descriptor glued to a redirection operator."""
        j = self.i
        if self.s[j] == "{":
            end = self.s.find("}", j)
            if end == -1 or not self.s[j + 1 : end].isidentifier():
                return None
            j = end + 1
        else:
            while j < len(self.s) and self.s[j].isdigit():
                j += 1
        if j < len(self.s) and self.s[j] in "<>":
            fd = self.s[self.i : j]
            self.i = j
            return fd
        return None

    def _redirect(self, current: Command, fd: str | None) -> None:
        op = next(o for o in _OPERATORS if self.s.startswith(o, self.i))
        self.i += len(op)
        self._blanks()
        if self.i >= len(self.s) or (
            self.s[self.i] in _METACHARS and not self.s.startswith(("<(", ">("), self.i)
        ):
            raise ShellSyntaxError(f"the redirection {op!r} has no target")
        target = self._word()
        if op in {"<<", "<<-"}:
            delimiter = target.literal_text()
            quoted = any(isinstance(p, Lit) and p.quoted for p in target.parts)
            heredoc = Heredoc(quoted=quoted)
            self.pending.append((heredoc, delimiter, op == "<<-"))
            current.redirects.append(Redirect(op=op, fd=fd, target=None, heredoc=heredoc))
        else:
            current.redirects.append(Redirect(op=op, fd=fd, target=target))

    def _heredoc_bodies(self) -> None:
        for heredoc, delimiter, strip_tabs in self.pending:
            lines: list[str] = []
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end == -1 else end
                line = self.s[self.i : end]
                self.i = min(end + 1, len(self.s))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                lines.append(line)
            heredoc.body = "\n".join(lines)
            if not heredoc.quoted:
                inner = _Scanner(heredoc.body, self.depth + 1)
                parts = inner._double_quoted(terminator=None)
                heredoc.substitutions = [p for p in parts if isinstance(p, Subst)]
        self.pending.clear()

    # -- words ------------------------------------------------------------------------

    def _word(self) -> Word:
        start = self.i
        parts: list[Part] = []
        if self.s.startswith(("<(", ">("), self.i):
            self.i += 2
            parts.append(Subst(self._nested(")")))
        while self.i < len(self.s) and self.s[self.i] not in _METACHARS:
            self._word_part(parts)
        return Word(parts=tuple(parts), raw=self.s[start : self.i])

    def _word_part(self, parts: list[Part]) -> None:
        c = self.s[self.i]
        if c == "\\":
            if self.i + 1 >= len(self.s):
                self.i += 1
                parts.append(Lit("\\", quoted=False))
            elif self.s[self.i + 1] == "\n":
                self.i += 2
            else:
                parts.append(Lit(self.s[self.i + 1], quoted=True))
                self.i += 2
        elif c == "'":
            end = self.s.find("'", self.i + 1)
            if end == -1:
                raise ShellSyntaxError("a single quote (') is never closed")
            parts.append(Lit(self.s[self.i + 1 : end], quoted=True))
            self.i = end + 1
        elif c == '"':
            self.i += 1
            parts.extend(self._double_quoted(terminator='"'))
        elif c == "$" and self.s.startswith("$'", self.i):
            text, self.i = decode_ansi_c(self.s, self.i + 2)
            parts.append(Lit(text, quoted=True))
        elif c == "$" and self.s.startswith('$"', self.i):
            self.i += 2
            parts.extend(self._double_quoted(terminator='"'))
        elif c in "$`":
            parts.extend(self._expansion(quoted=False))
        else:
            j = self.i
            while j < len(self.s) and self.s[j] not in _METACHARS and self.s[j] not in "\\'\"$`":
                j += 1
            parts.append(Lit(self.s[self.i : j], quoted=False))
            self.i = j

    def _double_quoted(self, terminator: str | None) -> list[Part]:
        """Scan ``"..."`` (or a heredoc body when ``terminator`` is None) into parts."""
        parts: list[Part] = []
        buf: list[str] = []
        while True:
            if self.i >= len(self.s):
                if terminator is not None:
                    raise ShellSyntaxError('a double quote (") is never closed')
                break
            c = self.s[self.i]
            if terminator is not None and c == terminator:
                self.i += 1
                break
            if c == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                if nxt == "\n":
                    pass
                elif nxt in '$`"\\':
                    buf.append(nxt)
                else:
                    buf.append("\\" + nxt)
                self.i += 2
            elif c in "$`" and self._starts_expansion():
                if buf:
                    parts.append(Lit("".join(buf), quoted=True))
                    buf.clear()
                parts.extend(self._expansion(quoted=True))
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append(Lit("".join(buf), quoted=True))
        return parts

    def _starts_expansion(self) -> bool:
        if self.s[self.i] == "`":
            return True
        nxt = self.s[self.i + 1 : self.i + 2]
        return bool(nxt) and (nxt in "({" or nxt in _SPECIAL_PARAMS or nxt.isidentifier())

    def _expansion(self, *, quoted: bool) -> list[Part]:
        """Scan one ``$...`` or backtick expansion starting at the cursor."""
        if self.s[self.i] == "`":
            return [self._backticks()]
        if self.s.startswith("$((", self.i):
            self.i += 3
            return [Param("((arithmetic))", quoted=quoted), *self._arithmetic()]
        if self.s.startswith("$(", self.i):
            self.i += 2
            return [Subst(self._nested(")"))]
        if self.s.startswith("${", self.i):
            self.i += 2
            return self._braced(quoted=quoted)
        nxt = self.s[self.i + 1 : self.i + 2]
        if nxt and nxt in _SPECIAL_PARAMS:
            self.i += 2
            return [Param(nxt, quoted=quoted)]
        j = self.i + 1
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] == "_"):
            j += 1
        if j == self.i + 1:
            self.i += 1
            return [Lit("$", quoted=quoted)]
        name = self.s[self.i + 1 : j]
        self.i = j
        return [Param(name, quoted=quoted)]

    def _nested(self, closer: str) -> tuple[Command, ...]:
        inner = _Scanner(self.s, self.depth + 1)
        inner.i = self.i
        commands = inner.script(closer=closer)
        self.i = inner.i
        return commands

    def _backticks(self) -> Subst:
        self.i += 1
        body: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise ShellSyntaxError("a backtick (`) is never closed")
            c = self.s[self.i]
            if c == "`":
                self.i += 1
                break
            if c == "\\" and self.s[self.i + 1 : self.i + 2] in {"`", "\\", "$"}:
                body.append(self.s[self.i + 1])
                self.i += 2
            else:
                body.append(c)
                self.i += 1
        return Subst(_Scanner("".join(body), self.depth + 1).script(closer=None))

    def _arithmetic(self) -> list[Subst]:
        found: list[Subst] = []
        depth = 2
        while depth:
            if self.i >= len(self.s):
                raise ShellSyntaxError("a '$((' is never closed")
            c = self.s[self.i]
            if c in "$`" and self._starts_expansion():
                found.extend(p for p in self._expansion(quoted=True) if isinstance(p, Subst))
                continue
            depth += {"(": 1, ")": -1}.get(c, 0)
            self.i += 1
        return found

    def _braced(self, *, quoted: bool) -> list[Part]:
        """``${...}``: the name, then an operator whose words may hold substitutions."""
        j = self.i
        if j < len(self.s) and self.s[j] in "#!":
            j += 1  # ${#X} (length) and ${!X} (indirection): unknown values either way
        k = j
        while k < len(self.s) and (self.s[k].isalnum() or self.s[k] == "_"):
            k += 1
        if k == j and k < len(self.s) and self.s[k] in _SPECIAL_PARAMS:
            k += 1
        name = self.s[self.i : k] or "?"
        self.i = k
        parts: list[Part] = [Param(name, quoted=quoted)]
        depth = 1
        while depth:
            if self.i >= len(self.s):
                raise ShellSyntaxError("a '${' is never closed")
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c == "'" and not quoted:
                end = self.s.find("'", self.i + 1)
                if end == -1:
                    raise ShellSyntaxError("a single quote (') is never closed")
                self.i = end + 1
            elif c == '"':
                self.i += 1
                parts.extend(p for p in self._double_quoted(terminator='"') if isinstance(p, Subst))
            elif c in "$`" and self._starts_expansion():
                parts.extend(p for p in self._expansion(quoted=True) if isinstance(p, Subst))
            else:
                depth += {"{": 1, "}": -1}.get(c, 0)
                self.i += 1
        return parts

"""The files a model reads, and whether they all lie inside its product folder.

``file_references`` lists what one ``.scad`` source reads, from its tokens (so a comment or a
string that mentions ``import`` does not count):

- ``include <path>`` and ``use <path>`` (``use`` also loads a font file, ``use <Font.ttf>``);
- ``import(...)`` (and the old ``import_stl``/``import_off``/``import_dxf``): its ``file`` (the
  first argument or ``file=``; ``filename=`` is the deprecated name);
- ``surface(...)``: its ``file`` (the first argument or ``file=``);
- the deprecated DXF readers, listed as ``import``: ``linear_extrude``/``rotate_extrude`` (and
  their ``dxf_`` forms) read a file when given ``file=`` or a string as first argument (any
  other first argument is the height or angle); ``dxf_dim``/``dxf_cross`` read ``file=``.

``reference_problems`` follows ``include`` and ``use`` from the main file through the folder's
``.scad`` files and reports, each at ``file:line``: an absolute path, a path with ``..``, a
path that is not a string literal, and a path to no file of the folder. Paths resolve as
OpenSCAD resolves them: from the folder of the file that holds the statement (``dxf_dim`` and
``dxf_cross`` from the main file's folder, OpenSCAD's issue #217). OpenSCAD's own library
folders are not available to a product: what a model reads must be in its folder.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from fabflow.errors import InvalidProduct, Problem
from fabflow.production.scad.lexer import Token, tokenize
from fabflow.production.scad.toplevel import literal_value

ReferenceKind = Literal["include", "use", "import", "surface"]


@dataclass(frozen=True)
class FileReference:
    """One file a source reads; ``path`` is None when it is not a string literal."""

    kind: ReferenceKind
    path: str | None
    line: int
    call: str = ""  # the module or function that reads it: "import", "linear_extrude", ...

    def describe(self) -> str:
        """The statement as written, for messages: ``include <a.scad>``, ``import("b.stl")``."""
        if self.kind in ("include", "use"):
            return f"{self.kind} <{self.path}>"
        shown = "..." if self.path is None else f'"{self.path}"'
        return f"{self.call or self.kind}({shown})"


@dataclass(frozen=True)
class _Reader:
    """How a built-in reads its file: ``first`` says whether the first positional argument
    is the file (``"always"``, only when it is a string literal, or ``"never"``)."""

    kind: ReferenceKind
    first: Literal["always", "string", "never"]
    names: tuple[str, ...] = ("file",)
    from_main: bool = False  # resolved from the main file's folder, not the caller's


_READERS = {
    "import": _Reader("import", "always", ("file", "filename")),
    "import_stl": _Reader("import", "always", ("file", "filename")),
    "import_off": _Reader("import", "always", ("file", "filename")),
    "import_dxf": _Reader("import", "always", ("file", "filename")),
    "surface": _Reader("surface", "always"),
    "linear_extrude": _Reader("import", "string"),
    "rotate_extrude": _Reader("import", "string"),
    "dxf_linear_extrude": _Reader("import", "string"),
    "dxf_rotate_extrude": _Reader("import", "string"),
    "dxf_dim": _Reader("import", "never", from_main=True),
    "dxf_cross": _Reader("import", "never", from_main=True),
}
_FROM_MAIN = frozenset(name for name, reader in _READERS.items() if reader.from_main)
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def file_references(source: str, filename: str = "model.scad") -> list[FileReference]:
    """What ``source`` reads, in source order; raises ``InvalidProduct`` when it does not
    tokenize (an unterminated string or comment, unbalanced brackets)."""
    tokens = tokenize(source, filename).tokens
    found: list[FileReference] = []
    for index, token in enumerate(tokens):
        if token.kind in ("include", "use"):
            kind: ReferenceKind = "include" if token.kind == "include" else "use"
            found.append(FileReference(kind, str(token.value), token.line, token.kind))
        elif token.kind == "ident" and token.text in _READERS and _is_call(tokens, index):
            reference = _call_reference(tokens, index)
            if reference is not None:
                found.append(reference)
    return found


def _is_call(tokens: Sequence[Token], index: int) -> bool:
    """``name(`` used, not defined (``module surface(...)`` defines one)."""
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    before = tokens[index - 1] if index > 0 else None
    defines = (
        before is not None and before.kind == "ident" and before.text in ("module", "function")
    )
    return after is not None and after.text == "(" and after.kind == "op" and not defines


def _call_reference(tokens: Sequence[Token], index: int) -> FileReference | None:
    name = tokens[index]
    reader = _READERS[name.text]
    arguments = _arguments(tokens, index + 2)
    named = {key: value for key, value in arguments if key}
    chosen = next((named[key] for key in reader.names if key in named), None)
    positional = [value for key, value in arguments if not key]
    if chosen is None and positional and reader.first != "never":
        literal = literal_value(positional[0])
        if reader.first == "always" or isinstance(literal, str):
            chosen = positional[0]
    if chosen is None:
        return None  # reads no file
    literal = literal_value(chosen)
    path = literal if isinstance(literal, str) else None
    return FileReference(reader.kind, path, name.line, name.text)


def _arguments(tokens: Sequence[Token], start: int) -> list[tuple[str, list[Token]]]:
    """The arguments of a call whose ``(`` is just before ``start``: (name or "", tokens)."""
    arguments: list[tuple[str, list[Token]]] = []
    current: list[Token] = []
    depth = 0
    for token in tokens[start:]:
        if token.kind == "op" and token.text in "([{":
            depth += 1
        elif token.kind == "op" and token.text in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif token.kind == "op" and token.text == "," and depth == 0:
            arguments.append(_named(current))
            current = []
            continue
        current.append(token)
    if current:
        arguments.append(_named(current))
    return arguments


def _named(tokens: list[Token]) -> tuple[str, list[Token]]:
    if len(tokens) >= 2 and tokens[0].kind == "ident" and tokens[1].text == "=":
        return tokens[0].text, tokens[2:]
    return "", tokens


def reference_problems(
    main: str, files: Mapping[str, str], known: Collection[str] | None = None
) -> list[Problem]:
    """Every file reference of the product that reads outside its folder or nothing.

    ``main`` is the main file's path, a key of ``files``; ``files`` maps each ``.scad`` file of
    the folder (relative POSIX path) to its text; ``known`` is every path in the folder,
    binary files (STL, SVG, fonts) included (default: the keys of ``files``).
    """
    return _Walk(main, files, set(files) if known is None else set(known)).run()


def read_files(
    main: str, files: Mapping[str, str], known: Collection[str] | None = None
) -> set[str]:
    """The folder's files the product reads (main included), found as ``reference_problems``
    follows them: a file no statement reads can be left out of the product."""
    walk = _Walk(main, files, set(files) if known is None else set(known))
    walk.run()
    return walk.read


class _Walk:
    """Follows ``include``/``use`` from the main file, collecting problems and files read."""

    def __init__(self, main: str, files: Mapping[str, str], known: set[str]) -> None:
        self.main = main
        self.files = files
        self.known = known | set(files)
        self.read: set[str] = set()
        self.problems: list[Problem] = []

    def run(self) -> list[Problem]:
        pending = deque([self.main])
        while pending:
            current = pending.popleft()
            if current in self.read:
                continue
            self.read.add(current)
            pending.extend(self._visit(current))
        return self.problems

    def _visit(self, filename: str) -> list[str]:
        """Check one file's references; the ``.scad`` files it includes or uses."""
        try:
            references = file_references(self.files.get(filename, ""), filename)
        except InvalidProduct as exc:
            self.problems.extend(exc.problems)
            return []
        follow = []
        for reference in references:
            base = self.main if reference.call in _FROM_MAIN else filename
            resolved = self._resolve(reference, filename, base)
            if resolved is None:
                continue
            if reference.kind in ("include", "use") and resolved in self.files:
                follow.append(resolved)
            else:
                self.read.add(resolved)
        return follow

    def _resolve(self, reference: FileReference, filename: str, base: str) -> str | None:
        """The folder path ``reference`` reads, or None after recording its problem."""
        message = path_problem(reference.path)
        resolved = None
        if message is None:
            assert reference.path is not None
            joined = posixpath.join(posixpath.dirname(base), reference.path)
            resolved = posixpath.normpath(joined)
            if resolved not in self.known:
                message = self._missing(resolved)
        if message is None:
            return resolved
        line = reference.line
        self.problems.append(
            Problem(f"{filename}:{line}", f"line {line}: {reference.describe()}: {message}")
        )
        return None

    def _missing(self, resolved: str) -> str:
        close = difflib.get_close_matches(resolved, sorted(self.known), n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f"{resolved} is not in the product's folder{hint}"


def path_problem(path: str | None) -> str | None:
    """Why a model may not read ``path`` (None when it may, if the file is there)."""
    if path is None:
        return (
            "the file is named by an expression; name it with a string literal "
            '("part.stl") so that the files a product reads can be checked'
        )
    if not path:
        return "the file name is empty"
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "an absolute path; a model reads only files in its own folder, by relative path"
    if "\\" in path:
        return "a path with '\\'; write folders with '/'"
    if ".." in path.split("/"):
        return "'..' leaves the product's folder; a model reads only files in its own folder"
    return None

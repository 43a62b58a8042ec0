"""The generated part of ``docs/plugins.md``: the hook reference and the contracts.

Everything here is read from the code (:mod:`kassa.hookspecs` docstrings and
pluggy markers, :mod:`kassa.contracts` dataclass fields and their trailing
comments), so the guide cannot drift from it: ``kassa plugin docs`` rewrites the
block between the markers and ``kassa plugin docs --check`` (and
``tests/test_plugin_docs.py``) fail when the file is out of date.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import tokenize
from pathlib import Path

from . import contracts, hookspecs

BEGIN = "<!-- BEGIN GENERATED REFERENCE (kassa plugin docs) -->"
END = "<!-- END GENERATED REFERENCE -->"
DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

_ROLE = re.compile(r":(?:class|func|mod|data):`~?([\w.]+)`")


class DocsError(RuntimeError):
    """The guide is missing its markers or cannot be read."""


def _anchor(name: str) -> str:
    return "contract-" + name.lower()


def _contract_names() -> frozenset[str]:
    return frozenset(obj.__name__ for obj in contract_classes() + contract_exceptions() + contract_functions())


def _md(text: str | None, names: frozenset[str] = frozenset()) -> str:
    """A docstring as Markdown: dedented, Sphinx roles turned into code (linked when in ``names``)."""
    text = inspect.cleandoc(text or "")

    def role(match: re.Match) -> str:
        name = match.group(1).rsplit(".", 1)[-1]
        return f"[`{name}`](#{_anchor(name)})" if name in names else f"`{name}`"

    return _ROLE.sub(role, text).replace("``", "`")


# ---------------------------------------------------------------- hooks


def hooks_of(spec_class) -> list[tuple[str, object]]:
    """The hooks of one spec class in the order they are written."""
    return [(name, fn) for name, fn in vars(spec_class).items()
            if name.startswith(hookspecs.PROJECT + "_") and callable(fn)]


def _signature(name: str, fn) -> str:
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    return f"{name}({', '.join(params)})"


def render_hooks() -> str:
    names = _contract_names()
    out = ["## Hook reference", "", _md(hookspecs.__doc__, names), ""]
    out += ["| hook | group | calls |", "|---|---|---|"]
    for cls in hookspecs.SPEC_CLASSES:
        for name, fn in hooks_of(cls):
            first = getattr(fn, hookspecs.PROJECT + "_spec", {}).get("firstresult")
            calls = "first result" if first else "every plugin"
            out.append(f"| [`{name}`](#hook-{name}) | {cls.__name__} | {calls} |")
    out.append("")
    for cls in hookspecs.SPEC_CLASSES:
        out += [f"### {cls.__name__}", "", _md(cls.__doc__, names), ""]
        for name, fn in hooks_of(cls):
            opts = getattr(fn, hookspecs.PROJECT + "_spec", {})
            kind = ("**firstresult**: the first non-`None` answer wins; return `None` for what is not yours"
                    if opts.get("firstresult") else "called on every enabled plugin; the core gets the list of answers")
            out += [f'<a id="hook-{name}"></a>', f"#### `{_signature(name, fn)}`", "", kind, "",
                    _md(fn.__doc__, names), ""]
    listing = ", ".join(f"`{hook}` ({label} by `{attr}`)" for hook, (label, attr) in hookspecs.LISTING_HOOKS.items())
    out += ["Ids declared by the listing hooks must be unique across installed plugins (two plugins "
            f"declaring the same id stop start-up, naming both): {listing}.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- contracts


def contract_classes() -> list[type]:
    """The dataclasses of :mod:`kassa.contracts` in source order (a module's namespace keeps it)."""
    return [obj for obj in vars(contracts).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == contracts.__name__]


def contract_exceptions() -> list[type]:
    return [obj for obj in vars(contracts).values()
            if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == contracts.__name__]


def contract_functions() -> list:
    """The public helper functions of :mod:`kassa.contracts` (``require_country``...)."""
    return [obj for name, obj in vars(contracts).items()
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == contracts.__name__]


def _function_signature(fn) -> str:
    try:
        return str(inspect.signature(fn, eval_str=True)).replace("<class '", "").replace("'>", "")
    except (NameError, TypeError):  # an annotation that does not resolve: show it as written
        return str(inspect.signature(fn))


def _field_comments() -> dict[str, dict[str, str]]:
    """Class name -> the trailing ``# comment`` of each annotated field (one parse of the module)."""
    source = inspect.getsource(contracts)
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    return {node.name: {stmt.target.id: comments[stmt.lineno] for stmt in node.body
                        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                        and stmt.lineno in comments}
            for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        return f"`{f.default_factory()!r}`"
    return "required"


def _own_doc(cls) -> str:
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else doc  # dataclass's generated signature


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_contracts() -> str:
    names = _contract_names()
    comments = _field_comments()
    out = ["## Contracts", "", _md(contracts.__doc__, names), "",
           f"`GatewayResult.status` is one of {', '.join(f'`{s}`' for s in contracts.CHARGE_STATUSES)}.", ""]
    for cls in contract_classes():
        out += [f'<a id="{_anchor(cls.__name__)}"></a>', f"### `{cls.__name__}`", ""]
        if _own_doc(cls):
            out += [_md(_own_doc(cls), names), ""]
        notes = comments.get(cls.__name__, {})
        out += ["| field | type | default | note |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            note = _cell(notes.get(f.name, ""))
            out.append(f"| `{f.name}` | `{_cell(str(f.type))}` | {_cell(_default(f))} | {note} |")
        extras = [name for name, value in vars(cls).items()
                  if not name.startswith("_") and isinstance(value, property)]
        methods = [name for name, value in vars(cls).items()
                   if not name.startswith("_") and inspect.isfunction(value)]
        if extras or methods:
            out += ["", "Also: " + ", ".join([f"`{n}` (property)" for n in extras] + [f"`{n}()`" for n in methods])]
        out.append("")
    out += ["### Exceptions", ""]
    for cls in contract_exceptions():
        out += [f'<a id="{_anchor(cls.__name__)}"></a>', f"#### `{cls.__name__}`", "", _md(cls.__doc__, names), ""]
    functions = contract_functions()
    if functions:
        out += ["### Helpers", ""]
    for fn in functions:
        out += [f'<a id="{_anchor(fn.__name__)}"></a>', f"#### `{fn.__name__}{_function_signature(fn)}`", "",
                _md(fn.__doc__, names), ""]
    from .forms_api import SecretField

    out += ['<a id="contract-secretfield"></a>', "### `SecretField` (`kassa.forms_api`)", "",
            _md(SecretField.__doc__, names), ""]
    return "\n".join(out)


def render_reference() -> str:
    """The whole generated block, markers included."""
    note = "<!-- Generated from kassa/hookspecs.py and kassa/contracts.py: edit those and run `kassa plugin docs`. -->"
    return "\n".join([BEGIN, note, "", render_hooks(), render_contracts().rstrip(), "", END])


# ---------------------------------------------------------------- the file


def _split(text: str) -> tuple[str, str, str]:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise DocsError(f"The guide must contain the markers {BEGIN!r} and {END!r} once each, in that order.")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    return head, BEGIN + block + END, tail


def current_block(path: Path = DOCS_PATH) -> str:
    return _split(path.read_text(encoding="utf-8"))[1]


def updated_text(text: str) -> str:
    head, _, tail = _split(text)
    return head + render_reference() + tail


def write(path: Path = DOCS_PATH) -> bool:
    """Rewrite the generated block; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    new = updated_text(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def is_current(path: Path = DOCS_PATH) -> bool:
    return current_block(path) == render_reference()

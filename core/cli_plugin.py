"""``kassa plugin``: tools for plugin authors (no app or database needed).

* ``kassa plugin new NAME --kind gateway|tax|renderer|dunning`` writes an
  installable plugin folder from ``kassa/plugin_template/<kind>/``;
* ``kassa plugin docs [--check]`` regenerates the hook and contract reference in
  ``docs/plugins.md``;
* ``kassa plugin list`` is ``kassa plugins list`` (what is installed).
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

import click
import jinja2

TEMPLATES = Path(__file__).resolve().parent / "plugin_template"
KINDS = ("gateway", "tax", "renderer", "dunning")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,38}[a-z0-9]$")
SUFFIX = ".tmpl"


class TemplateError(click.ClickException):
    pass


def check_name(name: str) -> str:
    """A plugin name: the entry-point name, the gateway/engine id and part of the package name."""
    if not NAME_RE.match(name or "") or "__" in name:
        raise TemplateError(
            f"Invalid plugin name {name!r}: use 3 to 40 lower-case letters, digits and single underscores, "
            "starting with a letter and not ending with an underscore (e.g. acmepay or acme_pay).")
    if keyword.iskeyword(name) or name in ("kassa", "test", "tests", "builtin"):
        raise TemplateError(f"Invalid plugin name {name!r}: it is reserved.")
    return name


def template_vars(name: str, kind: str) -> dict:
    title = "".join(part.capitalize() for part in name.split("_"))
    return {"name": name, "kind": kind, "package": f"kassa_{name}", "dist": "kassa-" + name.replace("_", "-"),
            "title": title, "label": " ".join(part.capitalize() for part in name.split("_"))}


def _environment(kind: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / kind)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False,
        # [[ ]] and [% %]: the templates are Python, TOML and Markdown full of { } already.
        variable_start_string="[[", variable_end_string="]]", block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]")


def template_files(kind: str) -> list[Path]:
    root = TEMPLATES / kind
    return sorted(p.relative_to(root) for p in root.rglob("*" + SUFFIX) if p.is_file())


def create_plugin(name: str, kind: str, directory: Path) -> Path:
    """Render the ``kind`` template for ``name`` into ``directory/name``; returns that folder."""
    check_name(name)
    if kind not in KINDS:
        raise TemplateError(f"Unknown kind {kind!r}: choose one of {', '.join(KINDS)}.")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TemplateError(f"{directory} is not a directory.")
    target = directory / name
    if target.exists():
        raise TemplateError(f"{target} already exists; choose another name or --directory.")
    values = template_vars(name, kind)
    env = _environment(kind)
    rendered = {}
    for rel in template_files(kind):  # render everything first: nothing half-written on an error
        out = Path(rel.as_posix().replace("__package__", values["package"]).replace("__name__", name)
                   .removesuffix(SUFFIX))
        rendered[out] = env.get_template(rel.as_posix()).render(**values)
    if not rendered:
        raise TemplateError(f"No template files for {kind!r} in {TEMPLATES / kind}.")
    target.mkdir(parents=True)
    for rel, text in rendered.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


@click.group("plugin")
def plugin_group():
    """Write plugins: `new` from a template, `docs` for the reference (installed ones: `list`)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the plugin provides.")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the plugin folder NAME.")
def new_command(name, kind, directory):
    """Create an installable plugin folder NAME from the KIND template."""
    target = create_plugin(name, kind, directory)
    values = template_vars(name, kind)
    click.echo(f"Created {values['dist']} in {target}")
    click.echo("Next:")
    click.echo(f"  pip install -e '{target}[test]'   # registers entry point {name} = {values['package']}.plugin")
    click.echo(f"  cd {target} && python -m pytest        # its own tests and the conformance kit")
    click.echo("  then enable it for your provider in the console under Plugins (see docs/plugins.md).")


@plugin_group.command("docs")
@click.option("--check", is_flag=True, help="Only check: exit 1 when the reference is out of date.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The guide to update (default: docs/plugins.md of the checkout).")
def docs_command(check, path):
    """Regenerate the hook and contract reference in docs/plugins.md."""
    from . import plugin_docs

    path = path or plugin_docs.DOCS_PATH
    if not path.is_file():
        raise click.ClickException(f"{path} not found (the guide lives in a source checkout of Kassa).")
    try:
        if check:
            if not plugin_docs.is_current(path):
                click.echo(f"{path} is out of date: run `kassa plugin docs`.", err=True)
                raise SystemExit(1)
            click.echo(f"{path} is up to date.")
            return
        changed = plugin_docs.write(path)
    except plugin_docs.DocsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'Updated' if changed else 'Already up to date:'} {path}")


def register(main, plugins_list) -> None:
    """Add ``kassa plugin`` to the ``kassa`` command (``list`` shared with ``kassa plugins``)."""
    plugin_group.add_command(plugins_list, "list")
    main.add_command(plugin_group)

"""MkDocs hooks: the reference tables generated from the code, never copied by hand.

A page asks for a table with an HTML comment on a line of its own:

``<!-- generated: settings -->``
    every field of :class:`quant.config.Settings`, nested sections included:
    environment variable, type, default and the field's description;
``<!-- generated: cli -->``
    every command and subcommand of the ``quant`` command line with its usage,
    help and options, as ``--help`` prints them;
``<!-- generated: table SCHEMA.NAME -->``
    the columns of a table as the SQL migrations in ``quant/db/migrations`` create it;
``<!-- generated: other-tables SCHEMA -->``
    every table of ``SCHEMA`` that the page has not shown yet (a new table appears
    in the reference before anyone describes it);
``<!-- generated: layers -->``
    the layers of the import-linter ``layers`` contract in ``pyproject.toml``, top first.

An unknown marker, or a table no migration creates, fails the build.
"""

from __future__ import annotations

import inspect
import json
import re
from datetime import time
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- generated: (?P<what>[a-z-]+)(?: (?P<arg>[A-Za-z0-9_.]+))? -->$", re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Replace each generation marker of the page with its table."""
    shown: set[str] = set()

    def render(match: re.Match[str]) -> str:
        what, arg = match["what"], match["arg"]
        where = f"{page.file.src_uri}: <!-- generated: {what} -->"
        if what == "settings" and arg is None:
            return settings_reference()
        if what == "cli" and arg is None:
            return cli_reference()
        if what == "layers" and arg is None:
            return layers_reference(where)
        if what == "table" and arg:
            shown.add(arg)
            return table_reference(arg, where)
        if what == "other-tables" and arg:
            rest = [name for name in migration_tables() if name.split(".")[0] == arg
                    and name not in shown]
            return "\n\n".join(f"### `{name}`\n\n{table_reference(name, where)}" for name in rest) \
                or f"Every `{arg}` table is described above."
        raise PluginError(f"{where}: unknown marker")

    return MARKER.sub(render, markdown)


# -- shared -------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped outside code spans
    (inside them the table extension keeps pipes, and a backslash would show)."""
    parts = " ".join(str(text).split()).split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _rst(text: str) -> str:
    """Docstring markup to Markdown: ``code`` becomes `code`, roles lose their prefix."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- settings -----------------------------------------------------------------------------------
def settings_reference() -> str:
    """Sections of tables: the top-level settings, then one per nested model."""
    from quant.config import ENV_PREFIX, Settings

    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    out = [
        "### Top-level settings",
        "",
        "YAML: the field name in lower case at the top of the file.",
        "",
        _settings_table(
            [(n, f) for n, f in Settings.model_fields.items() if not _model_of(f.annotation)],
            prefix=ENV_PREFIX,
            delimiter=delimiter,
        ),
    ]
    for name, field in Settings.model_fields.items():
        model = _model_of(field.annotation)
        if model is None:
            continue
        env = f"{ENV_PREFIX}{name.upper()}{delimiter}"
        out += [
            "",
            f"### `{name}`",
            "",
            _rst(inspect.cleandoc(field.description or model.__doc__ or "")),
            "",
            f"Environment: `{env}<FIELD>`; YAML: a `{name}:` section.",
            "",
            _settings_table(list(model.model_fields.items()), prefix=env, delimiter=delimiter),
        ]
        entries: dict[Any, list[str]] = {}
        for sub_name, sub_field in model.model_fields.items():
            entry = _dict_value_model(sub_field.annotation)
            if entry is not None:
                entries.setdefault(entry, []).append(sub_name)
        for entry, names in entries.items():
            listed = " and ".join(f"`{name}.{n}`" for n in names)
            variables = " and ".join(f"`{env}{n.upper()}`" for n in names)
            out += [
                "",
                f"#### Entries of {listed}",
                "",
                _rst(inspect.cleandoc(entry.__doc__ or "")),
                "",
                f"Each key of the mapping ({variables} as JSON, or the YAML mapping) takes "
                "these fields:",
                "",
                _settings_table(list(entry.model_fields.items()), prefix=None, delimiter=delimiter),
            ]
    return "\n".join(out)


def _settings_table(fields: list[tuple[str, Any]], *, prefix: str | None, delimiter: str) -> str:
    rows = []
    for name, field in fields:
        if prefix is None:
            variable = f"`{name}`"
        else:
            variable = " or ".join(f"`{v}`" for v in _env_names(name, field, prefix))
        rows.append([variable, _type_text(field), _default_text(field), field.description or ""])
    header = ["Variable" if prefix is not None else "Key", "Type", "Default", "Description"]
    return _table(header, rows)


def _env_names(name: str, field: Any, prefix: str) -> list[str]:
    """The variables that set a field: its own alias names, else the prefix plus its name."""
    from pydantic import AliasChoices

    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).upper() for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias.upper()]
    return [f"{prefix}{name.upper()}"]


def _model_of(annotation: Any) -> Any:
    from pydantic import BaseModel

    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _dict_value_model(annotation: Any) -> Any:
    if get_origin(annotation) is dict:
        return _model_of(get_args(annotation)[1])
    return None


def _type_name(annotation: Any) -> str:
    from pydantic import SecretStr

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (Union, UnionType):
        parts = [_type_name(a) for a in args if a is not NoneType]
        text = " or ".join(parts)
        return text + " or null" if NoneType in args else text
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if annotation is SecretStr:
        return "secret string"
    if annotation is time:
        return "time HH:MM"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(str(m.value) for m in annotation)
    model = _model_of(annotation)
    if model is not None:
        return model.__name__
    return getattr(annotation, "__name__", str(annotation))


def _type_text(field: Any) -> str:
    text = _type_name(field.annotation)
    bounds = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                bounds.append(f"{sign} {_value_text(value)}")
    return f"{text}, {' and '.join(bounds)}" if bounds else text


def _value_text(value: Any) -> str:
    from pydantic import BaseModel, SecretStr

    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and 1e3 <= abs(value) < 1e15 else repr(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"))
    if isinstance(value, (tuple, list, set, frozenset, dict)):
        return json.dumps(list(value) if not isinstance(value, dict) else value, default=str)
    if isinstance(value, str) and value == "":
        return '""'
    return str(value)


def _default_text(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return f"`{_value_text(value)}`"


# -- the command line ---------------------------------------------------------------------------
def cli_reference() -> str:
    """One section per command, walking the click command typer builds from ``quant.cli.app``."""
    from typer.main import get_command

    from quant.cli import app

    root = get_command(app)
    ctx = root.context_class(root, info_name="quant")
    out: list[str] = [_command_section(root, ctx, "quant", level=3)]
    out += _subcommands(root, ctx, "quant")
    return "\n\n".join(out)


def _subcommands(group: Any, ctx: Any, path: str) -> list[str]:
    out: list[str] = []
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or getattr(command, "hidden", False):
            continue
        sub_ctx = command.context_class(command, info_name=name, parent=ctx)
        out.append(_command_section(command, sub_ctx, f"{path} {name}", level=3))
        if hasattr(command, "list_commands"):
            out += _subcommands(command, sub_ctx, f"{path} {name}")
    return out


def _command_section(command: Any, ctx: Any, path: str, level: int) -> str:
    help_text = _rst(inspect.cleandoc(command.help or ""))
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    parts = [f"{'#' * level} `{path}`", "", help_text, "", f"```text\n{usage}\n```"]
    rows = []
    for param in command.get_params(ctx):
        if param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        options, text = record
        rows.append([f"`{options}`", _rst(text)])
    if hasattr(command, "list_commands"):
        subs = [n for n in sorted(command.list_commands(ctx))
                if not getattr(command.get_command(ctx, n), "hidden", False)]
        parts += ["", "Commands: " + ", ".join(f"`{n}`" for n in subs) + "."]
    if rows:
        parts += ["", _table(["Option", "Meaning"], rows)]
    return "\n".join(parts)


# -- the import layers -------------------------------------------------------------------------
def layers_reference(where: str = "") -> str:
    """The ``layers`` contract of ``[tool.importlinter]``: one row per layer, top first."""
    import tomllib

    import quant

    pyproject = Path(quant.__file__).resolve().parents[1] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text()).get("tool", {}).get("importlinter", {})
    contracts = [c for c in config.get("contracts", []) if c.get("type") == "layers"]
    if len(contracts) != 1:
        raise PluginError(f"{where}: expected one layers contract in {pyproject}, found {len(contracts)}")
    root = config.get("root_package", "quant")
    rows = []
    for index, layer in enumerate(contracts[0]["layers"], start=1):
        modules = [m.strip() for m in re.split(r"[|:]", layer) if m.strip()]
        rows.append([str(index), ", ".join(f"`{root}.{m}`" for m in modules)])
    return _table(["Layer", "Modules (each imports only the layers below it)"], rows)


# -- tables from the migrations -----------------------------------------------------------------
_CREATE = re.compile(r"create table if not exists (?P<name>\w+\.\w+)\s*\(", re.I)
_ADD = re.compile(
    r"alter table (?P<name>\w+\.\w+) add column (?:if not exists )?(?P<column>\w+) (?P<rest>[^;]*);",
    re.I,
)
_DROP_FKEY = re.compile(
    r"alter table (?P<name>\w+\.\w+) drop constraint (?:if exists )?(?P<constraint>\w+)_fkey", re.I
)
_CONSTRAINTS = ("primary", "unique", "foreign", "check", "constraint", "exclude")
_TYPE_END = re.compile(r"\s(not null|null|default|primary key|references|check|unique|generated|constraint)\b", re.I)


def _migration_dir() -> Path:
    import quant.db

    return Path(quant.db.__file__).resolve().parent / "migrations"


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _split_top(body: str) -> list[str]:
    """Items of a column list, split at commas outside parentheses and quotes."""
    items, depth, quoted, current = [], 0, False, []
    for char in body:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


def _closing(sql: str, start: int) -> int:
    """Index of the parenthesis closing the one opened just before ``start``."""
    depth, quoted = 1, False
    for index in range(start, len(sql)):
        char = sql[index]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth == 0:
                return index
    raise PluginError(f"unbalanced parentheses in a migration near {sql[start:start + 80]!r}")


def migration_tables() -> dict[str, dict[str, Any]]:
    """``{schema.table: {"columns": {name: definition}, "constraints": [...], "file": ...}}``."""
    tables: dict[str, dict[str, Any]] = {}
    for path in sorted(_migration_dir().glob("*.sql")):
        sql = _strip_comments(path.read_text())
        for match in _CREATE.finditer(sql):
            end = _closing(sql, match.end())
            table = tables.setdefault(match["name"].lower(),
                                      {"columns": {}, "constraints": [], "file": path.name})
            for item in _split_top(sql[match.end():end]):
                word = item.split(None, 1)[0].lower()
                if word in _CONSTRAINTS:
                    table["constraints"].append(" ".join(item.split()))
                else:
                    table["columns"][word] = " ".join(item.split()[1:])
        for match in _ADD.finditer(sql):
            table = tables.get(match["name"].lower())
            if table is not None:
                table["columns"][match["column"].lower()] = " ".join(match["rest"].split())
        for match in _DROP_FKEY.finditer(sql):  # <table>_<column>_fkey, PostgreSQL's own name
            name = match["name"].lower()
            table = tables.get(name)
            column = match["constraint"].lower().removeprefix(name.split(".")[1] + "_")
            if table is not None and column in table["columns"]:
                table["columns"][column] = re.sub(
                    r"\s*references \w+\.\w+\s*(\([^)]*\))?", "", table["columns"][column], flags=re.I
                )
    return tables


def _column_row(name: str, definition: str, primary: set[str]) -> list[str]:
    end = _TYPE_END.search(" " + definition)
    sql_type = (" " + definition)[: end.start()].strip() if end else definition
    lower = definition.lower()
    notes = []
    if name in primary:
        notes.append("key")
    values = re.search(r"check \(\s*\w+ in \(([^)]*)\)\s*\)", definition, re.I)
    if values:
        notes.append("one of " + ", ".join(v.strip().strip("'") for v in values[1].split(",")))
    ref = re.search(r"references (\w+\.\w+)", definition, re.I)
    if ref:
        notes.append(f"→ `{ref[1]}`")
    default = re.search(r"default ('[^']*'(?:::\w+)?|[\w.]+(?:\(\))?)", definition, re.I)
    nullable = "no" if ("not null" in lower or "primary key" in lower or name in primary) else "yes"
    return [f"`{name}`", sql_type, nullable, f"`{default[1]}`" if default else "", "; ".join(notes)]


def table_reference(name: str, where: str = "") -> str:
    """The columns of one table, with its keys and table constraints."""
    tables = migration_tables()
    table = tables.get(name.lower())
    if table is None:
        raise PluginError(f"{where}: no migration creates the table {name!r}")
    primary = {c for c, d in table["columns"].items() if "primary key" in d.lower()}
    extra = []
    for constraint in table["constraints"]:
        found = re.match(r"primary key \(([^)]*)\)", constraint, re.I)
        if found:
            primary |= {c.strip() for c in found[1].split(",")}
        elif not constraint.lower().startswith("check"):
            extra.append(constraint)
    rows = [_column_row(c, d, primary) for c, d in table["columns"].items()]
    keys = [c for c in table["columns"] if c in primary]
    text = f"Key: ({', '.join(f'`{k}`' for k in keys)})" if keys else "No primary key"
    if extra:
        text += "; " + "; ".join(f"`{_cell(c)}`" for c in extra)
    text += f". Created in `{table['file']}`."
    return text + "\n\n" + _table(["Column", "Type", "Null", "Default", "Notes"], rows)

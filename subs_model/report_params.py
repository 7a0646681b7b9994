"""Report parameters: what each notebook declares, and the checks made before any kernel starts.

A notebook declares its parameters in its ``parameters`` cell (``name = literal  # help``).
A parameter given to a suite run applies to every chosen notebook that declares it, and is
refused only if none does. Types are checked per notebook, then each value's domain
(:data:`DOMAINS`): dates are ISO days inside the data's date range, ``start ≤ end``,
horizons and run counts are positive, editions and languages come from their lists, files
and folders exist. Every refusal is one :class:`ParameterError` naming the parameter, the
value and what to give instead; nothing runs until all notebooks pass.

>>> from subs_model.resources import notebooks_dir
>>> p = declared_parameters(notebooks_dir() / "02-renewal-timing.ipynb")
>>> p["lang"].default, p["lang"].type.__name__
('ru', 'str')
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SubsModelError

__all__ = ["DOMAINS", "NotebookParameter", "ParameterError", "check_domains", "check_parameters", "declared_parameters",
           "parameter_help", "resolve_paths", "suite_parameters"]

LANGS = ("ru", "en")
EDITIONS = ("all", "full", "basic")
_DATE_PARAMS = ("as_of", "start", "end")


class ParameterError(SubsModelError, ValueError):
    """A report parameter is unknown to the notebooks, has the wrong type or is outside its domain."""


@dataclass(frozen=True, slots=True)
class NotebookParameter:
    """One assignment of a notebook's ``parameters`` cell."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def is_path(self) -> bool:
        """Whether the parameter names a file or folder (its default is a path)."""
        d = self.default
        return isinstance(d, str) and ("/" in d or d.endswith((".yaml", ".yml")))


def _parameters_source(path: Path) -> str:
    # Plain JSON, not nbformat: `subs-model report --help` reads every notebook and must stay quick.
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    from .reports import ReportError

    msg = f"{path}: no cell tagged 'parameters'; tag the cell of defaults so the runner can inject values"
    raise ReportError(msg)


def declared_parameters(path: str | Path) -> dict[str, NotebookParameter]:
    """The parameters a notebook declares: names, types and defaults of its ``parameters`` cell.

    Only plain literal assignments count (``name = value  # help``), as the house style asks.
    """
    source = _parameters_source(Path(path))
    lines = source.splitlines()
    out: dict[str, NotebookParameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            line = lines[node.lineno - 1]
            help_text = line.split("#", 1)[1].strip() if "#" in line else ""
            out[node.targets[0].id] = NotebookParameter(node.targets[0].id, type(value), value, help_text)
    return out


def _coerce(p: NotebookParameter, value: Any, *, from_text: bool) -> Any:
    """``value`` converted to the parameter's type, or a ParameterError saying why not."""
    want = p.type
    if from_text and isinstance(value, str):
        text = value.strip()
        try:
            if want is bool:
                if text.lower() in ("true", "1", "yes", "да"):
                    return True
                if text.lower() in ("false", "0", "no", "нет"):
                    return False
                raise ValueError(text)
            if want is int:
                return int(text)
            if want is float:
                return float(text)
        except ValueError:
            msg = f"parameter {p.name!r} expects {want.__name__} (default {p.default!r}), got {value!r}"
            raise ParameterError(msg) from None
        return value  # str parameters stay exactly as typed: ids and codes keep leading zeros
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        hint = " (quote it in YAML: ids and codes must stay text)" if want is str else ""
        msg = f"parameter {p.name!r} expects {want.__name__} (default {p.default!r}), got {value!r} ({type(value).__name__}){hint}"
        raise ParameterError(msg)
    return value


def _valid_list(declared: Mapping[str, NotebookParameter]) -> str:
    return "\n".join(f"  {p.name} ({p.type.__name__}, default {p.default!r}) {p.help}" for p in declared.values())


def check_parameters(path: Path, text_params: Mapping[str, str], typed_params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, typed parameters for the notebook at ``path`` (text from ``-p``, typed from YAML); every name must be declared."""
    declared = declared_parameters(path)
    out: dict[str, Any] = {}
    for source, params, from_text in (("-f", typed_params, False), ("-p", text_params, True)):
        for name, value in params.items():
            if name not in declared:
                msg = f"{path.name}: unknown parameter {name!r} (given with {source}); valid parameters:\n{_valid_list(declared)}"
                raise ParameterError(msg)
            out[name] = _coerce(declared[name], value, from_text=from_text)
    return out


def suite_parameters(paths: Sequence[Path], text_params: Mapping[str, str], typed_params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per notebook, the typed parameters of a suite run: each given name goes to the notebooks that declare it.

    A name no chosen notebook declares is refused with the parameters they do declare.

    >>> from subs_model.resources import notebooks_dir
    >>> nbs = [notebooks_dir() / "01-cohort-overview.ipynb", notebooks_dir() / "05-pricing-whatif.ipynb"]
    >>> [sorted(p) for p in suite_parameters(nbs, {"runs": "5", "lang": "en"}, {})]
    [['lang'], ['lang', 'runs']]
    """
    declared = [declared_parameters(p) for p in paths]
    union: dict[str, NotebookParameter] = {}
    for d in declared:
        union.update({k: v for k, v in d.items() if k not in union})
    for source, params in (("-f", typed_params), ("-p", text_params)):
        unknown = [n for n in params if n not in union]
        if unknown:
            where = ", ".join(p.stem for p in paths)
            msg = (f"unknown parameter {unknown[0]!r} (given with {source}): no chosen notebook ({where}) declares it; "
                   f"valid parameters:\n{_valid_list(union)}")
            raise ParameterError(msg)
    out = []
    for path, d in zip(paths, declared, strict=True):
        try:
            out.append(check_parameters(path, {k: v for k, v in text_params.items() if k in d},
                                        {k: v for k, v in typed_params.items() if k in d}))
        except ParameterError as exc:
            raise ParameterError(f"{path.stem}: {exc}") from None
    return out


def resolve_paths(declared: Mapping[str, NotebookParameter], given: Mapping[str, Any], nb_dir: Path,
                  data_home: Path, cwd: Path | None = None) -> dict[str, Any]:
    """Every path parameter as an absolute path, so that a notebook run from any folder finds its files.

    A given relative path is taken from the current folder if it exists there, else from the
    notebooks folder (where schedule files written for ``../data/…`` point). A default
    (``../data/catalog.yaml``) is taken from the notebooks folder if it exists there, else
    from the shipped data (:func:`subs_model.resources.data_dir`): a copy of the notebooks
    elsewhere still finds the catalog and the sample.
    """
    cwd = cwd or Path(os.getcwd())
    out: dict[str, Any] = {}
    for name, p in declared.items():
        if not p.is_path:
            continue
        value = given.get(name, p.default)
        if not isinstance(value, str) or not value:
            continue
        v = Path(value).expanduser()
        if v.is_absolute():
            out[name] = str(v)
        elif name in given:
            out[name] = str((cwd / v).resolve() if (cwd / v).exists() else (nb_dir / v).resolve())
        elif (nb_dir / v).exists():
            out[name] = str((nb_dir / v).resolve())
        else:
            parts = v.parts
            rest = Path(*parts[parts.index("data") + 1:]) if "data" in parts else Path(v.name)
            out[name] = str(data_home / rest)
    return out


def _is_day(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _positive(name: str, value: Any) -> str:
    return "" if value > 0 else f"parameter {name!r} must be greater than 0, got {value!r}"


def _non_negative(name: str, value: Any) -> str:
    return "" if value >= 0 else f"parameter {name!r} must be 0 or more, got {value!r}"


def _one_of(choices: Sequence[str]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        return "" if value in choices else f"parameter {name!r} must be one of {', '.join(choices)}; got {value!r}"
    return check


def _day_or_empty(name: str, value: Any) -> str:
    return "" if value == "" or _is_day(value) else f"parameter {name!r} must be a day YYYY-MM-DD (or empty), got {value!r}"


def _exists(name: str, value: Any) -> str:
    return "" if not value or Path(value).exists() else f"parameter {name!r}: {value} does not exist; give an existing file or folder"


#: Domain of each known parameter name: a check returning "" or the refusal.
DOMAINS: dict[str, Callable[[str, Any], str]] = {
    "lang": _one_of(LANGS),
    "edition": _one_of(EDITIONS),
    "as_of": _day_or_empty,
    "start": _day_or_empty,
    "end": _day_or_empty,
    "churn_horizon_days": _positive,
    "horizon_months": _positive,
    "horizon_days": _positive,
    "runs": _positive,
    "seed": _non_negative,
    "grace_days": _non_negative,
    "renewal_price": _non_negative,
    "upgrade_price": _non_negative,
    "months": _positive,
    "backtest_months": _positive,
    "elasticity_runs": _positive,
    "break_even_runs": _positive,
    "near_days": _non_negative,
    "upgrade_window_days": _positive,
}


def check_domains(name: str, declared: Mapping[str, NotebookParameter], effective: Mapping[str, Any],
                  date_range: Callable[[str], tuple[dt.date, dt.date] | None]) -> None:
    """Refuse a value outside its domain (one line, naming the notebook, parameter and value).

    ``effective`` holds every declared parameter's value (given, else default, paths absolute);
    ``date_range(data)`` gives the first and last event day of a ledger, or None if unknown.
    """
    for key, value in effective.items():
        p = declared.get(key)
        check = DOMAINS.get(key) or (_exists if p is not None and p.is_path else None)
        if check is not None and (problem := check(key, value)):
            raise ParameterError(f"{name}: {problem}")
    days = {k: dt.date.fromisoformat(effective[k]) for k in _DATE_PARAMS if effective.get(k)}
    if "start" in days and "end" in days and days["start"] > days["end"]:
        msg = f"{name}: start {days['start']} is after end {days['end']}; give start ≤ end"
        raise ParameterError(msg)
    if not days or not effective.get("data"):
        return
    span = date_range(str(effective["data"]))
    if span is None:
        return
    first, last = span
    for key, day in days.items():
        if not first <= day <= last:
            msg = f"{name}: {key} {day} is outside the data ({first} … {last}); give a day in that range or leave it empty"
            raise ParameterError(msg)
    if "as_of" in days:
        for key in ("start", "end"):
            if key in days and days[key] > days["as_of"]:
                msg = f"{name}: {key} {days[key]} is after as_of {days['as_of']}; give {key} ≤ as_of"
                raise ParameterError(msg)


def parameter_help(notebooks: Path, lang: str = "en") -> str:
    """The notebooks' parameters as help text: one line per name, with type, default, notebooks and help.

    >>> from subs_model.resources import notebooks_dir
    >>> "churn_horizon_days" in parameter_help(notebooks_dir())
    True
    """
    seen: dict[str, tuple[NotebookParameter, list[str]]] = {}
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        try:
            params = declared_parameters(path)
        except (SubsModelError, ValueError, OSError, SyntaxError):
            continue
        for k, p in params.items():
            seen.setdefault(k, (p, []))[1].append(path.stem[:2])
    head = "параметры блокнотов (-p ИМЯ ЗНАЧЕНИЕ):" if lang == "ru" else "notebook parameters (-p NAME VALUE):"
    lines = [head]
    for k, (p, where) in seen.items():
        help_text = _help_in(p.help, lang)
        lines.append(f"  {k} ({p.type.__name__}, {p.default!r}; {','.join(where)}) {help_text}")
    return "\n".join(lines)


def _help_in(text: str, lang: str) -> str:
    """The part of a bilingual help comment (``english / русский``) in ``lang``."""
    if " / " not in text:
        return text
    en, ru = text.rsplit(" / ", 1)
    return ru if lang == "ru" else en

"""The source parsers stay free of the web layer: read their imports, follow them through shared/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "shared" / "sources").glob("*.py"))
HTTP = ("shared.edge", "shared.http_adapter", "flask", "werkzeug", "functions_framework")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, as dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from shared import edge`
    return names


def module_file(name: str) -> Path | None:
    """The file of a module in this repo, None for a name that is not one (a class, a library)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable(start: Path) -> dict[str, str]:
    """Each module reachable from `start` through imports, mapped to the module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    done: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in done:
            continue
        done.add(path)
        importer = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for name in imports_of(path):
            seen.setdefault(name, importer)
            found = module_file(name)
            if found is not None:
                todo.append(found)
    return seen


def is_http(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HTTP)


def test_every_source_module_is_read() -> None:
    assert len(SOURCES) > 10 and all(p.name != "edge.py" for p in SOURCES)


def test_no_parser_imports_the_http_pipeline_or_a_web_framework() -> None:
    offenders = {f"{path.name}: {name} (imported by {by})"
                 for path in SOURCES for name, by in reachable(path).items() if is_http(name)}
    assert not offenders, sorted(offenders)


def test_no_writer_imports_a_source_parser_or_the_edge() -> None:
    """Writers apply payloads; the Lead Ads writer writes its lead without the webhook's parser."""
    writers = sorted((ROOT / "shared" / "writers").glob("*.py"))
    offenders = {f"{path.name}: {name} (imported by {by})" for path in writers
                 for name, by in reachable(path).items()
                 if is_http(name) or name == "shared.sources" or name.startswith("shared.sources.")}
    assert not offenders, sorted(offenders)


def test_the_check_sees_an_http_import(tmp_path: Path) -> None:
    """The walk itself must catch one, or the test above could not fail."""
    parser = tmp_path / "parser.py"
    parser.write_text("def f():\n    from shared.edge import Response\n\nimport flask\n", encoding="utf-8")
    assert {n for n in imports_of(parser) if is_http(n)} == {"shared.edge", "shared.edge.Response", "flask"}
    assert is_http("shared.edge") and not is_http("shared.edgelike") and not is_http("shared.inbound")

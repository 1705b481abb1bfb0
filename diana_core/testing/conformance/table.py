"""The ctype x check table of docs/conformance.md, generated from the kit's test classes in the repository.

Each plugin's ``test_*_conformance.py`` declares what it runs (``faults``, ``operations``) and what does not apply
(``not_applicable`` and the ``*_not_applicable`` reasons); CI runs what is declared, so "pass" here means "run and
required to pass". ``python -m diana_core.testing.conformance.table --write docs/conformance.md`` refreshes the page;
tests/conformance/test_table.py fails when it is stale or a registered ctype neither runs the kit nor says why.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diana_core.testing.conformance.contract import CONTRACT_CHECKS, EndpointContract
from diana_core.testing.conformance.dimse import DIMSE_FAULTS
from diana_core.testing.conformance.faults import BULK_FAULTS, HTTP_FAULTS, EndpointFaults
from diana_core.testing.conformance.restart import EndpointRestart

MODULES = ("plugins/*/tests/test_*_conformance.py", "contrib/*/tests/test_*_conformance.py",
           "tests/conformance/test_kit.py")
START, END = "<!-- conformance-table:start -->", "<!-- conformance-table:end -->"
CONTRACT_LABELS = {"put_then_get_exists": "put→get", "put_then_find": "put→find", "put_twice_is_idempotent": "put ×2",
                   "study_exists_means_complete": "complete", "delete_removes": "delete", "levels": "levels",
                   "not_found_raises": "NotFound", "unknown_keyword_put": "kw put", "unknown_keyword_get": "kw get",
                   "unknown_keyword_exists": "kw exists", "unknown_keyword_find": "kw find",
                   "unknown_keyword_delete": "kw delete"}
FAULT_COLUMNS = (*HTTP_FAULTS, *DIMSE_FAULTS, "restart")
FAULT_LABELS = {"reset_request": "reset req", "reset_response": "reset resp", "html_login": "login page",
                "http_401": "401", "http_403": "403", "http_404": "404", "retry_after_429": "429",
                "retry_after_503": "503", "huge_body": "2 GiB", "malformed_json": "bad JSON", "assoc_reject": "A-RJ",
                "abort_mid_transfer": "abort", "no_response": "no answer"}
NOT_HTTP = "not HTTP: no status codes, login pages or bodies"
NOT_DIMSE = "HTTP or another protocol: no DICOM upper layer (A-ASSOCIATE, A-ABORT)"
NO_RESTART = ("the test shares the session's server (Orthanc pair, dcmqrscp, a fake) or has none; \"refused\" "
              "stands for a server that is down")
# ctypes registered by the shipped plugins that do not run the kit, and why
NOT_RUN = {
    "CeleryExecutor": "an executor (runs job steps on workers), not an endpoint: it stores no items",
    "MockSite": "a test double that generates synthetic studies; it stores nothing it is given",
    "MockDevice": "a test double (a modality emitting synthetic studies); it stores nothing it is given",
    "SqliteRegistry": "a collection registry (add_to_collection / collected_items), not an item store: no put/get",
    "ObservableDcmDir": "DcmDir's storage unchanged (the kit's DcmDir row) plus changes(), tested in its own tests",
    "ObservableDicomWeb": "DicomWeb's storage unchanged (the kit's DicomWeb row) plus changes()",
    "ObservableOrthanc": "Orthanc's storage unchanged (the kit's Orthanc row) plus changes()",
    "ObservableProxiedDicom": "ProxiedDicom unchanged (the kit's ProxiedDicom row) plus changes()",
}


def load_classes(root: Path, patterns: Iterable[str] = MODULES) -> dict[str, list[type]]:
    """ctype -> the kit classes its conformance module defines (imported by path; the broken sample is not)."""
    found: dict[str, list[type]] = {}
    paths = sorted({p for pattern in patterns for p in root.glob(pattern)})
    for i, path in enumerate(paths):
        if path.parents[2].name == "contrib" and str(path.parents[1]) not in sys.path:
            sys.path.insert(0, str(path.parents[1]))  # a template plugin, not installed: import it from its folder
        spec = importlib.util.spec_from_file_location(f"_conformance_table_{i}_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == spec.name and obj.__name__.startswith("Test") and \
                    issubclass(obj, (EndpointContract, EndpointFaults, EndpointRestart)):
                found.setdefault(ctype_of(obj), []).append(obj)
    return found


def ctype_of(cls: type) -> str:
    """The row a kit class fills: its ``row`` attribute (e.g. a ctype with a non-default engine), else the ctype
    named by the class (``TestOrthancContract`` -> Orthanc)."""
    if getattr(cls, "row", None):
        return str(cls.row)  # type: ignore[attr-defined]
    name = cls.__name__.removeprefix("Test")
    for suffix in ("Contract", "Faults", "Restart"):
        name = name.removesuffix(suffix)
    return name


class _Notes:
    """Numbered reasons, each written once."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def __call__(self, reason: str) -> str:
        number = self.reasons.setdefault(reason.strip(), len(self.reasons) + 1)
        return f"n/a [{number}]"


def _contract_row(classes: list[type], notes: _Notes) -> list[str]:
    contract = next((c for c in classes if issubclass(c, EndpointContract)), None)
    if contract is None:
        return [notes("no EndpointContract class")] * len(CONTRACT_CHECKS)
    declared: dict[str, str] = contract.not_applicable  # type: ignore[attr-defined]
    levels = contract.levels  # type: ignore[attr-defined]
    cells = {check: notes(declared[check]) if check in declared else "pass" for check in CONTRACT_CHECKS}
    if cells["levels"] == "pass" and len(levels) < 3:
        cells["levels"] = f"pass ({', '.join(levels)})"
    return list(cells.values())


def _fault_cell(cls: Any, fault: str, notes: _Notes) -> str:
    if fault not in cls.faults:
        return notes(NOT_DIMSE if fault in DIMSE_FAULTS else cls.faults_not_applicable or NOT_HTTP)
    if f"fault:{fault}" in cls.not_applicable:
        return notes(cls.not_applicable[f"fault:{fault}"])
    ran = [op for op in cls.operations if f"fault:{fault}.{op}" not in cls.not_applicable]
    if not ran:
        return notes("; ".join(cls.not_applicable[f"fault:{fault}.{op}"] for op in cls.operations))
    letters = [op[0] for op in ran]
    if "write" in ran and fault in BULK_FAULTS and f"fault:{fault}.write_many" not in cls.not_applicable:
        letters.append("m")
    return "pass (" + ", ".join(letters) + ")"


def _faults_row(classes: list[type], notes: _Notes) -> list[str]:
    faults: Any = next((c for c in classes if issubclass(c, EndpointFaults)), None)
    contract: Any = next((c for c in classes if issubclass(c, EndpointContract)), None)
    restart = any(issubclass(c, EndpointRestart) for c in classes)
    if faults is None:
        why = getattr(contract, "faults_not_applicable", "") or "no network between Diana and the storage"
        cells = [notes(why)] * (len(FAULT_COLUMNS) - 1)
    else:
        cells = [_fault_cell(faults, fault, notes) for fault in FAULT_COLUMNS[:-1]]
    return [*cells, "pass" if restart else notes(NO_RESTART)]


def operations_note(classes: list[type]) -> str:
    """"only OPERATIONS - why", when a fault battery leaves an operation out."""
    faults: Any = next((c for c in classes if issubclass(c, EndpointFaults)), None)
    if faults is None or set(faults.operations) == {"read", "write"}:
        return ""
    return f"only {', '.join(faults.operations)} - {faults.operations_not_applicable}"


def render(classes: dict[str, list[type]], registered: Iterable[str] = ()) -> str:
    """The markdown between the page's markers: the contract table, the fault table, the numbered reasons."""
    notes = _Notes()
    rows = dict(sorted(classes.items()))
    no_kit = {c: NOT_RUN.get(c, "does not run the kit (say why in table.NOT_RUN)") for c in registered
              if c not in rows}
    lines = ["Contract (`EndpointContract`; \"pass\": run in CI against the real server, and required to pass):", "",
             "| ctype | " + " | ".join(CONTRACT_LABELS[c] for c in CONTRACT_CHECKS) + " |",
             "|---" * (len(CONTRACT_CHECKS) + 1) + "|"]
    for ctype, cls in rows.items():
        lines.append(f"| {ctype} | " + " | ".join(_contract_row(cls, notes)) + " |")
    for ctype, why in sorted(no_kit.items()):
        lines.append(f"| {ctype} | " + " | ".join([notes(why)] * len(CONTRACT_CHECKS)) + " |")
    lines += ["", "Faults (`EndpointFaults` through the kit's `FaultProxy`: r = read, w = write, m = put_many counts nothing "
              "stored; `EndpointRestart`):",
              "", "| ctype | " + " | ".join(FAULT_LABELS.get(f, f) for f in FAULT_COLUMNS) + " |",
              "|---" * (len(FAULT_COLUMNS) + 1) + "|"]
    operations = []
    for ctype, cls in rows.items():
        lines.append(f"| {ctype} | " + " | ".join(_faults_row(cls, notes)) + " |")
        if why := operations_note(cls):
            operations.append(f"- {ctype}: {why}")
    for ctype, why in sorted(no_kit.items()):
        lines.append(f"| {ctype} | " + " | ".join([notes(why)] * len(FAULT_COLUMNS)) + " |")
    lines += ["", "Reasons (n/a):", ""]
    lines += [f"{n}. {reason}" for reason, n in notes.reasons.items()]
    if operations:
        lines += ["", "Operations left out of a fault battery:", "", *operations]
    return "\n".join(lines)


def registered_ctypes() -> list[str]:
    from diana_core.plugins import get_plugin_manager

    return sorted(get_plugin_manager().load_all().endpoints)


def page_with_table(page: str, table: str) -> str:
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    root = Path.cwd()
    table = render(load_classes(root), registered_ctypes())
    if argv[:1] == ["--write"]:
        page = Path(argv[1])
        page.write_text(page_with_table(page.read_text(), table))
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

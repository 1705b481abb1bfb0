"""JsonDir: each Dixel kept as ``<oid>.json`` in a folder (tags and meta, no pixel data)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import define

from diana_core import Dixel, Endpoint, NotFound
from diana_core.ports import refuse_unknown
from diana_core.serialize import dixel_from_json, to_json


@define(kw_only=True)
class JsonDir(Endpoint):
    """Dixels as JSON files under ``path``."""

    name: str = "JsonDir"
    path: str = "."

    def _file(self, item: Any) -> Path:
        return Path(self.path) / f"{item.oid() if isinstance(item, Dixel) else item}.json"

    def check(self) -> bool:
        return Path(self.path).is_dir()

    def put(self, item: Dixel, **kwargs: Any) -> str:
        refuse_unknown(self.name, "put", kwargs)  # a misspelt option is an error naming the known ones
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self._file(item).write_text(to_json(item), encoding="utf-8")
        return item.oid()

    def get(self, item: Any, **kwargs: Any) -> Dixel:
        refuse_unknown(self.name, "get", kwargs)
        try:
            return dixel_from_json(self._file(item).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"{self.name}: no item {item if not isinstance(item, Dixel) else item.oid()}") from None

    def exists(self, item: Any, **kwargs: Any) -> bool:
        refuse_unknown(self.name, "exists", kwargs)
        return self._file(item).is_file()

    def find(self, query: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[Dixel]:
        refuse_unknown(self.name, "find", kwargs)
        wanted = {k: str(v) for k, v in (query or {}).items() if v not in ("", "*", None)}
        for path in sorted(Path(self.path).glob("*.json")):
            dixel = dixel_from_json(path.read_text(encoding="utf-8"))
            if all(str(dixel.tag(k)) == v for k, v in wanted.items()):
                yield dixel

    def delete(self, item: Any, **kwargs: Any) -> bool:
        refuse_unknown(self.name, "delete", kwargs)
        try:
            self._file(item).unlink()
            return True
        except FileNotFoundError:
            return False

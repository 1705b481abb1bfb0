"""Strict keywords by construction (#24 defect 5): every Endpoint subclass's ``put`` and every route handler refuse
a keyword they do not name, in one line naming those they do; a handler that hands keywords on to ``dest.put``
accepts exactly that put's own. An honest in-memory endpoint (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import define, field

from diana_core import ConfigError, Dixel, Endpoint
from diana_core.usecases.routes import put_item, say


@define(kw_only=True)
class Shelf(Endpoint):
    """Keeps what is put, with the one option it knows."""

    name: str = "shelf"
    kept: list[tuple[Any, Any]] = field(factory=list)

    def put(self, item: Any, label: str | None = None, **kwargs: Any) -> int:
        self.kept.append((item, label))
        return len(self.kept)


@define(kw_only=True)
class LabelledShelf(Shelf):
    def put(self, item: Any, label: str | None = None, colour: str = "", **kwargs: Any) -> int:
        return super().put(item, label=f"{colour}:{label}")


def test_an_endpoint_put_refuses_an_unknown_keyword_in_one_line_and_stores_nothing():
    shelf = Shelf()
    with pytest.raises(ConfigError, match=r"^Shelf 'shelf': put\(\): unknown keyword argument lable; known: label$"):
        shelf.put("x", lable="typo")
    assert shelf.kept == [] and shelf.put("x", label="ok") == 1 and shelf.kept == [("x", "ok")]


def test_a_subclass_put_is_strict_with_its_own_keywords_and_super_still_works():
    shelf = LabelledShelf(name="colours")
    assert shelf.put("x", label="a", colour="red") == 1 and shelf.kept == [("x", "red:a")]
    with pytest.raises(ConfigError, match="known: colour, label$"):
        shelf.put("x", anonymizing=True)


def test_a_handler_hands_on_only_what_the_dest_put_knows():
    shelf = Shelf()
    item = Dixel(file=b"data", level="instances")
    assert put_item(item, dest=shelf, label="kept") == 1 and shelf.kept == [(item, "kept")]
    with pytest.raises(ConfigError, match=r"^put_item\(\): unknown keyword argument anonymize; known: dest, label, "
                                          r"level, source$"):
        put_item(item, None, shelf, anonymize=True)
    with pytest.raises(ConfigError, match=r"^say\(\): unknown keyword argument anonymize; known: dest, source, suffix"):
        say("x", anonymize=True)
    assert len(shelf.kept) == 1

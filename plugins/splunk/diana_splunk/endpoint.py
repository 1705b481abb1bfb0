"""Splunk endpoint: Dixels (or plain mappings) in as HEC events, search-job results out as Dixels.

The event of a Dixel is its tags plus ``level`` and ``oid`` (the original DIANA's shape, so dashboards and searches
keyed on it keep working); its time is the item's InstanceCreationDateTime or StudyDateTime (now otherwise).
HEC token and management password come from the service file or the environment (``SPLUNK_HEC_TOKEN``,
``SPLUNK_PASSWORD``); TLS is verified by default (``ca_path`` for a private CA).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from attrs import define, field

from diana_core import BulkResult, Dixel, Endpoint
from diana_core.dicom import DicomLevel, dicom_simplify
from diana_core.errors import AuthenticationError, DianaError, EndpointUnavailable, ValidationError
from diana_core.ports import Progress, refuse_unknown, secret_field, verify_field
from diana_splunk.gateway import SplunkGateway

logger = logging.getLogger(__name__)

TOKEN_ENV = "SPLUNK_HEC_TOKEN"  # noqa: S105 - the name of a variable, not a secret
PASSWORD_ENV = "SPLUNK_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def _event_time(tags: Mapping[str, Any]) -> float:
    for key in ("InstanceCreationDateTime", "SeriesDateTime", "StudyDateTime"):
        value = tags.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                continue
    return datetime.now().timestamp()


@define(kw_only=True)
class Splunk(Endpoint):
    """A Splunk server: ``put`` indexes events through the HEC, ``find`` runs searches, ``check`` reads server info.

    Fields:
        host: Splunk host name.
        protocol: Management API protocol (https).
        port: Management API port (searches, server info).
        path: URL path prefix behind a reverse proxy.
        hec_protocol: HTTP Event Collector protocol (https; the original used http).
        hec_port: HTTP Event Collector port.
        index: Index events are written to and searched in.
        user: Management API user.
        password: Its password (a secret).
        hec_token: HTTP Event Collector token (a secret).
        ca_path: CA bundle for a private CA.
        batch_size: Events per HEC request.
        timeout: Seconds per request.
        poll_interval: Seconds between checks of a running search.
        search_timeout: Seconds a search may run before it is cancelled.
        page_size: Search results per page.
    """

    name: str = "Splunk"
    host: str = "localhost"
    protocol: str = "https"
    port: int = 8089
    path: str | None = None
    hec_protocol: str = "https"
    hec_port: int = 8088
    index: str = "dicom"
    hostname: str | None = None  # the event's "host" (default: this machine's name)
    user: str = "admin"
    password: str | None = secret_field()
    hec_token: str | None = secret_field()
    verify: bool | str = verify_field()  # a bool, "false" text, or a CA bundle path (like ca_path)
    ca_path: str | None = None
    batch_size: int = 100
    timeout: float = 30.0
    poll_interval: float = 0.5
    search_timeout: float = 300.0
    page_size: int = 10000
    _gateway: SplunkGateway | None = field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.batch_size < 1 or self.page_size < 1:
            raise ValidationError(f"Splunk {self.name!r}: batch_size and page_size must be >= 1")

    @property
    def gateway(self) -> SplunkGateway:
        if self._gateway is None:
            prefix = f"/{self.path.strip('/')}" if self.path else ""
            verify: bool | str = self.ca_path if self.ca_path else self.verify
            self._gateway = SplunkGateway(
                name=self.name,
                base_url=f"{self.protocol}://{self.host}:{self.port}{prefix}/",
                hec_url=f"{self.hec_protocol}://{self.host}:{self.hec_port}{prefix}/services/collector/event",
                user=self.user, password=self.password or os.environ.get(PASSWORD_ENV),
                hec_token=self.hec_token or os.environ.get(TOKEN_ENV), verify=verify, timeout=self.timeout,
                poll_interval=self.poll_interval, search_timeout=self.search_timeout, page_size=self.page_size,
            )
        return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None

    # --- port -------------------------------------------------------------------------------------------
    def check(self) -> bool:
        """True when ``services/server/info`` answers; False for an outage; AuthenticationError when refused."""
        try:
            self.gateway.server_info()
        except AuthenticationError:
            raise
        except EndpointUnavailable as exc:
            logger.info("%s", exc)
            return False
        return True

    def event(self, item: Any, index: str | None = None, hostname: str | None = None) -> dict[str, Any]:
        """The HEC event for an item: a Dixel's simplified tags + level + oid, or a plain mapping as it is."""
        if isinstance(item, Dixel):
            body: dict[str, Any] = dicom_simplify(item.tags)
            body["level"] = str(item.level)
            try:
                body["oid"] = item.oid()
            except DianaError:
                body["oid"] = item.meta.get("ID")
        elif isinstance(item, Mapping):
            body = dict(item)
        else:
            raise ValidationError(f"Splunk {self.name!r}: put() takes a Dixel or a mapping, not {type(item).__name__}")
        return {"time": _event_time(body), "host": hostname or self.hostname or socket.gethostname(),
                "sourcetype": "_json", "index": index or self.index, "event": body}

    def put(self, item: Any, index: str | None = None, token: str | None = None, hostname: str | None = None,
            hec_token: str | None = None, **kwargs: Any) -> Any:
        """Index one item as an event (``index``/``token`` override the configured ones); returns its oid or None."""
        refuse_unknown(f"Splunk {self.name!r}", "put", kwargs)
        event = self.event(item, index=index, hostname=hostname)
        self.gateway.put_events([event], token=token or hec_token)
        return event["event"].get("oid")

    def put_many(self, items: Iterable[Any], workers: int = 1, progress: Progress | None = None,
                 index: str | None = None, token: str | None = None) -> BulkResult:
        """Index many items, ``batch_size`` events per HEC request; a refused batch is recorded, the rest go on."""
        done, failed = 0, list[tuple[str, str]]()
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal done
            if not batch:
                return
            try:
                done += self.gateway.put_events(batch, token=token)
            except AuthenticationError:
                raise  # a wrong token fails every batch: stop now
            except DianaError as exc:
                failed.extend((str(e["event"].get("oid") or "?"), str(exc)) for e in batch)
            batch.clear()
            if progress:
                progress(done + len(failed), None)

        for item in items:
            try:
                batch.append(self.event(item, index=index))
            except ValidationError as exc:
                failed.append(("?", str(exc)))
            if len(batch) >= self.batch_size:
                flush()
        flush()
        return BulkResult(done=done, failed=failed)

    def find(self, query: Any = None, index: str | None = None, earliest: str | None = "-1d",  # type: ignore[override]
             latest: str | None = "now", level: Any = None, **kwargs: Any) -> Iterator[Dixel]:
        """Dixels rebuilt from indexed events. ``query``: SPL text, or a mapping of field -> value searched in
        ``index``; ``earliest``/``latest`` are Splunk time modifiers (default: the last day)."""
        refuse_unknown(f"Splunk {self.name!r}", "find", kwargs)
        spl = self.spl(query, index=index, level=level)
        for row in self.gateway.search(spl, earliest=earliest, latest=latest):
            dixel = _row_dixel(row)
            if dixel is not None:
                yield dixel

    def spl(self, query: Any, index: str | None = None, level: Any = None) -> str:
        """The SPL for a query: text is used as given (``search`` prepended unless it starts with a command)."""
        if isinstance(query, str):
            text = query.strip()
            return text if text.startswith(("search ", "|")) else f"search {text}"
        terms = dict(query.tags if isinstance(query, Dixel) else (query or {}))
        if level is not None:
            terms["level"] = str(DicomLevel.from_label(level))
        parts = [f"index={_quote(index or self.index)}"]
        parts += [f"{key}={_quote(value)}" for key, value in terms.items() if value not in ("", None)]
        return "search " + " ".join(parts)


def _quote(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _row_dixel(row: Mapping[str, Any]) -> Dixel | None:
    """A Dixel from a result row's ``_raw`` event JSON (tags; ``level``; ``oid`` -> meta ID); None if not JSON."""
    raw = row.get("_raw")
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        logger.debug("skipping a search result that is not a JSON event")
        return None
    level = data.pop("level", "studies")
    oid = data.pop("oid", None)
    try:
        lvl = DicomLevel.from_label(level)
    except (KeyError, ValueError):
        lvl = DicomLevel.STUDIES
    meta = {"ID": oid} if oid else {}
    return Dixel(meta=meta, tags=data, level=lvl)

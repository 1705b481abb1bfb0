"""Montage endpoint: report-search results as study-level Dixels (a worklist source for the Collector).

``find`` streams Dixels page by page; ``get_meta`` resolves Montage CPT ids to CPT codes and body parts (cached in
the gateway); ``find_windows`` splits a long date range into small queries. Read-only: put/delete are unsupported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from attrs import define, field

from diana_core import Dixel, Endpoint
from diana_core.errors import (
    AuthenticationError,
    ConfigError,
    DianaError,
    EndpointUnavailable,
    NotFound,
    ValidationError,
)
from diana_core.ports import refuse_unknown, secret_field, verify_field
from diana_core.report import RadiologyReport
from diana_montage.gateway import MontageGateway

logger = logging.getLogger(__name__)


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD): {value!r}") from None


def date_windows(start: date | datetime | str, end: date | datetime | str,
                 step: timedelta = timedelta(days=1)) -> Iterator[tuple[date, date]]:
    """Consecutive inclusive (first, last) day windows of ``step`` covering start..end."""
    first, last = _day(start), _day(end)
    if last < first:
        raise ValidationError(f"date window ends ({last}) before it starts ({first})")
    days = max(1, step.days)
    while first <= last:
        stop = min(last, first + timedelta(days=days - 1))
        yield first, stop
        first = stop + timedelta(days=1)


def window_query(start: date | datetime | str, end: date | datetime | str, **terms: Any) -> dict[str, Any]:
    """A Montage search query for a date range: ``start_date``/``end_date`` as YYYY-MM-DD plus other terms."""
    return {**terms, "start_date": _day(start).isoformat(), "end_date": _day(end).isoformat()}


def _dicom_day(text: str) -> str:
    text = text.strip()
    try:
        return (datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else date.fromisoformat(text)).isoformat()
    except ValueError:
        raise ValidationError(f"StudyDate {text!r}: use YYYYMMDD or YYYYMMDD-YYYYMMDD") from None


def dicom_terms(query: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Montage search params from a query that may use the DICOM keywords other endpoints take:
    ``AccessionNumber`` -> ``q`` (returned too, to keep exact matches only), ``StudyDate`` "YYYYMMDD" or a range
    "YYYYMMDD-YYYYMMDD" -> ``start_date``/``end_date``."""
    params = dict(query)
    accession = params.pop("AccessionNumber", None)
    if accession is not None:
        accession = str(accession)
        params["q"] = accession
    study_date = params.pop("StudyDate", None)
    if study_date:
        first, dash, last = str(study_date).partition("-")
        params["start_date"] = _dicom_day(first) if first else None  # "-YYYYMMDD": open start
        params["end_date"] = _dicom_day(last) if last else (None if dash else params["start_date"])
    return params, accession


@define(kw_only=True)
class Montage(Endpoint):
    """A Montage server (report search); user and password must come from the service file (no defaults).

    Fields:
        host: Montage server host name.
        port: HTTPS port.
        path: API path prefix.
        user: Montage user (no default).
        password: Its password (a secret: from ${ENV}).
        protocol: https (or http for a test server).
        verify: Verify the server's TLS certificate.
        ca_bundle: CA bundle for a private CA.
        timeout: Seconds per request.
        page_size: Search results per page.
        retries: Retries of searches on transient errors.
        index: Montage index to search (rad: radiology reports).
        clean_reports: Turn Montage's HTML report text into plain text.
    """

    name: str = "Montage"
    host: str = "localhost"
    port: int = 443
    path: str = "api/v1"
    user: str | None = None
    password: str | None = secret_field()
    protocol: str = "https"
    verify: bool | str = verify_field()
    ca_bundle: str | None = None
    timeout: float = 30.0
    page_size: int = 200
    retries: int = 3
    index: str = "rad"
    clean_reports: bool = True
    _gateway: MontageGateway | None = field(default=None, init=False, repr=False)

    @property
    def gateway(self) -> MontageGateway:
        if self._gateway is None:
            self._gateway = MontageGateway(
                name=self.name, host=self.host, port=self.port, path=self.path, user=self.user,
                password=self.password, protocol=self.protocol, verify=self.verify, ca_bundle=self.ca_bundle,
                timeout=self.timeout, page_size=self.page_size, retries=self.retries,
            )
        return self._gateway

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not): the search API answers; connection refused, DNS, TLS, refused credentials."""
        try:
            self.gateway.get("index/")
        except NotFound:
            pass
        except AuthenticationError:
            return False, f"credentials refused for user {self.user!r}"
        except EndpointUnavailable as exc:
            return False, exc.reason or str(exc)
        except ConfigError as exc:
            return False, str(exc)
        return True, ""

    def check(self) -> bool:
        """True when the search API answers (GET index/); AuthenticationError when it refuses us."""
        try:
            self.gateway.get("index/")
        except NotFound:
            return True  # the server answered; it just has no index listing
        except AuthenticationError:
            raise
        except EndpointUnavailable as exc:
            logger.info("%s", exc)
            return False
        return True

    def find(  # type: ignore[override]  # a stream (generator), not a list: results can be huge
        self, query: Mapping[str, Any] | None = None, index: str | None = None, ignore_errs: bool = True,
        get_meta: bool = False, max_results: int | None = None, **kwargs: Any,
    ) -> Iterator[Dixel]:
        """Stream study Dixels matching a Montage query (q, start_date, end_date, modality, exam_type, ...).

        With ``ignore_errs`` a result that cannot be converted or resolved is logged and skipped, else raised;
        outages and refused credentials always raise.
        """
        refuse_unknown(f"Montage {self.name!r}", "find", kwargs)
        params, accession = dicom_terms(query or {})
        results = self.gateway.find(params, index=index or self.index, max_results=max_results)
        for n, data in enumerate(results):
            if accession is not None and str(data.get("accession_number")) != accession:
                continue  # q is a full-text search: keep the exact accession only
            try:
                dixel = Dixel.from_montage_json(data)
                if self.clean_reports and dixel.report:
                    dixel.report = RadiologyReport(self.gateway.clean_text(str(dixel.report)) or "")
                if get_meta:
                    self.get_meta(dixel)
            except EndpointUnavailable:
                raise
            except (DianaError, KeyError, TypeError, ValueError, AttributeError) as exc:
                if not ignore_errs:
                    raise
                logger.warning("Montage %r: skipped result %d: %s", self.name, n, type(exc).__name__)
                continue
            yield dixel

    def find_windows(self, start: date | datetime | str, end: date | datetime | str,
                     step: timedelta = timedelta(days=1), query: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> Iterator[Dixel]:
        """``find`` over consecutive date windows of ``step`` between start and end (inclusive)."""
        for first, last in date_windows(start, end, step):
            yield from self.find(window_query(first, last, **dict(query or {})), **kwargs)

    def get_meta(self, dixel: Dixel) -> Dixel:
        """Fill meta CPTCodes and BodyParts from the Dixel's MontageCPTCodes (cached lookups); returns it."""
        refs = dixel.meta.get("MontageCPTCodes") or []
        dixel.meta["CPTCodes"] = self.gateway.lookup_cpts(refs)
        dixel.meta["BodyParts"] = self.gateway.lookup_body_part(refs)
        return dixel

    def get(self, item: Any, **kwargs: Any) -> Dixel:
        """The study with this accession number (a search by ``q``); NotFound when no result matches exactly."""
        refuse_unknown(f"Montage {self.name!r}", "get", kwargs)
        accession = item.sid() if isinstance(item, Dixel) else str(item)
        for dixel in self.find({"q": accession}, ignore_errs=True, max_results=50):
            if dixel.sid() == accession:
                return dixel
        raise NotFound(f"Montage {self.name!r}: no study with the requested accession number")

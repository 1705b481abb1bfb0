"""SplunkGateway: the few Splunk REST calls Diana needs, over one requests ``Session`` per API.

- HTTP Event Collector: ``POST /services/collector/event`` with ``Authorization: Splunk <token>``; the body is one
  or more JSON event objects back to back (Splunk's documented batch form). Answers ``{"text", "code"}``.
- Search: ``POST /services/search/jobs`` (``output_mode=json`` -> ``{"sid"}``), poll ``GET
  /services/search/jobs/{sid}`` until ``isDone``, then page ``GET /services/search/jobs/{sid}/results``
  (``count``/``offset``) — basic auth on the management port.
- Health: ``GET /services/server/info``.

Every requests/HTTP failure is translated in one place (``_errors``) into Diana's typed errors naming the Splunk
service and the operation, never the token or the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from diana_core.bounded import read_bounded
from diana_core.errors import (
    AuthenticationError,
    ConfigError,
    DianaError,
    EndpointUnavailable,
    JobError,
    ValidationError,
)

logger = logging.getLogger(__name__)

# HEC status codes (Splunk docs, "Troubleshoot HTTP Event Collector"): which are the caller's fault
MAX_ANSWER = 256 * 2**20  # a search page or a HEC answer larger than this is refused, not read into memory
HEC_AUTH_CODES = {1, 2, 3, 4}  # token disabled / required / bad authorization / invalid token
HEC_BUSY_CODES = {8, 9}  # internal server error / server busy


class SplunkError(DianaError):
    """Splunk answered with an error; ``code`` is the HEC status code (or the HTTP status for REST calls)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SplunkGateway:
    """Plain Splunk REST client; ``verify`` is True, False or a CA bundle path (requests semantics)."""

    def __init__(self, name: str, base_url: str, hec_url: str, user: str | None, password: str | None,
                 hec_token: str | None, verify: bool | str = True, timeout: float = 30.0,
                 poll_interval: float = 0.5, search_timeout: float = 300.0, page_size: int = 10000) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/") + "/"
        self.hec_url = hec_url
        self.hec_token = hec_token
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.search_timeout = search_timeout
        self.page_size = page_size
        self.verify = verify  # passed on every request: a session-level value loses to $REQUESTS_CA_BUNDLE
        self.session = _session(verify)  # management API: basic auth
        if user is not None and password is not None:
            self.session.auth = (user, password)
        self.hec = _session(verify)  # HEC: token header only (a session auth would overwrite it)

    def close(self) -> None:
        self.session.close()
        self.hec.close()

    # --- the one translator ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate requests exceptions into typed Diana errors naming this service and ``what``."""
        where = f"Splunk {self.name!r}"
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise EndpointUnavailable(f"{where}: TLS verification failed ({what}); give ca_path for a private CA"
                                      ) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise EndpointUnavailable(f"{where} is unavailable ({what}): {type(exc).__name__}") from exc
        except requests.exceptions.RequestException as exc:
            raise EndpointUnavailable(f"{where}: {what} failed: {type(exc).__name__}") from exc

    def _request(self, session: requests.Session, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """One request, translated; the answer read whole only up to MAX_ANSWER; a 404 on Splunk's fixed paths
        means the URL is wrong; 429/503 mean busy (transient)."""
        where = f"Splunk {self.name!r}"
        with self._errors(what):
            resp = session.request(method, url, timeout=self.timeout, verify=self.verify, stream=True, **kwargs)
            read_bounded(resp, where, what, MAX_ANSWER)
        if resp.status_code == 404 and "/jobs/" not in url:
            raise ConfigError(f"{where}: HTTP 404 on {what}: wrong URL (check host, port, hec_port and path)")
        if resp.status_code in (429, 503):
            raise EndpointUnavailable(f"{where} is busy ({what}): HTTP {resp.status_code}")
        return resp

    def _check_rest(self, resp: requests.Response, what: str) -> Any:
        where = f"Splunk {self.name!r}"
        if resp.status_code in (401, 403):
            raise AuthenticationError(f"{where} refused our credentials ({what}): HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise SplunkError(f"{where}: {what} failed: HTTP {resp.status_code} {_messages(resp)}",
                              code=resp.status_code)
        try:
            return resp.json()
        except ValueError as exc:
            raise SplunkError(f"{where}: {what} answered something that is not JSON", code=resp.status_code) from exc

    # --- HEC ------------------------------------------------------------------------------------------------
    def put_events(self, events: Iterable[Mapping[str, Any]], token: str | None = None) -> int:
        """POST events in one HEC request (concatenated JSON objects); returns how many were sent."""
        token = token or self.hec_token
        if not token:
            raise AuthenticationError(f"Splunk {self.name!r}: no HEC token (set hec_token or $SPLUNK_HEC_TOKEN)")
        batch = list(events)
        if not batch:
            return 0
        body = "\n".join(json.dumps(e, default=_json_default, separators=(",", ":")) for e in batch)
        what = f"HEC put of {len(batch)} events"
        resp = self._request(self.hec, "POST", self.hec_url, what, data=body.encode("utf-8"),
                             headers={"Authorization": f"Splunk {token}", "Content-Type": "application/json"})
        self._check_hec(resp, what)
        return len(batch)

    def _check_hec(self, resp: requests.Response, what: str) -> None:
        where = f"Splunk {self.name!r}"
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        code = answer.get("code") if isinstance(answer, dict) else None
        text = answer.get("text", "") if isinstance(answer, dict) else ""
        if resp.status_code == 200 and code == 0:  # HEC answers {"text": "Success", "code": 0}: anything else is
            return  # no proof the events were indexed (a login page, a proxy's answer)
        if resp.status_code in (401, 403) or code in HEC_AUTH_CODES:
            raise AuthenticationError(f"{where} refused the HEC token ({what}): {text or resp.status_code}")
        if resp.status_code == 503 or code in HEC_BUSY_CODES:
            raise EndpointUnavailable(f"{where} is busy ({what}): {text or resp.status_code}")
        if code is None:
            kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise SplunkError(f"{where}: {what}: HTTP {resp.status_code} with {kind}, not a HEC answer; not counted "
                              "as indexed")
        raise SplunkError(f"{where}: {what} failed: HEC code {code} {text}".rstrip(), code=code)

    # --- search ---------------------------------------------------------------------------------------------
    def search(self, spl: str, earliest: str | None = None, latest: str | None = None) -> Iterator[dict[str, Any]]:
        """Run a search job, wait for it, and yield its result rows page by page."""
        data = {"search": spl, "output_mode": "json"}
        if earliest:
            data["earliest_time"] = earliest
        if latest:
            data["latest_time"] = latest
        resp = self._request(self.session, "POST", self.base_url + "services/search/jobs", "create search job",
                             data=data)
        sid = self._check_rest(resp, "create search job").get("sid")
        if not sid:
            raise SplunkError(f"Splunk {self.name!r}: the search job was not created (no sid)")
        total = self._wait(sid)
        offset = 0
        while offset < total:
            resp = self._request(self.session, "GET", self.base_url + f"services/search/jobs/{sid}/results",
                                 f"read results of job {sid}", params={"output_mode": "json",
                                                                        "count": str(self.page_size),
                                                                        "offset": str(offset)})
            rows = self._check_rest(resp, f"read results of job {sid}").get("results", [])
            if not rows:
                break
            yield from rows
            offset += len(rows)

    def _wait(self, sid: str) -> int:
        """Poll the job until it is done; its result count. JobError when it fails or takes too long."""
        deadline = time.monotonic() + self.search_timeout
        while True:
            resp = self._request(self.session, "GET", self.base_url + f"services/search/jobs/{sid}",
                                 f"poll search job {sid}", params={"output_mode": "json"})
            content = self._check_rest(resp, f"poll search job {sid}")["entry"][0]["content"]
            state = content.get("dispatchState", "")
            if state == "FAILED" or content.get("isFailed"):
                raise JobError(f"Splunk {self.name!r}: search job {sid} failed: {_messages(resp)}")
            if content.get("isDone"):
                return int(content.get("resultCount", 0))
            if time.monotonic() > deadline:
                raise JobError(f"Splunk {self.name!r}: search job {sid} not done after {self.search_timeout} s "
                               f"({state})")
            time.sleep(self.poll_interval)  # the documented way: poll the job's state

    # --- health -----------------------------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """``services/server/info``: version and server name."""
        resp = self._request(self.session, "GET", self.base_url + "services/server/info", "server info",
                             params={"output_mode": "json"})
        entries = self._check_rest(resp, "server info").get("entry") or [{}]
        return dict(entries[0].get("content", {}))


def _session(verify: bool | str) -> requests.Session:
    """A session that verifies TLS as asked; idempotent GETs retried on connection trouble and 502/503/504,
    POSTs (HEC events, job creation) never retried automatically."""
    session = requests.Session()
    session.verify = verify
    retry = Retry(total=3, connect=3, read=2, status=2, other=0, backoff_factor=0.2,
                  status_forcelist=(502, 503, 504), allowed_methods={"GET"}, raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _messages(resp: requests.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        msgs = data.get("messages") or []
        return "; ".join(str(m.get("text", "")) for m in msgs if isinstance(m, dict))[:200]
    return ""


def _json_default(value: Any) -> Any:
    from datetime import date, datetime, time, timedelta

    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        raise ValidationError("binary values are not indexed")
    return str(value)

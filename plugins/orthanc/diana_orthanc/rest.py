"""The HTTP plumbing of the Orthanc gateway: sessions, retries and the translation of HTTP failures.

One ``requests.Session`` per gateway, urllib3 ``Retry`` with backoff on idempotent methods (connect errors are
retried for every method: nothing was sent), timeouts, TLS verification on. Uploads (POST /instances) go through a
second session whose ``Retry`` also covers POST, 5xx and dropped connections: storing an instance twice is harmless
in Orthanc ("AlreadyStored"), so an upload is retried with backoff through a server restart. HTTP failures become
typed Diana errors: unreachable -> ``EndpointUnavailable``, 401/403 -> ``AuthenticationError``, 404 -> ``NotFound``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from diana_core.bounded import read_bounded
from diana_core.connectivity import why_unreachable
from diana_core.delivery import attempt_budget
from diana_core.errors import (
    AuthenticationError,
    ConfigError,
    DianaError,
    EndpointUnavailable,
    NotFound,
)
from diana_orthanc.prepared import PreparedRequests

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
CHUNK = 1 << 20
MAX_RESPONSE = 1 << 30  # an answer read into memory (JSON, one instance) larger than this is refused


class OrthancRequestError(DianaError):
    """Orthanc answered with an error other than 401/403/404 (the message carries Orthanc's own text)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _environment(base_url: str, verify: bool | str) -> tuple[dict[str, str], bool | str, tuple[str, str] | None]:
    """(proxies, verify, netrc credentials) for base_url from the environment, read once per gateway: requests
    re-reads every environment variable for the proxies of each request (two passes, ~0.3 ms per upload
    here). Same rules as requests: $NO_PROXY, $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE only when verify is True."""
    from requests.utils import get_environ_proxies, get_netrc_auth

    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return get_environ_proxies(base_url), verify, get_netrc_auth(base_url)


class OrthancRest:
    """HTTP to one Orthanc server: sessions, retries, bounded answers, and failures as typed errors naming the
    server and the resource. ``OrthancGateway`` adds the REST calls."""

    def __init__(self, protocol: str = "http", host: str = "localhost", port: int = 8042, path: str | None = None,
                 name: str = "OrthancGateway", user: str | None = None, password: str | None = None,
                 aet: str = "ORTHANC", verify: bool | str = True, timeout: float = 30.0, pool_size: int = 10,
                 retries: int = 3, backoff: float = 0.2, upload_retries: int = 8) -> None:
        self.name, self.aet, self.timeout, self.host = name, aet, timeout, host
        base = f"{protocol}://{host}:{port}"
        self.base_url = f"{base}/{path.strip('/')}" if path else base
        self.user = user
        self.retries, self.backoff, self.upload_retries = retries, backoff, upload_retries
        self.max_response = MAX_RESPONSE
        self._base_ok = False  # /system answered once: a later 404 is an absent item, not a wrong URL
        self.session = requests.Session()
        self.upload_session = requests.Session()
        self.once_session = requests.Session()  # no retries: inside diana_core.delivery.single_attempt (the watcher)
        proxies, verify, netrc = _environment(self.base_url, verify)
        for session in (self.session, self.upload_session, self.once_session):
            session.trust_env = False  # the environment was read once, above
            session.proxies.update(proxies)
            session.verify = verify
            if user is not None:
                session.auth = (user, password or "")
            elif netrc is not None:
                session.auth = netrc
        self._prepared = PreparedRequests()
        self.pool_size = 0
        self.resize_pool(pool_size)

    # --- plumbing ------------------------------------------------------------------------------
    def resize_pool(self, pool_size: int) -> None:
        """Mount an adapter whose connection pool holds ``pool_size`` connections (match the worker count)."""
        retry = Retry(total=self.retries, connect=self.retries, read=self.retries, status=self.retries,
                      backoff_factor=self.backoff, status_forcelist=(502, 503, 504), allowed_methods=IDEMPOTENT,
                      raise_on_status=False, respect_retry_after_header=True)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # ~20 s of backoff (0, 0.4, 0.8, 1.6, 3.2, then 5 s apart): long enough for an Orthanc restart
        upload = Retry(total=self.upload_retries, connect=self.upload_retries, read=self.upload_retries,
                       status=self.upload_retries, other=self.upload_retries, backoff_factor=self.backoff,
                       backoff_max=5.0, status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"POST"}),
                       raise_on_status=False, respect_retry_after_header=True)
        uploads = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=upload)
        self.upload_session.mount("http://", uploads)
        self.upload_session.mount("https://", uploads)
        once = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self.once_session.mount("http://", once)
        self.once_session.mount("https://", once)
        self.pool_size = pool_size

    def close(self) -> None:
        self.session.close()
        self.upload_session.close()
        self.once_session.close()

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    def _send(self, session: requests.Session, method: str, route: str, idempotent: bool, streamed: bool,
              what: str, **kwargs: Any) -> requests.Response:
        """One request; an idempotent one whose connection broke after urllib3's retries (a server killed while it
        answered: ChunkedEncodingError, a reset while reading) is sent again up to 3 times (0.5, 1, 2 s apart)."""
        for delay in (*(0.5, 1.0, 2.0)[: self.retries], None):
            try:
                resp = self._prepared.send(session, method, self.url(route), kwargs)  # uploads: prepared once
                if not streamed:
                    self._read_bounded(resp, method, what)
                return resp
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                if not idempotent or delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def request(self, method: str, route: str, *, what: str | None = None, idempotent: bool = False,
                **kwargs: Any) -> requests.Response:
        """Send one request; map failures to typed errors naming this server and ``what`` (default: the route).
        ``idempotent`` marks a POST safe to repeat (an upload): it is retried like a GET."""
        what = what or route.split("?")[0]
        kwargs.setdefault("timeout", self.timeout)
        streamed = bool(kwargs.pop("stream", False))
        session = self.upload_session if idempotent else self.session
        budget = attempt_budget()
        if budget is not None:  # the caller retries on its own schedule: one try, connecting within the budget
            session, resend = self.once_session, False
            timeout = kwargs["timeout"]
            read = timeout[1] if isinstance(timeout, tuple) else timeout
            kwargs["timeout"] = (min(budget, read or budget), read)
        else:
            resend = idempotent
        kwargs.setdefault("verify", self.session.verify)
        try:
            resp = self._send(session, method, route, resend, streamed, what, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            why = why_unreachable(exc, self.host)  # e.g. "connection refused", "DNS lookup of pacs failed", TLS
            raise EndpointUnavailable(f"{self.name} at {self.base_url} is unreachable: {why} ({type(exc).__name__}) "
                                      f"during {method} {what}", reason=why) from None
        except requests.RequestException as exc:
            raise EndpointUnavailable(f"{self.name} at {self.base_url}: {type(exc).__name__} during {method} {what}") from None
        if resp.status_code < 400:
            return resp
        status = resp.status_code
        if status in (401, 403):
            raise AuthenticationError(f"{self.name} at {self.base_url} refused the credentials of user "
                                      f"{self.user!r} (HTTP {status})")
        if status == 404:
            if not self._base_ok and route != "system":
                self._check_base_url(method, what)
            raise NotFound(f"{self.name}: {what} not found")
        detail = self._detail(resp)
        if status == 429 or (status >= 500 and (method in IDEMPOTENT or idempotent)):  # 429: busy, whatever the method
            raise EndpointUnavailable(f"{self.name} at {self.base_url}: HTTP {status} on {method} {what}{detail}")
        raise OrthancRequestError(f"{self.name}: HTTP {status} on {method} {what}{detail}", status)

    def _read_bounded(self, resp: requests.Response, method: str, what: str) -> None:
        """Read the body into ``resp`` unless it exceeds ``max_response`` (announced or streamed): a runaway or
        hostile answer must not exhaust memory."""
        read_bounded(resp, f"{self.name} at {self.base_url}", f"{method} {what}", self.max_response)

    def _check_base_url(self, method: str, what: str) -> None:
        """A 404: is it the item, or is nothing Orthanc at this URL? (GET /system answers on every Orthanc.)"""
        try:
            self.request("GET", "system")
        except NotFound:
            raise ConfigError(f"{self.name}: {self.base_url} answers 404 even on /system ({method} {what}): wrong URL "
                              "(check host, port and path)") from None
        self._base_ok = True

    @staticmethod
    def _detail(resp: requests.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return ""
        if isinstance(body, Mapping):
            parts = [str(body[k]) for k in ("Message", "Details", "OrthancError") if body.get(k)]
            return f": {'; '.join(parts)}" if parts else ""
        return ""

    def _json(self, method: str, route: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["data"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        resp = self.request(method, route, **kwargs)
        if not resp.content:
            return None
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind == "text/html":
            raise EndpointUnavailable(f"{self.name} at {self.base_url} answered an HTML page to {method} "
                                      f"{kwargs.get('what') or route.split('?')[0]}, not Orthanc's JSON: a login page "
                                      "or a proxy in the way?")
        try:
            return resp.json()
        except ValueError:
            if kind.endswith("json"):
                raise EndpointUnavailable(f"{self.name} at {self.base_url}: malformed JSON in the answer to {method} "
                                          f"{kwargs.get('what') or route.split('?')[0]}") from None
            return resp.text

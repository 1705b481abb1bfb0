"""MontageGateway: a small REST client for Montage (radiology report search), with no Dixel or endpoint logic.

There is no Montage SDK for Python. This client searches an index page by page (offset/limit, streamed), and
resolves Montage's CPT code ids to CPT codes and body parts (walking the anatomy tree), caching both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from diana_core.bounded import read_bounded
from diana_core.errors import AuthenticationError, ConfigError, DianaError, EndpointUnavailable, NotFound
from diana_core.report import plain_text

MAX_ANSWER = 256 * 2**20  # a search page larger than this is refused, not read into memory

logger = logging.getLogger(__name__)


def resource_id(ref: Any) -> str:
    """An id from an int, a string id, a mapping with "id", or a resource URI like "/api/v1/anatomy/12/"."""
    if isinstance(ref, Mapping):
        ref = ref.get("id", ref.get("resource_uri"))
    parts = [p for p in str(ref).split("/") if p]
    if not parts:
        raise ValueError(f"not a Montage resource reference: {ref!r}")
    return parts[-1]


@define(kw_only=True)
class MontageGateway:
    """REST client for one Montage server (requests Session with retries on GET; TLS verified)."""

    host: str = "localhost"
    port: int = 443
    path: str = "api/v1"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "https"
    verify: bool | str = True
    ca_bundle: str | None = None
    timeout: float = 30.0
    page_size: int = 200
    retries: int = 3
    name: str = "MontageGateway"
    _session: Any = field(default=None, init=False, repr=False)
    _cpt_cache: dict[str, dict[str, Any]] = field(factory=dict, init=False, repr=False)
    _anatomy_cache: dict[str, dict[str, Any]] = field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    @property
    def base_url(self) -> str:
        path = self.path.strip("/")
        return f"{self.protocol}://{self.host}:{self.port}/" + (f"{path}/" if path else "")

    def session(self) -> Any:
        """The Session (built on first use); ConfigError when user or password is not configured."""
        if self._session is None:
            if not self.user or not self.password:
                missing = "user" if not self.user else "password"
                raise ConfigError(f"Montage {self.name!r}: no {missing} configured (set it in the service file "
                                  "or through ${ENV} expansion; there is no default)")
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            session = requests.Session()
            session.auth = (self.user, self.password)
            session.verify = self.ca_bundle or self.verify
            retry = Retry(total=self.retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504),
                          allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def get(self, resource: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET base_url + resource as JSON; typed errors naming this server and the resource (never the query)."""
        import requests

        url = self.base_url + resource
        where = f"Montage {self.name!r} ({self.host})"
        try:
            resp = self.session().get(url, params=params, timeout=self.timeout, stream=True,
                                      verify=self.ca_bundle or self.verify)  # REQUESTS_CA_BUNDLE would win
            resp._content = self._bounded(resp, where, resource)
        except requests.RequestException as exc:
            from diana_core.connectivity import why_unreachable

            why = why_unreachable(exc, self.host)
            raise EndpointUnavailable(f"{where} is unavailable ({resource}): {why}", reason=why) from exc
        if resp.status_code in (401, 403):
            raise AuthenticationError(f"{where} refused our credentials (HTTP {resp.status_code}, {resource})")
        if resp.status_code == 404:
            raise NotFound(f"{where}: no {resource}")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise EndpointUnavailable(f"{where}: HTTP {resp.status_code} for {resource}")
        if resp.status_code >= 400:
            raise DianaError(f"{where}: HTTP {resp.status_code} for {resource}")
        try:
            return resp.json()
        except ValueError as exc:
            raise EndpointUnavailable(f"{where}: {resource} did not answer JSON") from exc

    @staticmethod
    def _bounded(resp: Any, where: str, resource: str) -> bytes:
        """The body, refused past MAX_ANSWER (announced or streamed): a runaway answer must not exhaust memory."""
        return read_bounded(resp, where, resource, MAX_ANSWER)

    def find(self, query: Mapping[str, Any], index: str = "rad", max_results: int | None = None) -> Iterator[dict]:
        """Stream search results page by page (offset/limit); ``max_results`` caps how many are read."""
        params = {k: v for k, v in query.items() if v is not None and k not in ("offset", "limit", "format")}
        resource = f"index/{index}/search/"
        offset = 0
        while True:
            limit = self.page_size if max_results is None else min(self.page_size, max_results - offset)
            if limit <= 0:
                return
            try:
                page = self.get(resource, params={**params, "format": "json", "offset": offset, "limit": limit})
            except NotFound:  # the search route itself is missing: not "no such study"
                raise ConfigError(f"Montage {self.name!r} ({self.host}): HTTP 404 on the search of index {index!r}: "
                                  "wrong URL or index (check host, port, path and index)") from None
            objects = page.get("objects") or []
            total = int((page.get("meta") or {}).get("total_count", 0))
            logger.debug("montage %s: page at %d, %d of %d", index, offset, len(objects), total)
            yield from objects
            offset += len(objects)
            if not objects or offset >= total:
                return

    def _cached(self, cache: dict[str, Any], route: str, ref: Any) -> dict[str, Any]:
        """GET ``{route}/{id}/`` once per id (thread-safe cache)."""
        key = resource_id(ref)
        with self._lock:
            cached = cache.get(key)
        if cached is None:
            cached = self.get(f"{route}/{key}/")
            with self._lock:
                cache[key] = cached
        return cached

    def _cpt(self, ref: Any) -> dict[str, Any]:
        return self._cached(self._cpt_cache, "cptcode", ref)

    def _anatomy(self, ref: Any) -> dict[str, Any]:
        return self._cached(self._anatomy_cache, "anatomy", ref)

    def lookup_cpts(self, montage_cpts: list[Any]) -> list[str]:
        """Real CPT codes for Montage CPT ids (cached per id)."""
        return [str(self._cpt(ref)["code"]) for ref in montage_cpts]

    def lookup_body_part(self, montage_cpts: list[Any]) -> list[str]:
        """Body parts (root anatomy labels, parents walked, deduplicated) for Montage CPT ids (cached)."""
        labels: list[str] = []
        for ref in montage_cpts:
            for anatomy in self._cpt(ref).get("anatomies") or []:
                node, seen = self._anatomy(anatomy), set()
                while node.get("parent") and resource_id(node["parent"]) not in seen:
                    seen.add(resource_id(node["parent"]))
                    node = self._anatomy(node["parent"])
                label = node.get("label")
                if label and label not in labels:
                    labels.append(label)
        return labels

    @classmethod
    def clean_text(cls, text: str | None) -> str | None:
        """Clean up text from the RIH report templates: markup dropped, sections on their own lines
        (``diana_core.report.plain_text``)."""
        return plain_text(text)

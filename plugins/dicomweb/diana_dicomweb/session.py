"""The HTTP session of a DicomWeb endpoint: pooled, retried only where resending is safe, and with ``verify``
honoured on every request (requests lets $REQUESTS_CA_BUNDLE override ``Session.verify``, psf/requests#3829)."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from diana_core.delivery import attempt_budget


class VerifyingSession(requests.Session):
    """A Session whose ``verify`` (bool or CA path) applies to each request unless the call gives its own; inside
    ``diana_core.delivery.single_attempt`` (the watcher) one try, connecting within the budget, no retries."""

    once: HTTPAdapter | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("verify", self.verify)
        budget = attempt_budget()
        if budget is not None:
            read = kwargs.get("timeout")
            read = read[1] if isinstance(read, tuple) else read
            kwargs["timeout"] = (min(budget, read) if read else budget, read)
        return super().request(method, url, *args, **kwargs)

    def get_adapter(self, url: str) -> Any:
        if self.once is not None and attempt_budget() is not None:
            return self.once
        return super().get_adapter(url)


def make_session(verify: bool | str, retries: int, pool: int) -> VerifyingSession:
    """A session retrying 429/503 (the server did not process the request: safe even for a STOW) ``retries`` times."""
    session = VerifyingSession()
    retry = Retry(total=retries, connect=retries, read=0, status=retries, backoff_factor=0.3, allowed_methods=None,
                  status_forcelist=(429, 503), raise_on_status=False, respect_retry_after_header=True)
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.once = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=0)
    session.verify = verify
    return session

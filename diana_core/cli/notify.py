"""``--notify URL``: post a JSON summary to a webhook when a job ends or fails, or the dead-letter file grows.

Payloads carry counts, the command and the job/folder name, never identifiers or PHI. ``--notify-format text`` sends
``{"text": ...}``, which Slack and Microsoft Teams incoming webhooks accept; ``json`` (default) sends the whole
summary plus that text. Any other URL (``mailto://``, ``msteams://``, ``slack://``, ``matrix://`` ...) goes through
Apprise (the ``apprise`` extra) as a title and that text. A notification that fails is logged (warning) and never
stops the job.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from attrs import define, field

from diana_core.errors import ConfigError
from diana_core.serialize import iso_time

logger = logging.getLogger(__name__)

EVENTS = ("job_finished", "job_failed", "dead_letters", "watch_stopped")


@define
class Notifier:
    """Posts to ``url`` (nothing when url is None); ``min_interval`` throttles repeated dead-letter posts."""

    url: str | None = None
    fmt: str = "json"
    timeout: float = 10.0
    min_interval: float = 60.0
    _last: dict[str, float] = field(factory=dict, init=False)
    _apprise: Any = field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.url and not _is_webhook(self.url):
            self._apprise = _apprise_for(self.url)  # refused now, not when the job ends

    def send(self, event: str, command: str, counts: Mapping[str, Any], name: str | None = None,
             throttle: bool = False) -> bool:
        """Post one notification; returns True when the webhook accepted it (2xx)."""
        if not self.url:
            return False
        now = time.monotonic()
        if throttle and now - self._last.get(event, -1e9) < self.min_interval:
            return False
        self._last[event] = now
        text = f"diana {command}{f' {name}' if name else ''}: {event.replace('_', ' ')} — " + ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
        if self._apprise is not None:
            return self._send_apprise(f"diana {command}: {event.replace('_', ' ')}", text)
        payload: dict[str, Any] = ({"text": text} if self.fmt == "text" else
                                   {"event": event, "command": command, "name": name, "counts": dict(counts),
                                    "time": iso_time(), "text": text})
        request = urllib.request.Request(  # noqa: S310 - an http(s) URL: others went to Apprise above
            self.url, data=json.dumps(payload).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "diana"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - the user's webhook
                ok = 200 <= answer.status < 300
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            logger.warning("notify: webhook %s failed: %s", _host(self.url), getattr(exc, "reason", exc))
            return False
        if not ok:
            logger.warning("notify: webhook %s answered HTTP %s", _host(self.url), answer.status)
        return ok

    def _send_apprise(self, title: str, text: str) -> bool:
        try:
            ok = bool(self._apprise.notify(title=title, body=text))
        except Exception as exc:  # noqa: BLE001 - a notification service's failure never stops the job
            logger.warning("notify: %s failed: %s", _scheme(self.url), type(exc).__name__)
            return False
        if not ok:
            logger.warning("notify: %s notification was not delivered (see the apprise log)", _scheme(self.url))
        return ok


def _is_webhook(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def _scheme(url: str | None) -> str:
    """The URL's scheme only (the rest often holds a password or token)."""
    return (url or "").partition("://")[0].lower() + "://"


def _apprise_for(url: str) -> Any:
    """An Apprise object holding ``url``; ConfigError when Apprise is missing or does not know the URL."""
    try:
        import apprise
    except ImportError:
        raise ConfigError(f"--notify: {_scheme(url)} URLs need Apprise: pip install 'diana-dicom[apprise]' "
                          "(or give an http(s) webhook)") from None
    notifier = apprise.Apprise()
    quiet = logging.getLogger("apprise")  # it logs a URL it cannot parse whole, password or token included
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        added = notifier.add(url)
    finally:
        quiet.setLevel(level)
    if not added:
        raise ConfigError(f"--notify: Apprise cannot use this {_scheme(url)} URL (unknown service or malformed); "
                          "see https://github.com/caronc/apprise/wiki")
    return notifier


def _host(url: str) -> str:
    """The webhook's host only: its path often holds a secret token."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "?"

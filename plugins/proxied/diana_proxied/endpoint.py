"""ProxiedDicom: a remote DICOM modality (PACS) reached through an Orthanc proxy that is configured to talk to it.

C-FIND runs on the remote via ``/modalities/{domain}/query``; retrieval is a C-MOVE of each answer to the proxy's
own AET, after which the data is read from (and deleted on) the proxy like any Orthanc item.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import EndpointUnavailable, NotFound, ValidationError
from diana_core.ports import Endpoint, refuse_unknown
from diana_proxied.windows import date_window_queries

logger = logging.getLogger(__name__)

# keys every answer must carry (empty = "return this key") so answers can name their Orthanc id
RETURN_KEYS: dict[DicomLevel, dict[str, str]] = {
    DicomLevel.PATIENTS: {"PatientID": "", "PatientName": "", "PatientBirthDate": "", "PatientSex": ""},
    DicomLevel.STUDIES: {"PatientID": "", "PatientName": "", "PatientBirthDate": "", "PatientSex": "",
                         "StudyInstanceUID": "", "AccessionNumber": "",
                         "StudyDate": "", "StudyTime": "", "StudyDescription": "", "ModalitiesInStudy": "",
                         "NumberOfStudyRelatedInstances": ""},  # the collector's completeness check
    DicomLevel.SERIES: {"PatientID": "", "StudyInstanceUID": "", "SeriesInstanceUID": "", "AccessionNumber": "",
                        "Modality": "", "SeriesNumber": "", "SeriesDescription": ""},
    DicomLevel.INSTANCES: {"PatientID": "", "StudyInstanceUID": "", "SeriesInstanceUID": "", "SOPInstanceUID": "",
                           "InstanceNumber": ""},
}
_UID_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@define(kw_only=True)
class ProxiedDicom(Endpoint):
    """Remote modality ``proxy_domain`` behind the Orthanc described by ``proxy_desc`` (a service entry).

    Fields:
        proxy_desc: The Orthanc that talks DICOM to the PACS, as a service entry ({ctype: Orthanc, ...}).
        proxy_domain: The PACS's name in that Orthanc's DicomModalities.
        arrival_timeout: Seconds to wait for retrieved instances to arrive at the proxy.
    """

    name: str = "ProxiedDicom"
    proxy_desc: dict[str, Any] = field(factory=dict)
    proxy_domain: str = "remote"
    arrival_timeout: float = 60.0
    retrieve_timeout: float = 3600.0  # seconds one C-MOVE (one study) may take, however many HTTP polls that is
    progress: Any = field(default=None, init=False, repr=False, eq=False)  # called with a C-MOVE job's percent
    _proxy: Any = field(default=None, init=False, repr=False, eq=False)

    @property
    def proxy(self) -> Any:
        """The proxy as an Orthanc endpoint, built from ``proxy_desc`` (env expansion, validation) on first use."""
        if self._proxy is None:
            from diana_core.services import build_endpoint

            desc = dict(self.proxy_desc)
            ctype = desc.pop("ctype", "Orthanc")
            desc.setdefault("name", f"{self.name}-proxy")
            self._proxy = build_endpoint(ctype, desc, service_name=f"{self.name}.proxy_desc")
        return self._proxy

    # --- queries ---------------------------------------------------------------------------------
    def _query_of(self, item: Any, level: DicomLevel) -> dict[str, str]:
        if isinstance(item, Dixel):
            keys = _UID_KEYS[1: int(level)] if level > DicomLevel.PATIENTS else ("PatientID",)
            query = {k: str(item.tag(k)) for k in keys if item.tag(k)}
            if not query:
                raise ValidationError(f"{self.name}: item {item.summary()['id']} has no {'/'.join(keys)} to query by")
            return query
        if isinstance(item, Mapping):
            return {k: str(v) for k, v in item.items() if isinstance(v, (str, int, float))}
        raise ValidationError(f"{self.name}: query by a Dixel or a mapping of DICOM keywords, not {type(item).__name__}")

    def find(self, query: Mapping[str, Any] | Dixel, level: DicomLevel | str | int = DicomLevel.STUDIES,
             retrieve: bool = False, **kwargs: Any) -> list[Dixel]:
        """C-FIND on the remote; answers as Dixels. ``retrieve`` C-MOVEs each to the proxy and waits for it."""
        refuse_unknown(self.name, "find", kwargs)
        lvl = DicomLevel.from_label(level)
        body = {**RETURN_KEYS[lvl], **self._query_of(query, lvl)}
        gw = self.proxy.gateway
        qid = gw.rquery(body, self.proxy_domain, lvl)
        answers = []
        for i, raw in enumerate(gw.query_answers(qid)):
            tags = {k: v for k, v in raw.items() if v not in ("", None) and k != "QueryRetrieveLevel"}
            dixel = Dixel.from_orthanc(tags=tags, level=lvl)
            dixel.meta.update({"QueryID": qid, "AnswerIndex": i})
            answers.append(dixel)
        count = len(answers)
        logger.info("%s: C-FIND at %s level: %d answers", self.name, lvl, count)
        if retrieve:
            from diana_orthanc.gateway import OrthancRequestError

            target = self.move_aet()
            for dixel in answers:
                started = time.monotonic()
                try:
                    gw.retrieve(qid, dixel.meta["AnswerIndex"], target, timeout=self.retrieve_timeout,
                                progress=self.progress)
                except OrthancRequestError as exc:
                    raise OrthancRequestError(f"{exc}; if this repeats, check that {self.proxy_domain!r} lists AE "
                                              f"title {target!r} (the proxy) as a move destination "
                                              "(`diana check` names the entry)", exc.status) from None
                logger.info("%s: C-MOVE job of answer %d done in %.1f s", self.name, dixel.meta["AnswerIndex"],
                            time.monotonic() - started)
            for dixel in answers:
                self._await_arrival(dixel)
                dixel.meta["Retrieved"] = True
        return answers

    def _await_arrival(self, dixel: Dixel) -> None:
        """Poll the proxy until the retrieved item is there (the synchronous C-MOVE normally means at once)."""
        try:
            oid = dixel.oid()
        except ValidationError:
            return  # answer without the keys to name it; nothing to verify
        deadline = time.monotonic() + self.arrival_timeout
        delay = 0.05
        while not self.proxy.exists(oid, level=dixel.level):
            if time.monotonic() > deadline:
                raise EndpointUnavailable(f"{self.name}: {dixel.level} {oid} did not arrive on the proxy within "
                                          f"{self.arrival_timeout} s of its C-MOVE")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def retrieve_study(self, study: Dixel) -> Dixel:
        """StudyRetriever: C-MOVE one study (a find answer) to the proxy; returns it as the proxy now holds it."""
        found = self.find({"StudyInstanceUID": study.tag("StudyInstanceUID")}, level=DicomLevel.STUDIES,
                          retrieve=True)
        return found[0] if found else study

    def release_study(self, study: Dixel) -> None:
        """StudyRetriever: remove the proxy's copy of a retrieved study (the remote original is untouched)."""
        self.delete(study, level=DicomLevel.STUDIES)

    def find_window(self, start: datetime, end: datetime, query: Mapping[str, Any] | None = None,
                    level: DicomLevel | str | int = DicomLevel.STUDIES, retrieve: bool = False) -> list[Dixel]:
        """Items whose StudyDate/StudyTime fall in [start, end] (split at midnight), plus ``query`` keys."""
        found: list[Dixel] = []
        for window in date_window_queries(start, end):
            found.extend(self.find({**(query or {}), **window}, level=level, retrieve=retrieve))
        return found

    def move_aet(self) -> str:
        """The C-MOVE destination: ``aet`` of proxy_desc when given, else the AE title the proxy reports (/system)."""
        return str(self.proxy.own_aet())

    # --- port methods -----------------------------------------------------------------------------
    def server_url(self) -> str:
        """The proxy Orthanc's base URL: retrieved studies land there (Hosted port)."""
        return str(self.proxy.server_url())

    def check(self) -> bool:
        """``diagnose()``'s verdict; AuthenticationError when the proxy refuses the credentials."""
        from diana_core.errors import AuthenticationError

        try:
            self.proxy.gateway.system()
        except AuthenticationError:
            raise
        except EndpointUnavailable as exc:
            logger.warning("%s", exc)
            return False
        ok, why = self.diagnose()
        if why:
            logger.warning("%s: %s", self.name, why)
        return ok

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not or what to configure): the proxy answers, knows the remote, the remote answers
        C-ECHO, the C-MOVE destination is the proxy's own AE title, and a test C-MOVE to it is not refused."""
        from diana_orthanc.gateway import OrthancRequestError

        ok, why = self.proxy.diagnose()
        if not ok:
            return False, f"proxy: {why}"
        system = self.proxy.gateway.system()
        own, port = str(system["DicomAet"]), system.get("DicomPort", "?")
        entry = f"AE title {own!r} at the proxy's address, DICOM port {port}"
        configured = self.proxy_desc.get("aet")
        if configured and configured != own:
            return False, (f"aet {configured!r} is set in proxy_desc but the proxy answers as {own!r}: remove aet "
                           f"(it is read from the proxy) or set it to {own!r}; the remote must know {entry}")
        try:
            if not self.proxy.gateway.recho(self.proxy_domain):
                return False, f"the remote {self.proxy_domain!r} does not answer C-ECHO from the proxy"
        except NotFound:
            return False, (f"the proxy has no modality {self.proxy_domain!r}: add it to the proxy's "
                           "DicomModalities (AE title, host, port of the remote)")
        probe = {"StudyInstanceUID": f"2.25.{uuid.uuid4().int}"}  # matches nothing: nothing is moved
        try:
            self.proxy.gateway.move(self.proxy_domain, DicomLevel.STUDIES, probe, own)
        except OrthancRequestError as exc:
            if "A801" in str(exc):
                return False, f"the remote refuses {own!r} as a move destination (0xA801): it must list {entry}"
            return True, (f"C-ECHO ok; a test C-MOVE to {own!r} was answered without saying whether the remote "
                          f"knows it; make sure it lists {entry}")
        return True, ""

    def exists(self, item: Dixel | Mapping[str, Any], level: DicomLevel | str | int | None = None,
               **kwargs: Any) -> bool:
        """True if the remote answers a C-FIND for the item's UIDs (or a query)."""
        refuse_unknown(self.name, "exists", kwargs)
        lvl = DicomLevel.from_label(level) if level is not None else getattr(item, "level", DicomLevel.STUDIES)
        return bool(self.find(item, level=lvl))

    def get(self, item: Dixel | str, level: DicomLevel | str | int | None = None,
            view: DixelView | str | int = DixelView.TAGS, **kwargs: Any) -> Dixel:
        """The item from the proxy, retrieved from the remote first if needed (a str is a proxy Orthanc id)."""
        refuse_unknown(self.name, "get", kwargs)
        lvl = DicomLevel.from_label(level) if level is not None else getattr(item, "level", DicomLevel.STUDIES)
        if isinstance(item, Dixel) and not self.proxy.exists(item, level=lvl):
            if not self.find(item, level=lvl, retrieve=True):
                raise NotFound(f"{self.name}: {lvl} {item.summary()['id']} not found on {self.proxy_domain}")
        return self.proxy.get(item, level=lvl, view=view, **kwargs)

    def delete(self, item: Dixel | str, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """Delete the proxy's copy (the remote is never modified)."""
        refuse_unknown(self.name, "delete", kwargs)
        return bool(self.proxy.delete(item, level=level))

    def anonymize(self, item: Dixel | str, level: DicomLevel | str | int = DicomLevel.STUDIES,
                  replacement_map: Mapping[str, Any] | None = None, **kwargs: Any) -> Dixel:
        """Pseudonymize the proxy's copy server-side (retrieve it first); returns the new item on the proxy."""
        lvl = DicomLevel.from_label(level)
        if isinstance(item, Dixel) and not self.proxy.exists(item, level=lvl):
            self.find(item, level=lvl, retrieve=True)
        return self.proxy.anonymize(item, level=lvl, replacement_map=replacement_map, **kwargs)

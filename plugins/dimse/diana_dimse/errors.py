"""The one place pynetdicom's outcomes become Diana's typed errors (association rejected/aborted, timeouts,
non-success DIMSE statuses, failed C-MOVE/C-GET sub-operations). Messages are one line, name the node and the
operation, and carry no PHI (UIDs and status codes only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from diana_core.errors import ConfigError, DianaError, EndpointUnavailable


class AssociationRejected(DianaError):
    """The peer refused the association permanently (unknown calling/called AE title, unsupported context...)."""


class NodeBusy(EndpointUnavailable):
    """The node rejected the association as transient (its association limit, or busy): try again later."""


class DimseStatusError(DianaError):
    """A DIMSE operation ended with a failure status; ``status`` holds the code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NodeOutOfResources(DimseStatusError, EndpointUnavailable):
    """A 0xA7xx status ("Refused: Out of Resources": a full disk, a busy node): transient, worth sending again later."""


class RetrieveIncomplete(DianaError):
    """A C-MOVE/C-GET ended with failed sub-operations, or fewer instances arrived than the peer reported."""

    def __init__(self, message: str, completed: int = 0, failed: int = 0, warning: int = 0, received: int = 0) -> None:
        super().__init__(message)
        self.completed, self.failed, self.warning, self.received = completed, failed, warning, received


# service -> pynetdicom status table name (imported lazily: the plugin entry point must stay cheap)
_TABLES = {
    "C-ECHO": "VERIFICATION_SERVICE_CLASS_STATUS",
    "C-STORE": "STORAGE_SERVICE_CLASS_STATUS",
    "C-FIND": "QR_FIND_SERVICE_CLASS_STATUS",
    "C-MOVE": "QR_MOVE_SERVICE_CLASS_STATUS",
    "C-GET": "QR_GET_SERVICE_CLASS_STATUS",
}


def status_meaning(service: str, code: int) -> tuple[str, str]:
    """(category, meaning) of a DIMSE status code for a service, from the standard's tables (PS3.4, PS3.7 C)."""
    from pynetdicom import status as st

    table: dict[int, tuple[str, str]] = getattr(st, _TABLES.get(service, "GENERAL_STATUS"))
    if code in table:
        category, meaning = table[code]
        return category, meaning or category
    category = st.code_to_category(code)
    return category, "unknown status"


def is_success_or_warning(service: str, code: int) -> bool:
    return status_meaning(service, code)[0] in ("Success", "Warning")


def _described(answer: Any, prop: str) -> str:
    """A reject's reason/source in words; "" when absent or out of the standard's range (pynetdicom raises)."""
    try:
        return str(getattr(answer, prop, "") or "")
    except ValueError:
        return ""


class DimseErrors:
    """Error translation for one node: ``where`` names it (ctype, service name, AE titles, address)."""

    def __init__(self, where: str, calling: str, called: str, address: str) -> None:
        self.where, self.calling, self.called, self.address = where, calling, called, address

    def status(self, service: str, what: str, status: Any) -> int:
        """The status code of a DIMSE response; raises for no response (abort/timeout) or a failure."""
        if status is None or "Status" not in status:
            raise EndpointUnavailable(f"{self.where}: {service} {what}: no response from {self.address} "
                                      f"(association aborted, or no answer within the timeout; a node that does not "
                                      f"allow {service} from calling AE {self.calling!r} aborts like this: is it "
                                      "declared there?)")
        code = int(status.Status)
        category, meaning = status_meaning(service, code)
        if category in ("Success", "Warning", "Pending", "Cancel"):
            return code
        comment = str(status.get("ErrorComment", "") or "").strip()
        detail = f"; peer says: {comment}" if comment else ""
        text = f"{self.where}: {service} {what} failed with status 0x{code:04X} ({category}: {meaning}){detail}"
        if code & 0xFF00 == 0xA700:
            raise NodeOutOfResources(text, code)
        raise DimseStatusError(text, code)

    def association(self, assoc: Any, what: str, connected: bool = True, tls: bool = False,
                    reject: Any = None) -> None:
        """Raise unless ``assoc`` is established: unreachable, rejected (naming the AE titles), aborted.
        ``reject``: the peer's A-ASSOCIATE-RJ PDU when one arrived (pynetdicom may report it as an abort)."""
        if assoc.is_established:
            return
        if not connected:
            why = "connection refused, timed out, or the TLS handshake failed (check the CA file and the peer's " \
                  "certificate)" if tls else "connection refused or timed out"
            raise EndpointUnavailable(f"{self.where}: cannot reach {self.address} for {what} ({why})")
        if assoc.is_rejected or reject is not None:
            rsp = getattr(assoc.acceptor, "primitive", None) if assoc.is_rejected else reject
            reason = _described(rsp, "reason_str") or "no reason given"
            source = _described(rsp, "source_str") or "peer"
            transient = getattr(rsp, "result", None) == 0x02
            text = (f"{self.where}: association for {what} rejected by {source} at {self.address} "
                    f"({reason}; calling AE {self.calling!r}, called AE {self.called!r})")
            if transient:
                raise NodeBusy(text + " - transient, try again later")
            raise AssociationRejected(text)
        if assoc.is_aborted and getattr(getattr(assoc.acceptor, "primitive", None), "result", None) == 0x00:
            raise AssociationRejected(f"{self.where}: {self.address} accepted the association for {what} but none "
                                      f"of our presentation contexts (calling AE {self.calling!r}, called AE "
                                      f"{self.called!r}): it does not support this operation or these files")
        if assoc.is_aborted:
            raise EndpointUnavailable(f"{self.where}: association for {what} dropped by {self.address} during "
                                      f"negotiation (calling AE {self.calling!r}, called AE {self.called!r})")
        raise EndpointUnavailable(f"{self.where}: cannot reach {self.address} for {what} "
                                  "(connection refused or timed out)")

    @staticmethod
    def dropped_in_negotiation(assoc: Any, connected: bool, reject: Any = None) -> bool:
        """True when the peer closed the connection before answering the association request."""
        if assoc.is_established or assoc.is_rejected or reject is not None or not connected or not assoc.is_aborted:
            return False
        return getattr(getattr(assoc.acceptor, "primitive", None), "result", None) != 0x00

    @contextlib.contextmanager
    def translate(self, what: str) -> Iterator[None]:
        """Socket/TLS and pynetdicom usage failures inside a block, as typed Diana errors."""
        try:
            yield
        except DianaError:
            raise
        except (TimeoutError, ConnectionError) as exc:
            raise EndpointUnavailable(f"{self.where}: {what}: {type(exc).__name__} talking to {self.address}") \
                from None
        except OSError as exc:  # includes ssl.SSLError
            raise EndpointUnavailable(f"{self.where}: {what}: {type(exc).__name__}: {exc.strerror or exc}") from None
        except RuntimeError as exc:  # pynetdicom: used an association that is no longer established
            raise EndpointUnavailable(f"{self.where}: {what}: the association to {self.address} ended ({exc})") \
                from None
        except ValueError as exc:  # pynetdicom: no accepted presentation context for a dataset
            raise ConfigError(f"{self.where}: {what}: {exc}") from None

"""Which DIMSE engine a service uses for C-STORE: dcmtk's C++ tools (Debian ``dcmtk``) or pynetdicom.

Tools are looked up at their absolute Debian paths, never on PATH: pynetdicom installs Python scripts named
``storescu``/``storescp`` into a virtualenv's ``bin``. pynetdicom stays the pure-Python fallback and does
C-ECHO/C-FIND/C-MOVE/C-GET in every case.
"""

from __future__ import annotations

import os

from diana_core.errors import ConfigError

ENGINES = ("dcmtk", "pynetdicom")
DCMTK_DIR = "/usr/bin"  # Debian's dcmtk package; also what mercure runs
DCMTK_ENV = {"TCP_NODELAY": "1"}  # dcmtk reads it; pynetdicom sets TCP_NODELAY on its sockets too


def dcmtk_tool(name: str) -> str | None:
    """Absolute path of a dcmtk tool when installed (``/usr/bin/NAME``, or ``$DIANA_DCMTK_DIR/NAME``)."""
    path = os.path.join(os.environ.get("DIANA_DCMTK_DIR") or DCMTK_DIR, name)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def choose_engine(service: str, value: str | None, tools: tuple[str, ...], default: str = "dcmtk") -> str:
    """The engine for ``service``: ``value`` if given, else ``default`` when its tools are there, else pynetdicom.
    ConfigError for an unknown value, or when dcmtk is asked for and a tool is missing."""
    if value is None or value == "":
        if default == "dcmtk" and all(dcmtk_tool(t) for t in tools):
            return "dcmtk"
        return "pynetdicom"
    engine = str(value).strip().lower()
    if engine not in ENGINES:
        raise ConfigError(f"service {service!r}: engine must be one of {', '.join(ENGINES)}, not {value!r}")
    if engine == "dcmtk":
        missing = [t for t in tools if dcmtk_tool(t) is None]
        if missing:
            raise ConfigError(f"service {service!r}: engine dcmtk needs {', '.join(missing)} in "
                                      f"{os.environ.get('DIANA_DCMTK_DIR') or DCMTK_DIR} (apt-get install dcmtk), "
                                      "or use engine: pynetdicom")
    return engine

"""The exit statuses of ``diana``: one table that the commands use and the documentation is generated from."""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
DEAD_LETTERS = 3

MEANINGS = {
    OK: "Everything asked for was done (and verified where the destination can count).",
    FAILED: "Something failed and is named: failed studies in the job's failures.csv, failed files in the summary, "
            "an error that stopped Diana (one line), a routes file with problems (`routes check`), an audit trail "
            "whose chain is broken (`jobs audit --verify`).",
    USAGE: "Bad usage: an unknown option or argument; for the daemons (`watch`, `worker`, `serve`) a bad service or "
           "routes file or a missing folder too, so that systemd (`RestartPreventExitStatus=2`) does not restart "
           "into it.",
    DEAD_LETTERS: "`watch`: it ran, but events were written to the dead-letter file (replay them with "
                  "`watch --replay`).",
}

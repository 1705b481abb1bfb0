"""The pseudonymizing options shared by put and upload (``--anonymize`` with ``--profile``, ``--unkeyed``,
``--job-dir``) and the pseudonymizer they make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

PROFILE_HELP = ("De-identification profile with --anonymize: PS3.15 options, e.g. basic,clean-pixels, or a YAML "
                "file (default: basic,retain-modified-dates,retain-patient-characteristics).")


def pseudonymizing_options(func: Any) -> Any:
    """Add --profile, --unkeyed and --job-dir (all used with --anonymize) to a command."""
    func = click.option("--job-dir", type=click.Path(file_okay=False), help="With --anonymize: keep instances "
                        "held back for burned-in identifiers in JOB/quarantine for review (diana quarantine).")(func)
    func = click.option("--unkeyed", is_flag=True, help="With --anonymize: pseudonymize without a key "
                        "(anyone holding the originals can recompute the pseudonyms).")(func)
    return click.option("--profile", default=None, metavar="OPTIONS|FILE.yml", help=PROFILE_HELP)(func)


def pseudonymizer_for(anonymize: bool, profile: str | None, unkeyed: bool, job_dir: str | None,
                      dest: Any) -> Any:
    """The Pseudonymizer the options ask for (None: the relay's default plan); refuses options without
    --anonymize and a profile whose plugin is missing."""
    if not anonymize:
        if profile or unkeyed or job_dir:
            raise click.UsageError("--profile, --unkeyed and --job-dir go with --anonymize")
        return None
    if not (profile or unkeyed or job_dir):
        return None
    from diana_core.deid_profile import DeidReport
    from diana_core.plugins import check_profile
    from diana_core.pseudonym import Pseudonymizer, load_key
    from diana_core.quarantine import QuarantineStore

    pz = Pseudonymizer(key=None if unkeyed else load_key(), unkeyed=unkeyed, profile=profile)
    check_profile(pz.profile)
    pz.require_key()
    if job_dir:
        store = QuarantineStore(Path(job_dir) / "quarantine")
        pz.report = DeidReport(profile=pz.profile.name, key_id=pz.key_id, store=store)
        store.set_context(profile=pz.profile.name, key_id=pz.key_id, uid_scheme=pz.uid_scheme, unkeyed=unkeyed,
                          dest=getattr(dest, "name", None), dest_ctype=type(dest).__name__,
                          dest_path=str(getattr(dest, "path", "") or ""))
    return pz

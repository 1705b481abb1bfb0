"""``diana guid``, ``diana uid``, ``diana oid``: reproducible pseudo-identities and identifiers."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state


@click.command("guid")
@click.argument("name")
@click.argument("dob_arg", metavar="[DOB]", required=False)
@click.argument("gender_arg", metavar="[GENDER]", required=False)
@click.option("--dob", help="Birth date (YYYY-MM-DD, YYYYMMDD, M/D/YYYY or 'January 1, 2018').")
@click.option("--age", type=float, help="Age in years (needs --reference-date when no --dob).")
@click.option("--reference-date", "--reference_date", "reference_date", help="Date the age refers to (study date).")
@click.option("--gender", "--sex", "gender", default=None, help="M, F or U (default U).")
@click.option("--salt", default=None, help="The original's salt: mints from NAME+SALT (reproduces its salted IDs).")
@click.option("--key-env", default=None, help="Environment variable holding the key (default: the key collect "
              "uses: $DIANA_PSEUDONYM_KEY, else 'diana key new''s file).")
@click.option("--unkeyed", is_flag=True, help="The original DIANA CLI's IDs, without a key (anyone can recompute "
              "them).")
@click.option("--date-only", is_flag=True, help="With --unkeyed: hash dates as days, as the original library and "
              "collector did (its CLI hashed them as date-times).")
@pass_state
def guid_cmd(state: CliState, name: str, dob_arg: str | None, gender_arg: str | None, dob: str | None,
             age: float | None, reference_date: str | None, gender: str | None, salt: str | None,
             key_env: str | None, unkeyed: bool, date_only: bool) -> None:
    """Print the reproducible pseudo-identity for NAME ("LAST^FIRST^MIDDLE") [DOB [GENDER]], keyed like
    ``diana collect`` (``--unkeyed``: the IDs the original DIANA CLI printed).

    \b
    Examples:
      diana guid "MERCK^DEREK^L" 1980-03-04 M
      diana guid "MERCK^DEREK^L" --age 30 --reference-date 2018-01-01
    """
    from diana_core.guid import GUIDMint
    from diana_core.pseudonym import key_id

    if dob_arg and dob:
        raise click.UsageError("give the birth date once: as DOB or as --dob")
    if gender_arg and gender:
        raise click.UsageError("give the gender once: as GENDER or as --gender")
    if date_only and not unkeyed:
        raise click.UsageError("--date-only goes with --unkeyed (keyed IDs always hash days, as collect does)")
    key = _key(key_env, unkeyed)
    born: Any = dob_arg or dob
    ref: Any = reference_date
    if unkeyed and not date_only and not salt:
        # the original CLI parsed both dates into datetimes and its mint hashed them with the time:
        # "1980-03-04T00:00:00", and an age gives a birth "date-time" such as "2008-01-01T12:00:00"
        born, ref = _as_datetime(born), _as_datetime(ref)
    if salt:
        name = f"{name}+{salt}"  # the original's salting: the salt's words join the name key
    sham = GUIDMint(key).get_sham_id(name, dob=born, age=age, reference_date=ref,
                                     gender=gender_arg or gender or "U")
    data = {**sham.as_dict(), "KeyID": key_id(key)}
    text = "\n".join(f"{k}: {v}" for k, v in {**data, "TimeOffset": str(sham.TimeOffset)}.items())
    state.emit(data, text)


def _as_datetime(text: str | None) -> datetime | None:
    """A date-time as the original CLI's click.DateTime read it: a time when one is written, else midnight."""
    from diana_core.guid import as_date

    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        day = as_date(text)
        return None if day is None else datetime.combine(day, time())


def _key(key_env: str | None, unkeyed: bool) -> str | None:
    """The key guid/uid use: the one collect uses unless --key-env names another; None only with --unkeyed."""
    import os

    from diana_core.pseudonym import Pseudonymizer, load_key

    if unkeyed:
        return None
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise click.BadParameter(f"environment variable {key_env} is empty", param_hint="--key-env")
        return key
    key = load_key()
    Pseudonymizer(key=key).require_key()
    return key


@click.command("uid")
@click.argument("ids", nargs=-1, required=True)
@click.option("--app-id", default="dicom", show_default=True, help="DIANA scheme application id.")
@click.option("--keyed", is_flag=True, help="Collision-free keyed mint of the most specific id (2.25 root).")
@click.option("--key-env", default=None, help="Environment variable holding the keyed mint's secret (default: the "
              "key collect uses).")
@click.option("--unkeyed", is_flag=True, help="With --keyed: no secret (anyone can recompute the UID).")
@pass_state
def uid_cmd(state: CliState, ids: tuple[str, ...], app_id: str, keyed: bool, key_env: str | None,
            unkeyed: bool) -> None:
    """Print a reproducible UID for PATIENT STUDY [SERIES [INSTANCE]] (DIANA's scheme by default).

    Example: diana uid PATIENT123 1.2.840.1234 1.2.840.1234.5
    """
    from diana_core.dicom import DicomUIDMint, KeyedUIDMint

    if len(ids) < 2 or len(ids) > 4:
        raise click.UsageError("give PATIENT STUDY [SERIES [INSTANCE]]")
    if keyed:
        uid = KeyedUIDMint(_key(key_env, unkeyed) or "").uid(*ids)
    else:
        uid = DicomUIDMint(app_id).uid(*ids)
    state.emit({"uid": uid}, uid)


@click.command("oid")
@click.argument("ids", nargs=-1, required=True)
@pass_state
def oid_cmd(state: CliState, ids: tuple[str, ...]) -> None:
    """Print the Orthanc id of PATIENT [STUDY [SERIES [INSTANCE]]] (what Orthanc will assign)."""
    from diana_core.dicom import orthanc_id

    if len(ids) > 4:
        raise click.UsageError("give at most PATIENT STUDY SERIES INSTANCE")
    oid = orthanc_id(*ids)
    state.emit({"oid": oid}, oid)

"""``diana guid``, ``diana uid``, ``diana oid``: reproducible pseudo-identities and identifiers."""

from __future__ import annotations

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
@click.option("--key-env", default=None, help="Environment variable holding a secret key (HMAC mode).")
@pass_state
def guid_cmd(state: CliState, name: str, dob_arg: str | None, gender_arg: str | None, dob: str | None,
             age: float | None, reference_date: str | None, gender: str | None, salt: str | None,
             key_env: str | None) -> None:
    """Print the reproducible pseudo-identity for NAME ("LAST^FIRST^MIDDLE") [DOB [GENDER]].

    \b
    Examples:
      diana guid "MERCK^DEREK^L" 1980-03-04 M
      diana guid "MERCK^DEREK^L" --age 30 --reference-date 2018-01-01
    """
    import os

    from diana_core.guid import GUIDMint

    if dob_arg and dob:
        raise click.UsageError("give the birth date once: as DOB or as --dob")
    if gender_arg and gender:
        raise click.UsageError("give the gender once: as GENDER or as --gender")
    key = None
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise click.BadParameter(f"environment variable {key_env} is empty", param_hint="--key-env")
    if salt:
        name = f"{name}+{salt}"  # the original's salting: the salt's words join the name key
    sham = GUIDMint(key).get_sham_id(name, dob=dob_arg or dob, age=age, reference_date=reference_date,
                                     gender=gender_arg or gender or "U")
    data = sham.as_dict()
    text = "\n".join(f"{k}: {v}" for k, v in {**data, "TimeOffset": str(sham.TimeOffset)}.items())
    state.emit(data, text)


@click.command("uid")
@click.argument("ids", nargs=-1, required=True)
@click.option("--app-id", default="dicom", show_default=True, help="DIANA scheme application id.")
@click.option("--keyed", is_flag=True, help="Collision-free keyed mint of the most specific id (2.25 root).")
@click.option("--key-env", default=None, help="Environment variable holding the keyed mint's secret.")
@pass_state
def uid_cmd(state: CliState, ids: tuple[str, ...], app_id: str, keyed: bool, key_env: str | None) -> None:
    """Print a reproducible UID for PATIENT STUDY [SERIES [INSTANCE]] (DIANA's scheme by default).

    Example: diana uid PATIENT123 1.2.840.1234 1.2.840.1234.5
    """
    import os

    from diana_core.dicom import DicomUIDMint, KeyedUIDMint

    if len(ids) < 2 or len(ids) > 4:
        raise click.UsageError("give PATIENT STUDY [SERIES [INSTANCE]]")
    if keyed:
        uid = KeyedUIDMint(os.environ.get(key_env, "") if key_env else "").uid(*ids)
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

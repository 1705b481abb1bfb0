"""`diana guid` as the original's users scripted it: positional NAME DOB GENDER, --age/--reference_date, and
--salt reproducing the original's salted IDs exactly (#15 item 6)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from diana_core.cli import cli


def run(*args: str) -> dict:
    out = CliRunner().invoke(cli, ["--json", *args], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_positional_dob_and_gender_equal_the_options():
    positional = run("guid", "MERCK^DEREK^L", "1980-03-04", "F")
    options = run("guid", "MERCK^DEREK^L", "--dob", "1980-03-04", "--gender", "F")
    assert positional == options
    assert run("guid", "MERCK^DEREK^L", "3/4/1980", "F") == positional
    assert run("guid", "MERCK^DEREK^L", "1980-03-04")["ID"] != positional["ID"]  # gender U differs


def test_salt_reproduces_the_originals_salted_id():
    """The original appended "+SALT" to the name before minting; this vector is checked against the hash recipe
    in tests/parity/test_original_core.py."""
    salted = run("guid", "MERCK^DEREK^L", "1980-03-04", "M", "--salt", "s4lt", "--unkeyed")  # the original: no key
    assert salted["ID"] == "HIIWVRPHOAYNNWFEZM63QQUAYBDCQO2X"
    assert salted["ID"] != run("guid", "MERCK^DEREK^L", "1980-03-04", "M", "--unkeyed")["ID"]


def test_original_age_example_and_conflicting_dates():
    data = run("guid", "FOO^BAR^Z^^", "--age", "10", "--reference_date", "January 1, 2018", "--unkeyed",
               "--date-only")  # the original library's vector (its CLI hashed date-times: test_round3_cli)
    assert data["ID"] == "JGHVCZSDBOFIA2QZ4H6EI43K4HAPB3IM" and data["Name"] == "JACKSITS^GENE^H"
    out = CliRunner().invoke(cli, ["guid", "X^Y", "1980-03-04", "--dob", "1980-03-04"])
    assert out.exit_code == 2 and "once" in out.output

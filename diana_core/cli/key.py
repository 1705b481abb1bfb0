"""``diana key``: create and inspect the project's pseudonym key (stored 0600 under the user's config folder)."""

from __future__ import annotations

import click

from diana_core.cli.context import CliState, pass_state

BACKUP_ADVICE = ("Back this file up now, somewhere safe away from the data (a password manager or a vault): "
                 "if it is lost, pseudonyms cannot be reproduced - the same patients would get new ones.")


@click.group("key")
def key_cmd() -> None:
    """The secret key that makes pseudonyms unrecomputable by anyone who holds the originals.

    \b
    diana key new     create it ($XDG_CONFIG_HOME/diana/pseudonym.key, mode 0600)
    diana key show    print its id (a fingerprint, never the key) and where it comes from
    $DIANA_PSEUDONYM_KEY, when set, takes precedence over the file. Keep a copy somewhere safe: without the
    same key, the same originals get different pseudonyms.
    """


@key_cmd.command("new")
@click.option("--path", type=click.Path(dir_okay=False), default=None, help="Write the key here instead.")
@click.option("--force", is_flag=True, help="Replace an existing key (earlier pseudonyms become unreproducible).")
@pass_state
def key_new_cmd(state: CliState, path: str | None, force: bool) -> None:
    """Create a random key file readable by you only; prints its id."""
    from diana_core.pseudonym import new_key

    where, kid = new_key(path, force=force)
    state.emit({"key_id": kid, "path": str(where), "backup": BACKUP_ADVICE},
               f"key {kid} written to {where} (mode 0600)\n{BACKUP_ADVICE}")


@key_cmd.command("show")
@pass_state
def key_show_cmd(state: CliState) -> None:
    """Print the id of the key collect/watch/guid/uid would use, and its origin; exit 1 when there is none."""
    import os

    from diana_core.pseudonym import KEY_ENV, key_id, key_path, load_key

    key = load_key()
    origin = f"${KEY_ENV}" if os.environ.get(KEY_ENV) else str(key_path())
    if not key:
        state.emit({"key_id": None, "path": str(key_path())}, f"no key: run 'diana key new' (looked in ${KEY_ENV} "
                   f"and {key_path()})")
        raise SystemExit(1)
    state.emit({"key_id": key_id(key), "origin": origin}, f"key {key_id(key)} from {origin}")

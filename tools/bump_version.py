"""Set one version on the core and every plugin: ``./dev bump X.Y.Z`` (then ``uv lock``, which ./dev runs).

Changes ``diana_core/__init__.py`` ``__version__``, each ``plugins/*/pyproject.toml`` ``version``, and every
``diana-dicom*>=A.B,<A.C`` range between our distributions (root extras, plugin dependencies, the contrib plugin
template's core range) to the new minor series. Prints each file changed; exit 2 on a malformed version.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)\d+)?$")
CORE_VERSION = re.compile(r'^__version__ = "[^"]+"$', re.M)
PROJECT_VERSION = re.compile(r'^version = "[^"]+"$', re.M)  # plugins: the [project] table's only version key
OUR_RANGE = re.compile(r'(diana-dicom(?:-[a-z]+)?(?:\[[a-z,-]+\])?)>=\d+\.\d+,<\d+\.\d+')


def bump(root: Path, version: str) -> list[Path]:
    """Write ``version`` into the tree at ``root``; returns the files that changed."""
    match = VERSION.match(version)
    if not match:
        raise ValueError(f"version {version!r} is not X.Y.Z (optionally aN, bN or rcN)")
    major, minor = int(match.group(1)), int(match.group(2))
    series = f">={major}.{minor},<{major}.{minor + 1}"
    changed: list[Path] = []

    def rewrite(path: Path, *subs: tuple[re.Pattern[str], str]) -> None:
        text = original = path.read_text(encoding="utf-8")
        for pattern, replacement in subs:
            text = pattern.sub(replacement, text)
        if text != original:
            path.write_text(text, encoding="utf-8")
            changed.append(path)

    rewrite(root / "diana_core" / "__init__.py", (CORE_VERSION, f'__version__ = "{version}"'))
    rewrite(root / "pyproject.toml", (OUR_RANGE, rf"\g<1>{series}"))
    for plugin in sorted((root / "plugins").glob("*/pyproject.toml")):
        rewrite(plugin, (PROJECT_VERSION, f'version = "{version}"'), (OUR_RANGE, rf"\g<1>{series}"))
    for template in sorted((root / "contrib").glob("*/pyproject.toml")):  # its own version stays its own
        rewrite(template, (OUR_RANGE, rf"\g<1>{series}"))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bump", description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the new version, e.g. 0.2.0")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        changed = bump(args.root, args.version)
    except ValueError as exc:
        print(f"bump: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"bump: {path.relative_to(args.root)}")
    print(f"bump: core and {len(list((args.root / 'plugins').glob('*/pyproject.toml')))} plugins at {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""docs/settings.md, generated from the Settings table: `python -m booking.settings_doc` rewrites
it; tests/test_settings.py fails while it is out of step."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from booking.settings import SETTINGS

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

HEADER = """# Settings

Every environment variable the service reads, generated from `booking/settings.py` by
`python -m booking.settings_doc` (do not edit by hand; tests/test_settings.py checks it is in
step). A value that does not parse, or lies outside its range, stops the start with the variable's
name. Booleans are one of 1/0/true/false/yes/no/on/off. `APP_ENV=production` refuses a secret
that is its development default, a placeholder, shorter than its minimum or repetitive
(docs/security.md).

| variable | accepts | default | production | what it does |
|---|---|---|---|---|
"""


def _cell(text: str) -> str:
    # `<seed>` would read as an HTML tag; `<= 5` would not.
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("|", "\\|"))


def reference_markdown() -> str:
    rows = []
    for name, row in SETTINGS.items():
        env = row.env
        default = f"`{_cell(env.default)}`" if env.default else "(empty)"
        secret = f"secret, >= {env.secret_min_length} chars" if env.secret_min_length else ""
        accepts = _cell(env.parse.accepts)
        rows.append(f"| `{name}` | {accepts} | {default} | {secret} | {_cell(env.doc)} |")
    return HEADER + "\n".join(rows) + "\n"


def main() -> None:
    DOC_PATH.write_text(reference_markdown())
    print(f"wrote {DOC_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The mutation gate's table and the security notes say the same thing, and every test it names exists."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.mutate import markdown  # noqa: E402
from tools.mutations import MUTATIONS  # noqa: E402


def test_the_security_notes_show_the_table_as_it_is() -> None:
    assert markdown() in (ROOT / "docs" / "security.md").read_text()


def test_every_mutation_applies_once_and_names_tests_that_exist() -> None:
    for mutation in MUTATIONS:
        text = (ROOT / mutation.path).read_text()
        start = text.find(mutation.after) if mutation.after else 0
        assert start >= 0 and text[start:].count(mutation.find) == 1, mutation.name
        for test in mutation.tests:
            path, _, name = test.partition("::")
            source = (ROOT / path).read_text()
            assert not name or f"def {name.split('[')[0]}(" in source, test

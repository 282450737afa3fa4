"""Shared test fixtures: paths to the shared corpus and the snapshot schema."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fakesite"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
SCHEMA_PATH = SHARED / "schema" / "snapshot.schema.json"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared real-world corpus; tests using it skip cleanly when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


@pytest.fixture(scope="session")
def snapshot_schema() -> dict[str, object]:
    """The JSON contract of a snapshot (../shared/schema/snapshot.schema.json)."""
    import json

    if not SCHEMA_PATH.is_file():
        pytest.skip("../shared/schema/snapshot.schema.json is not present")
    return dict(json.loads(SCHEMA_PATH.read_text()))

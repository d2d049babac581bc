"""Database migrations of the example app: `python3 migrate.py up|down`.

`up` brings the schema to the version the code needs; `down` returns it to the version before.
Both are idempotent, so a retried release step does no harm.
"""

import os
import sqlite3
import sys

import settings

# version -> (statements applied by `up`, statements that reverse them)
MIGRATIONS = {
    1: (
        ["CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, path TEXT NOT NULL)"],
        ["DROP TABLE IF EXISTS visits"],
    ),
    2: (
        ["ALTER TABLE visits ADD COLUMN user_agent TEXT"],
        ["ALTER TABLE visits DROP COLUMN user_agent"],
    ),
}
LATEST = max(MIGRATIONS)


def current_version(db):
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] or 0


def set_version(db, version):
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def migrate(target):
    path = settings.database_path()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        version = current_version(db)
        start = version
        while version < target:
            version += 1
            for statement in MIGRATIONS[version][0]:
                db.execute(statement)
        while version > target:
            for statement in MIGRATIONS[version][1]:
                db.execute(statement)
            version -= 1
        set_version(db, version)
        db.execute("COMMIT")
    except Exception:
        db.execute("ROLLBACK")
        raise
    finally:
        db.close()
    print(f"database {path}: schema version {start} -> {version}")


def main(argv):
    if len(argv) != 2 or argv[1] not in ("up", "down"):
        print("usage: python3 migrate.py up|down", file=sys.stderr)
        return 2
    migrate(LATEST if argv[1] == "up" else LATEST - 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

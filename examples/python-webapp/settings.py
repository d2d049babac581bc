"""Settings of the example app, read from environment variables (App Service app settings)."""

import json
import os

# The schema version this code needs; migrate.py brings the database to it.
REQUIRED_SCHEMA_VERSION = 2

HERE = os.path.dirname(os.path.abspath(__file__))


def database_path():
    """DATABASE_PATH, with a relative path resolved against $HOME.

    App Service sets HOME=/home, which is shared storage that survives restarts and swaps, so a
    relative path lands in the same database for every deployment of the app.
    """
    path = os.environ.get("DATABASE_PATH", "data/app.db")
    if not os.path.isabs(path):
        path = os.path.join(os.environ.get("HOME", HERE), path)
    return path


def release_version():
    """RELEASE_VERSION from the environment, else the version in the package manifest.

    Slot Release writes `.slot-release/manifest.json` into every package it builds.
    """
    version = os.environ.get("RELEASE_VERSION")
    if version:
        return version
    try:
        path = os.path.join(HERE, ".slot-release", "manifest.json")
        with open(path, encoding="utf-8") as manifest:
            return str(json.load(manifest).get("version", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def fail_percent():
    """FAIL_PERCENT: the share of page requests (0 to 100) answered with a 500, to rehearse a bad release.

    The health endpoint is never failed: the bug it stands for is in the pages, which a health probe of
    `/health` misses and a canary's gate on `/` (or a metric gate on 5xx) catches.
    """
    try:
        return min(max(int(os.environ.get("FAIL_PERCENT", "0")), 0), 100)
    except ValueError:
        return 0

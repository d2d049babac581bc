"""The example web app: a page, a /health endpoint that checks the database, and nothing else.

FAIL_PERCENT makes the page fail that share of its requests, to rehearse a bad release.

Only the Python standard library is used, so it runs wherever Python 3 does. Settings come from
environment variables; the app listens on $PORT.
"""

import html
import os
import signal
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import settings


def schema_version():
    """The database's schema version, or None when the database cannot be opened or read."""
    path = settings.database_path()
    try:
        # mode=ro: a health probe must never create an empty database.
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        return db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        db.close()


class FailureBudget:
    """Fails exactly FAIL_PERCENT of the page's requests, spread evenly (request n fails when it
    crosses the next whole multiple), so a release whose code is broken for some users can be shown
    failing a gate that judges traffic while its /health path still passes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.served = 0

    def next_fails(self):
        percent = settings.fail_percent()
        with self.lock:
            before = self.served * percent // 100
            self.served += 1
            return self.served * percent // 100 > before


FAILURES = FailureBudget()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            version = schema_version()
            if version is not None and version >= settings.REQUIRED_SCHEMA_VERSION:
                self.reply(200, "text/plain", "ok\n")
            else:
                self.reply(
                    503,
                    "text/plain",
                    f"database schema version {version}, "
                    f"need {settings.REQUIRED_SCHEMA_VERSION}\n",
                )
        elif self.path == "/" and FAILURES.next_fails():
            self.reply(500, "text/plain", "injected failure (FAIL_PERCENT)\n")
        elif self.path == "/":
            version = html.escape(settings.release_version())
            environment = html.escape(os.environ.get("APP_ENV", "local"))
            body = (
                "<!doctype html><title>Contoso</title>"
                f"<h1>Contoso web</h1><p>Release <b id=release>{version}</b> "
                f"in <b id=environment>{environment}</b>.</p>\n"
            )
            self.reply(200, "text/html; charset=utf-8", body)
        else:
            self.reply(404, "text/plain", "not found\n")

    def reply(self, status, content_type, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main():
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "0.0.0.0")
    server = ThreadingHTTPServer((host, port), Handler)
    # App Service stops a container with SIGTERM; exit cleanly instead of with a traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

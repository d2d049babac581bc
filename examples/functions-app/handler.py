"""An Azure Functions custom handler: the Functions host starts it and forwards HTTP-triggered requests
(enableForwardingHttpRequest) to the port it names in FUNCTIONS_CUSTOMHANDLER_PORT."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] == "/api/health":
            self.reply(200, "ok " + os.environ.get("RELEASE_VERSION", "unknown"))
        elif self.path.split("?")[0] == "/api/hello":
            body = {"greeting": os.environ.get("GREETING", "hello"), "env": os.environ.get("APP_ENV")}
            self.reply(200, json.dumps(body), "application/json")
        else:
            self.reply(404, "no such function")

    do_POST = do_GET

    def reply(self, status, text, kind="text/plain"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

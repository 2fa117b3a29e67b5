"""A recording HTTP proxy for browser tests: Chromium is started with every request sent through it
(loopback too), it records each request's target and forwards only those to the allowed origin. A page
that asked for anything else (a CDN, map tiles, fonts) shows up in `requests`, refused."""

from __future__ import annotations

import contextlib
import http.server
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

# A full Chromium also calls Google on its own (network time, the component updater, accounts): not the
# page's requests, so they are switched off; whatever still goes out is the page's and fails the test.
QUIET = (
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,SigninInterceptBubble,"
    "AccountConsistency,PrivacySandboxSettings4",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-extensions",
    "--no-pings",
    "--no-default-browser-check",
    "--disable-breakpad",
    "--gaia-url=http://127.0.0.1:9",
    "--google-apis-url=http://127.0.0.1:9",
    "--component-updater=url-source=http://127.0.0.1:9",
)


@dataclass
class Recorded:
    allowed: str  # "127.0.0.1:PORT"
    requests: list[str] = field(default_factory=list)  # "GET http://host:port/path", "CONNECT host:443"

    def outside(self) -> list[str]:
        return [r for r in self.requests if urllib.parse.urlsplit(r.split(" ", 1)[1]).netloc != self.allowed]


def _handler(recorded: Recorded) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `recorded`."""

        def do_CONNECT(self) -> None:  # https anywhere: recorded, never tunnelled
            recorded.requests.append(f"CONNECT //{self.path}")
            self.send_error(502)

        def do_GET(self) -> None:
            recorded.requests.append(f"GET {self.path}")
            if urllib.parse.urlsplit(self.path).netloc != recorded.allowed:
                self.send_error(502)
                return
            request = urllib.request.Request(
                self.path, headers={k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, headers, body = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, headers, body = error.code, error.headers, error.read()
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def recording_proxy(allowed: str) -> Iterator[tuple[Recorded, list[str]]]:
    """The record, and the browser flags that send everything through the proxy."""
    recorded = Recorded(allowed)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorded))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        # <-loopback>: Chromium otherwise sends 127.0.0.1 and localhost around any proxy.
        yield recorded, [f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>", *QUIET]
    finally:
        server.shutdown()
        server.server_close()

"""The console's HTTP server: GET of the pages and the stylesheet, and the login form when tokens are
required (--auth-file: scope `console`, as a bearer header or the cookie the form sets). Read-only:
nothing here changes the service. Over TLS when the service is."""

from __future__ import annotations

import http.server
import logging
import ssl
import threading
import urllib.parse
from http import HTTPStatus
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path

import jinja2

from service.auth import Authenticator
from service.config import Settings
from service.console.pages import PAGES, Pages, Sources

log = logging.getLogger(__name__)
COOKIE = "shifu_console"
SCOPE = "console"
MAX_FORM_BYTES = 4096
# Everything from this origin only, and the inline SVG charts' style attributes: a page can reach
# nothing outside the machine even if a value shown in it tried to.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FILES = resources.files("service.console")
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_FILES / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
STYLESHEET = (_FILES / "static" / "console.css").read_bytes()


class ConsoleServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, settings: Settings, pages: Pages, auth: Authenticator | None) -> None:
        super().__init__((settings.host, settings.console_port), Handler)
        self.pages, self.auth, self.tls = pages, auth, bool(settings.tls_cert)
        if settings.tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
            if settings.tls_client_ca:
                context.load_verify_locations(settings.tls_client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def stop(self) -> None:
        self.pages.stop()
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    server: ConsoleServer
    server_version = "shifu-console"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("console: " + format, *args)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/static/console.css":
            self._send(HTTPStatus.OK, STYLESHEET, "text/css; charset=utf-8")
        elif path == "/login":
            self._login_form(HTTPStatus.OK, "")
        elif path in PAGES:
            if self._allowed():
                page = self.server.pages.get(path)
                html = TEMPLATES.get_template("page.html").render(page=page, pages=PAGES)
                self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/login":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only\n", "text/plain; charset=utf-8")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_FORM_BYTES:
            self._login_form(HTTPStatus.BAD_REQUEST, "the form must carry a token")
            return
        token = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace")).get("token", [""])[0]
        denied = self._denied(token.strip())
        if denied is not None:
            self._login_form(denied[0], denied[1])
            return
        secure = "; Secure" if self.server.tls else ""
        self._send(
            HTTPStatus.SEE_OTHER,
            b"",
            "text/plain",
            {
                "Location": "/",
                "Set-Cookie": f"{COOKIE}={token.strip()}; HttpOnly; SameSite=Strict; Path=/{secure}",
            },
        )

    def _token(self) -> str:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        morsel = SimpleCookie(self.headers.get("Cookie") or "").get(COOKIE)
        return morsel.value if morsel is not None else ""

    def _denied(self, token: str) -> tuple[HTTPStatus, str] | None:
        auth = self.server.auth
        if auth is None:
            return None
        if not token:
            return HTTPStatus.UNAUTHORIZED, "a token with scope console is needed"
        decision = auth.decide_token(token, SCOPE)
        if decision.denied is None:
            return None
        status = HTTPStatus.UNAUTHORIZED if decision.denied[0] == "unauthenticated" else HTTPStatus.FORBIDDEN
        return status, decision.denied[1]

    def _allowed(self) -> bool:
        denied = self._denied(self._token())
        if denied is not None:
            self._login_form(*denied)
        return denied is None

    def _login_form(self, status: HTTPStatus, message: str) -> None:
        html = TEMPLATES.get_template("login.html").render(message=message, pages=PAGES)
        extra = (
            {"WWW-Authenticate": 'Bearer realm="shifu-console"'} if status == HTTPStatus.UNAUTHORIZED else {}
        )
        self._send(status, html.encode(), "text/html; charset=utf-8", extra)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {
            **HEADERS,
            "Content-Type": kind,
            "Content-Length": str(len(body)),
            **(extra or {}),
        }.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def serve(settings: Settings, sources: Sources) -> ConsoleServer:
    """Serves the console on host:console_port in the background; OSError naming the port if it cannot."""
    auth = Authenticator(Path(settings.auth_file)) if settings.auth_file else None
    pages = Pages(sources)
    try:
        server = ConsoleServer(settings, pages, auth)
    except OSError as error:
        raise OSError(
            f"cannot serve the console on {settings.host}:{settings.console_port} ({error.strerror}); "
            "choose --console-port"
        ) from None
    pages.start()
    threading.Thread(target=server.serve_forever, name="console", daemon=True).start()
    scheme = "https" if settings.tls_cert else "http"
    log.info("console on %s://%s:%d/", scheme, settings.host, server.server_address[1])
    return server

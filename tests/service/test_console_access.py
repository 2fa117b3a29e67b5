"""Who may read the console, and over what: with --auth-file only a token with scope console (bearer
header, or the login form's cookie: HttpOnly, SameSite=Strict), over TLS when the service is; and the
metrics port answers /metrics only."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port, make_certificates, start_server, write_auth_file

CLIENTS = {"operator": ("op-token", ["console"]), "storefront": ("shop-token", ["recommend"])}


def status(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> int:
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=30, context=context
        ).status
    except urllib.error.HTTPError as error:
        return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_only_a_console_token_reads_the_pages_by_header_or_login_cookie(
    model_dir: Path, tmp_path: Path
) -> None:
    auth = write_auth_file(tmp_path / "auth.toml", CLIENTS)
    port = free_port()
    running = start_server(model_dir, console_port=port, auth_file=str(auth))
    base = f"http://127.0.0.1:{port}"
    try:
        assert status(f"{base}/") == 401
        assert status(f"{base}/dispatch", {"Authorization": "Bearer wrong"}) == 401
        assert status(f"{base}/", {"Authorization": "Bearer shop-token"}) == 403
        assert status(f"{base}/tiers", {"Authorization": "Bearer op-token"}) == 200
        assert status(f"{base}/login") == 200
        opener = urllib.request.build_opener(NoRedirect)
        form = urllib.parse.urlencode({"token": "op-token"}).encode()
        with pytest.raises(urllib.error.HTTPError) as signed_in:
            opener.open(f"{base}/login", data=form, timeout=30)
        assert signed_in.value.code == 303
        cookie = signed_in.value.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert status(f"{base}/", {"Cookie": cookie.split(";")[0]}) == 200
        refused = urllib.parse.urlencode({"token": "shop-token"}).encode()
        with pytest.raises(urllib.error.HTTPError) as not_console:
            opener.open(f"{base}/login", data=refused, timeout=30)
        assert not_console.value.code == 403 and "Set-Cookie" not in not_console.value.headers
        assert status(f"{base}/nothing-here", {"Authorization": "Bearer op-token"}) == 404
    finally:
        running.shutdown()


def test_with_tls_the_console_is_served_over_tls(model_dir: Path, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    port = free_port()
    running = start_server(
        model_dir, console_port=port, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key)
    )
    try:
        context = ssl.create_default_context(cafile=str(certs.ca))
        assert status(f"https://127.0.0.1:{port}/", context=context) == 200
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plaintext gets no page
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    finally:
        running.shutdown()


def test_the_metrics_port_answers_metrics_only(model_dir: Path) -> None:
    port = free_port()
    running = start_server(model_dir, metrics_port=port)
    try:
        assert status(f"http://127.0.0.1:{port}/metrics") == 200
        assert status(f"http://127.0.0.1:{port}/") == 404
        assert status(f"http://127.0.0.1:{port}/anything") == 404
    finally:
        running.shutdown()

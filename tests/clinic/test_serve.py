"""`backcare serve` as a person runs it: the real server on a free port with the demo clinic, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import http.cookiejar
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_demo import backcare, command_env

from conftest import BACKCARE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    port: int

    def stop(self, how: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(how)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


def start(data_dir: Path, **env: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(port), "--threads", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=command_env(data_dir, **env),
        cwd=data_dir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"backcare serve exited with {process.returncode}:\n{out}\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Server(process, f"http://127.0.0.1:{port}", port)
        except OSError:
            time.sleep(0.2)
    process.kill()
    pytest.fail("backcare serve did not start listening within 60 seconds")


#: The tests that use the module's server stay on one xdist worker, which builds it once.
uses_server = pytest.mark.xdist_group("clinic-serve-fixture")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve")
    loaded = backcare(data_dir, "demo")
    assert loaded.returncode == 0, loaded.stderr
    running = start(data_dir)
    yield running
    if running.process.poll() is None:
        running.stop()


def browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def sign_in(opener: urllib.request.OpenerDirector, url: str, username: str, password: str) -> Any:
    """Fill in the sign-in form as a browser does: read the form's CSRF token, post it with the cookie."""
    page = opener.open(f"{url}/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "the sign-in form carries a CSRF token"
    form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password, "next": ""}
    request = urllib.request.Request(f"{url}/login/", data=urllib.parse.urlencode(form).encode())
    return opener.open(request, timeout=30)


def assert_security_headers(response: Any) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert csp, "every page has a content security policy"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@uses_server
def test_sign_in_page_is_served_with_security_headers(server):
    with urllib.request.urlopen(f"{server.url}/login/", timeout=30) as response:
        assert response.status == 200
        assert_security_headers(response)
        body = response.read().decode()
    assert "Sign in" in body and 'name="csrfmiddlewaretoken"' in body
    with urllib.request.urlopen(f"{server.url}/static/clinic/app.css", timeout=30) as response:
        assert response.status == 200 and "text/css" in response.headers["Content-Type"]


def app_code(secret: str) -> str:
    """The code an authenticator app shows now for this base32 key (RFC 6238, computed with django-otp's code)."""
    import base64

    from django_otp.oath import TOTP

    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time()
    return f"{totp.token():06d}"


@uses_server
def test_owner_signs_in_and_sees_the_dashboard(server):
    """The demo owner has no authenticator app yet: after the password the page to set one up comes first (owners
    must use one), then the dashboard."""
    opener = browser()
    response = sign_in(opener, server.url, "owner", "demo-owner-2026")
    assert response.status == 200 and response.geturl() == f"{server.url}/account/two-factor/setup/"
    assert_security_headers(response)
    page = response.read().decode()
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert secret and token, "the set-up page shows the key and carries a CSRF token"
    assert opener.open(f"{server.url}/dashboard/", timeout=30).geturl().endswith("/account/two-factor/setup/")
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "code": app_code(secret.group(1))})
    request = urllib.request.Request(response.geturl(), data=form.encode(), headers={"Referer": response.geturl()})
    done = opener.open(request, timeout=30)
    assert done.status == 200 and "Two-factor sign-in is on" in done.read().decode()
    response = opener.open(f"{server.url}/dashboard/", timeout=30)
    assert response.status == 200 and response.geturl() == f"{server.url}/dashboard/"
    assert_security_headers(response)
    again = opener.open(f"{server.url}/dashboard/", timeout=30)
    assert again.status == 200
    assert_security_headers(again)


@uses_server
def test_client_signs_in_to_the_portal(server):
    response = sign_in(browser(), server.url, "client", "demo-client-2026")
    assert response.status == 200 and response.geturl() == f"{server.url}/portal/"


@uses_server
def test_wrong_password_stays_on_the_sign_in_page(server):
    opener = browser()
    response = sign_in(opener, server.url, "therapist2", "not-the-password")
    assert response.geturl() == f"{server.url}/login/"
    assert "did not match" in response.read().decode()
    assert opener.open(f"{server.url}/dashboard/", timeout=30).geturl().startswith(f"{server.url}/login/")


@uses_server
def test_a_post_without_the_csrf_token_is_refused(server):
    form = urllib.parse.urlencode({"username": "owner", "password": "demo-owner-2026"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser().open(urllib.request.Request(f"{server.url}/login/", data=form), timeout=30)
    assert refused.value.code == 403


@uses_server
def test_pages_need_a_sign_in(server):
    response = browser().open(f"{server.url}/dashboard/", timeout=30)
    assert response.geturl().startswith(f"{server.url}/login/?next=")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_stops_cleanly(tmp_path, how):
    running = start(tmp_path)
    with urllib.request.urlopen(f"{running.url}/login/", timeout=30) as response:
        assert response.status == 200
    code, out, err = running.stop(how)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"running at http://localhost:{running.port}/" in out and "stopped" in out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=1).close()


# Production as an operator first starts it, on an empty data folder; TLS ends at a proxy, so no redirect here.
PRODUCTION = {
    "BACKCARE_ENV": "production",
    "BACKCARE_SECRET_KEY": "k3y-" + "Qx7vN2pL9zR4tW8m" * 4,
    "BACKCARE_AUDIT_KEY": "1:" + "Hm4sT8wQ2zK6pV9x" * 3,
    "BACKCARE_ALLOWED_HOSTS": "127.0.0.1",
    "BACKCARE_SSL_REDIRECT": "false",
}


def test_the_first_production_start_serves_the_static_files(tmp_path):
    running = start(tmp_path, **PRODUCTION)
    try:
        with urllib.request.urlopen(f"{running.url}/static/clinic/app.css", timeout=30) as response:
            assert response.status == 200 and "text/css" in response.headers["Content-Type"]
        with urllib.request.urlopen(f"{running.url}/login/", timeout=30) as response:
            page = response.read().decode()
        stylesheet = re.search(r'href="(/static/clinic/app\.[0-9a-f]+\.css)"', page)
        assert stylesheet, "production pages link the hashed name"
        with urllib.request.urlopen(f"{running.url}{stylesheet[1]}", timeout=30) as response:
            assert response.status == 200
    finally:
        running.stop()


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 10) -> tuple[bytes, float]:
    """Send a request's head and as much of its body as the server takes; the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head)
        with contextlib.suppress(OSError):
            sent = 0
            while sent < len(body):
                sent += conn.send(body[sent : sent + 65536])
        answer = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
    return answer, time.monotonic() - started


@uses_server
@pytest.mark.parametrize("path", ["/login/", "/api/clients", "/fhir/Bundle/$import"])
def test_a_body_over_the_upload_limit_is_refused_at_once(server, path):
    declared = 512 * 1024 * 1024  # announced; the server must refuse it at once, not wait for it or spool it
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    answer, took = raw_request(server.port, head, b"x" * (4 * 1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert took < 5, f"the refusal took {took:.1f} s"


@uses_server
def test_a_chunked_body_over_the_limit_is_cut_off(server):
    head = b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer, took = raw_request(server.port, head, chunk * 400)  # 25 MiB, over the 11 MiB limit
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert took < 10

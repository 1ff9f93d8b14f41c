"""The documented reverse-proxy deployment, whole: Debian's nginx with TLS (a self-signed certificate made here)
on loopback, in front of `backcare serve` in production mode with BACKCARE_BEHIND_PROXY=true, using the README's
own nginx configuration (examples/nginx-backcare.conf). Before, waitress dropped X-Forwarded-Proto, so every https
request was redirected to itself without end and no HSTS was sent; and every client was 127.0.0.1.

Clients connect from distinct loopback addresses (127.0.0.3, ...) so that the address Backcare records can be told
apart from nginx's own (127.0.0.1, the trusted proxy). Without nginx installed this says so and is skipped; under
CI (CI set) it fails instead (.ci/run installs nginx)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from test_demo import backcare, command_env

from conftest import BACKCARE, ROOT
from process_support import free_port

EXAMPLE = ROOT / "examples" / "nginx-backcare.conf"
PRODUCTION = {
    "BACKCARE_ENV": "production",
    "BACKCARE_SECRET_KEY": "k3y-" + "Qx7vN2pL9zR4tW8m" * 4,
    "BACKCARE_AUDIT_KEY": "1:" + "Hm4sT8wQ2zK6pV9x" * 3,
    "BACKCARE_ALLOWED_HOSTS": "127.0.0.1",
    "BACKCARE_BEHIND_PROXY": "true",
}


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found:
        return found
    message = "nginx is not installed: the reverse-proxy test needs it (apt-get install -y nginx; .ci/run does this)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Deployment:
    https_port: int
    http_port: int
    app_port: int
    context: ssl.SSLContext
    data_dir: Path

    def shell(self, code: str) -> object:
        done = backcare(self.data_dir, "manage", "shell", "-c", code, **PRODUCTION)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def nginx_config(folder: Path, cert: Path, key: Path, https_port: int, http_port: int, app_port: int) -> Path:
    site = EXAMPLE.read_text()
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("https://$host$request_uri", f"https://$host:{https_port}$request_uri"),
        ("/etc/letsencrypt/live/clinic.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/clinic.example.org/privkey.pem", str(key)),
        ("server_name clinic.example.org;", "server_name 127.0.0.1;"),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{app_port}"),
    ):
        assert old in site, f"{EXAMPLE.name} no longer has {old!r}"
        site = site.replace(old, new)
    (folder / "site.conf").write_text(site)
    temp = "\n".join(
        f"  {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
  access_log {folder / "access.log"};
{temp}
  include {folder / "site.conf"};
}}
"""
    path = folder / "nginx.conf"
    path.write_text(main)
    return path


def wait_for_port(port: int, process: subprocess.Popen[str], what: str) -> None:
    import socket

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"{what} exited with {process.returncode}:\n{out}\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{what} did not listen on {port} within 90 seconds")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    nginx = nginx_binary()
    folder = tmp_path_factory.mktemp("proxy")
    data_dir = folder / "clinic"
    data_dir.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    loaded = backcare(data_dir, "demo")
    assert loaded.returncode == 0, loaded.stderr
    https_port, http_port, app_port = free_port(), free_port(), free_port()
    app = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(app_port), "--threads", "4"],
        env=command_env(data_dir, **PRODUCTION),
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    config = nginx_config(folder, cert, key, https_port, http_port, app_port)
    proxy = subprocess.Popen(
        [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(app_port, app, "backcare serve")
        wait_for_port(https_port, proxy, "nginx")
        context = ssl.create_default_context(cafile=str(cert))
        yield Deployment(https_port, http_port, app_port, context, data_dir)
    finally:
        for process in (proxy, app):
            process.terminate()
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Visitor:
    """A browser at one loopback address: it keeps its cookies, follows no redirects."""

    deployment: Deployment
    address: str
    cookies: SimpleCookie = field(default_factory=SimpleCookie)

    def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, scheme: str = "https", **headers: str
    ) -> tuple[int, http.client.HTTPMessage, str]:
        d = self.deployment
        conn: http.client.HTTPConnection
        if scheme == "https":
            origin = f"https://127.0.0.1:{d.https_port}"
            conn = http.client.HTTPSConnection(
                "127.0.0.1", d.https_port, context=d.context, timeout=60, source_address=(self.address, 0)
            )
        else:
            port = d.http_port if scheme == "http" else d.app_port  # "direct": waitress itself, not via nginx
            origin = f"http://127.0.0.1:{port}"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(self.address, 0))
        sent = {"Host": origin.split("//")[1], **headers}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())
        body = None
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.cookies["csrftoken"].value}
            body = urllib.parse.urlencode(form)
            sent.update(
                {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin, "Referer": origin + path}
            )
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(value)
        return response.status, response.headers, text

    def sign_in(self, username: str, password: str) -> tuple[int, http.client.HTTPMessage, str]:
        self.request("GET", "/login/")
        return self.request("POST", "/login/", form={"username": username, "password": password})


def test_the_sign_in_page_answers_over_https_with_hsts(deployment):
    status, headers, body = Visitor(deployment, "127.0.0.3").request("GET", "/login/")
    assert status == 200, (status, headers.get("Location"))
    assert "Sign in" in body
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookie = next(v for v in headers.get_all("Set-Cookie") if v.startswith("csrftoken="))
    assert "Secure" in cookie


def test_http_redirects_once_to_https(deployment):
    visitor = Visitor(deployment, "127.0.0.3")
    status, headers, _ = visitor.request("GET", "/login/?next=/dashboard/", scheme="http")
    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1:{deployment.https_port}/login/?next=/dashboard/"
    status, _, _ = visitor.request("GET", "/login/?next=/dashboard/")
    assert status == 200, "one redirect, then the page"


AUDITED_ADDRESSES = """
import json
from backcare.clinic.models import AuditEvent
print(json.dumps(sorted(set(AuditEvent.objects.filter(user__username="therapist1", ip_address__isnull=False)
      .values_list("ip_address", flat=True)))))
"""

ATTEMPTS = """
import json
from django.db.models import Sum
from axes.models import AccessAttempt
rows = AccessAttempt.objects.values("ip_address").annotate(n=Sum("failures_since_start"))
print(json.dumps({row["ip_address"]: row["n"] for row in rows}))
"""


def test_the_audit_records_the_client_address_not_the_proxy_s(deployment):
    owner = Visitor(deployment, "127.0.0.4")  # a therapist: the demo owner would first set up an authenticator app
    status, headers, _ = owner.sign_in("therapist1", "demo-therapist1-2026")
    assert status == 302 and headers["Location"] == "/", headers
    # A client's own X-Forwarded-For is replaced by nginx, never believed.
    status, _, page = owner.request("GET", "/dashboard/", **{"X-Forwarded-For": "198.51.100.9"})
    assert status == 200 and "Sign out" in page
    assert deployment.shell(AUDITED_ADDRESSES) == ["127.0.0.4"]


def test_the_lockout_counts_the_client_address(deployment):
    spray = Visitor(deployment, "127.0.0.5")
    statuses = [spray.sign_in(f"nobody{n}", "Winter2026!")[0] for n in range(20)]
    assert statuses == [200] * 19 + [429]
    assert deployment.shell(ATTEMPTS).get("127.0.0.5") == 20
    assert "127.0.0.1" not in deployment.shell(ATTEMPTS), "the proxy's address is not what is counted"
    # Everyone else behind the same proxy signs in as usual.
    status, _, _ = Visitor(deployment, "127.0.0.6").sign_in("therapist1", "demo-therapist1-2026")
    assert status == 302


def test_forged_proxy_headers_sent_to_waitress_directly_are_ignored(deployment):
    forged = {"X-Forwarded-For": "127.0.0.9", "X-Forwarded-Proto": "https"}
    status, headers, _ = Visitor(deployment, "127.0.0.2").request("GET", "/login/", scheme="direct", **forged)
    assert status == 301 and headers["Location"].startswith("https://"), "the scheme was not believed"
    assert "Strict-Transport-Security" not in headers
    # From the proxy's own address the same headers are trusted: that is the only difference.
    status, headers, _ = Visitor(deployment, "127.0.0.1").request("GET", "/login/", scheme="direct", **forged)
    assert status == 200 and "Strict-Transport-Security" in headers

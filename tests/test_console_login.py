"""Console sign-in over a real uvicorn socket (issue 16): proxies are trusted only when
configured, ``host --console`` takes the console's cookie/HSTS options, and passwords
are checked for strength (zxcvbn) in the ops layer and the admin CLI."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from host_fixture import HostProc, start_host
from test_ops_support import run, seeded

from clearpos.ops.common import Refused
from clearpos.ops.users import add_user, check_password
from clearpos.store import open_database


@pytest.mark.parametrize(
    "weak", ["password", "12345678", "qwertyuiop", "li123456", "Password1", "zhao-zhao-zhao"]
)
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(Refused, match="too easy to guess"):
        check_password(weak, "zhao")


def test_strong_passwords_pass_and_length_is_still_checked() -> None:
    for good in ("correct horse battery", "kim-horse-battery-7", "Tea at 4 on Huaihai Rd"):
        check_password(good, "kim")
    with pytest.raises(Refused, match="at least 8"):
        check_password("x7#Qz!", "kim")
    with pytest.raises(Refused, match="at most 128"):
        check_password("correct horse " * 20, "kim")


def test_admin_cli_refuses_a_weak_password(tmp_path: Path) -> None:
    db = seeded(tmp_path)
    for weak in ("password", "12345678"):
        rc, out, err = run(
            "admin", "--db", db.url, "user", "add", "--username", "wu", "--role", "operator",
            "--by", "root", "--password-stdin", stdin=weak + "\n",
        )  # fmt: skip
        assert rc == 1 and "too easy to guess" in err, (out, err)
    with db.reader() as tx:
        assert tx.conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0


# ----------------------------------------------------------------------------- real sockets


@contextmanager
def console_host(tmp: Path, *extra: str) -> Iterator[tuple[HostProc, str, int]]:
    h = start_host(tmp, extra=("--console", "127.0.0.1:0", *extra))
    try:
        assert h.proc.stdout is not None
        m = re.search(r"clearpos console on http://([\d.]+):(\d+)", h.proc.stdout.readline())
        assert m, h.log_text()
        with open_database(h.url).transaction() as tx:
            add_user(tx, "kim", "operator", "kim-horse-battery-7", by="test")
        yield h, m.group(1), int(m.group(2))
    finally:
        h.stop()


class Http:
    """One cookie-keeping HTTP/1.1 client over a real socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                k, _, rest = value.partition("=")
                self.cookies[k] = rest.split(";", 1)[0]
        out = {k.lower(): v for k, v in r.getheaders()}
        out["set-cookie"] = " | ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie")
        conn.close()
        return r.status, out, text

    def login(self, user: str, password: str, **headers: str) -> int:
        _, _, page = self.request("GET", "/login", **headers)
        m = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert m, page[:300]
        form = {"csrf": m.group(1), "username": user, "password": password, "next": "/"}
        return self.request("POST", "/login", form, **headers)[0]


def _addresses(h: HostProc, user: str) -> list[str]:
    rows = h.rows("SELECT detail FROM audit WHERE entity = 'user' AND entity_id = ?", (user,))
    return re.findall(r'"address": "([^"]+)"', " ".join(r["detail"] for r in rows))


def test_x_forwarded_for_is_not_believed_by_default(tmp_path: Path) -> None:
    with console_host(tmp_path) as (h, host, port):
        c = Http(host, port)
        codes = [c.login("kim", f"wrong-{i}", X_Forwarded_For=f"203.0.113.{i}") for i in range(6)]
        assert codes == [401, 401, 401, 401, 429, 429], codes
        assert set(_addresses(h, "kim")) == {"127.0.0.1"}


def test_a_trusted_proxy_is_believed(tmp_path: Path) -> None:
    with console_host(tmp_path, "--trusted-proxy", "127.0.0.1") as (h, host, port):
        c = Http(host, port)
        assert c.login("kim", "wrong-1", X_Forwarded_For="203.0.113.5") == 401
        assert _addresses(h, "kim") == ["203.0.113.5"]


def test_host_console_takes_secure_cookies_and_hsts(tmp_path: Path) -> None:
    with console_host(tmp_path, "--secure-cookies", "--hsts", "31536000") as (_h, host, port):
        status, headers, _ = Http(host, port).request("GET", "/login")
        assert status == 200
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert "Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    (tmp_path / "plain").mkdir()
    with console_host(tmp_path / "plain") as (_h, host, port):
        _, headers, _ = Http(host, port).request("GET", "/login")
        assert "strict-transport-security" not in headers
        assert "Secure" not in headers["set-cookie"]

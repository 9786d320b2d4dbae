"""deploy/nginx.conf, run for real by Debian's nginx in front of a LiveServer.

The deployment's site file is used as it is but for where it listens and
where ``app`` is and where its files are: the compose file's ``server
app:8000 resolve;`` (Docker's DNS, nginx 1.27.3 and later) becomes the
LiveServer's address, ``listen 80`` a free loopback port, and the files
volume's ``alias /data/files/;`` the LiveServer's files directory. Everything
else (the upgrade, the headers, the timeouts, the body limits) is what
production runs.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from testkit import ROOT
from testkit.debian import ensure_package
from testkit.servers import free_port, port_open

PACKAGE = "nginx"  # Debian's package
NGINX = Path("/usr/sbin/nginx")
MISSING = (
    "no nginx: install Debian's nginx package (as root: apt-get install nginx) "
    "to run the proxy tests"
)
SITE = ROOT / "deploy" / "nginx.conf"

MAIN = """\
worker_processes 1;
daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    # As the nginx image's own http block: types by file extension, else octet-stream.
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def ensure_nginx() -> str | None:
    """Find nginx, installing Debian's package first when it is missing and we can."""
    return ensure_package(PACKAGE, NGINX, MISSING)


def site_for(app: str, port: int, files: Path) -> str:
    """deploy/nginx.conf with the app at ``app`` (host:port), listening on ``port``, and
    sending attachments from the directory ``files``."""
    text = SITE.read_text()
    text, servers = re.subn(r"^(\s*)server app:8000[^;]*;", rf"\1server {app};", text, flags=re.M)
    text, listens = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", text, flags=re.M)
    text, aliases = re.subn(r"^(\s*)alias /data/files/;", rf"\1alias {files}/;", text, flags=re.M)
    if servers != 1 or listens != 1 or aliases != 1:
        raise RuntimeError(
            "deploy/nginx.conf no longer has one `server app:8000`, `listen 80` and "
            "`alias /data/files/`"
        )
    return text


@contextlib.contextmanager
def nginx_in_front(app: str, files: Path | None = None) -> Iterator[str]:
    """Run nginx with the deployment's site file in front of ``app``; yield its base URL.

    ``files``: the app's files directory (DATA_DIR/files), which nginx sends
    attachments from when the app answers with X-Accel-Redirect (default: an
    empty one).
    """
    directory = Path(tempfile.mkdtemp(prefix="multichat-nginx-"))
    port = free_port()
    if files is None:
        files = directory / "files"
        files.mkdir()
    (directory / "site.conf").write_text(site_for(app, port, files))
    (directory / "nginx.conf").write_text(MAIN.format(dir=directory))
    log = open(directory / "stdout.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                errors = (
                    (directory / "error.log").read_text(errors="replace")
                    if (directory / "error.log").exists()
                    else ""
                )
                raise RuntimeError(f"nginx did not start:\n{errors}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

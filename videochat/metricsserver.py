"""A ``/metrics`` page for a process that serves no HTTP: the Celery worker.

In one container the web pool's ``/metrics`` already sums every process (they share
the metrics directory). Where the workers run in containers of their own (compose
services, Kubernetes pods), their directory is their own and nobody would serve it:
with ``METRICS_WORKER_PORT`` set, the Celery worker's main process serves it here,
bearer token only (``METRICS_TOKEN``, required then). Process counters only: the
store figures (presence, breakers, dead letters) come from the web nodes.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metricsview

log = structlog.get_logger(__name__)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] != "/metrics":
            self._reply(404, b"not found\n")
            return
        status = metricsview.bearer_status(self.headers.get("Authorization", ""))
        if status != 200:
            self._reply(status, b"a bearer token only\n")
            return
        body = generate_latest(metricsview.registry(stores=False))
        self._reply(200, body, content_type=CONTENT_TYPE_LATEST)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return  # scrapes every 15 s are not news


def serve_in_thread(*, bind: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((bind, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics.serving", bind=bind, port=server.server_address[1])
    return server

"""A real S3 endpoint for the suite: moto's server on 127.0.0.1, behind a proxy that injects faults.

The lake reaches it only through an Airflow connection (``AIRFLOW_CONN_PIPELINES_LAKE``) whose
endpoint is the proxy, so worker processes see the same faults. A :class:`Fault` answers a bounded
number of matching requests with an S3 error (500 InternalError, 503 SlowDown, ...), either
instead of forwarding them or after forwarding them (the write happened, the answer was lost).
A fault may also run a callback at that moment (``then``): the crash tests SIGKILL the writer
there, while its request is in flight, before or after it reached S3.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.server import ThreadedMotoServer

BUCKET = "reliability"
PASSWORD = "moto-secret-key-never-printed"  # the connection's secret: must never be printed
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


@dataclass
class Fault:
    """Answer ``times`` requests matching method and path fragment with ``status``/``code``."""

    method: str
    path: str
    status: int
    code: str
    times: int
    after_forward: bool = False  # forward first, then lose the answer
    then: Callable[[], None] | None = None  # run when the fault fires (e.g. kill the writer)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and self.path in path


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *args):  # quiet
        pass

    def setup(self) -> None:
        super().setup()  # headers and body go out as separate writes: no Nagle delay on them
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        fault = self.server.take_fault(self.command, self.path)
        if fault is not None and not fault.after_forward:
            return self._error(fault)
        status, headers, data = self.server.forward(self.command, self.path, self.headers, body)
        if fault is not None:
            return self._error(fault)
        self._answer(status, headers, data)

    def _answer(self, status, headers, data) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, fault: Fault) -> None:
        if fault.then is not None:
            fault.then()
            self.close_connection = True
            return  # the client is gone: nothing to answer
        xml = f"<Error><Code>{fault.code}</Code><Message>injected</Message></Error>".encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(xml)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port: int):
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.injected = 0
        self.lock = threading.Lock()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    self.injected += 1
                    return fault
        return None

    def forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() != "transfer-encoding"}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()


class S3Server:
    """moto on 127.0.0.1 (port chosen by the OS) and the proxy in front of it."""

    def __init__(self) -> None:
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.proxy: _ProxyServer | None = None

    def start(self) -> None:
        self.moto.start()
        _, port = self.moto.get_host_and_port()
        self.proxy = _ProxyServer(port)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        import boto3

        boto3.client("s3", **self.client_args()).create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy.server_close()
        self.moto.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy.server_address[1]}"

    def client_args(self) -> dict:
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": "moto-access-key",
            "aws_secret_access_key": PASSWORD,
            "region_name": "us-east-1",
        }

    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_PIPELINES_LAKE``: the aws connection the lake is reached through."""
        conn = {
            "conn_type": "aws",
            "login": "moto-access-key",
            "password": PASSWORD,
            "extra": {
                "endpoint_url": self.endpoint,
                "region_name": "us-east-1",
                # botocore would retry too, with long back-off: leave retrying to the lake
                "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
            },
        }
        return {"AIRFLOW_CONN_PIPELINES_LAKE": json.dumps(conn)}

    def inject(self, *faults: Fault) -> None:
        with self.proxy.lock:
            self.proxy.faults = list(faults)
            self.proxy.injected = 0

    def clear(self) -> int:
        """Remove the faults; how many requests were answered with an injected error since
        the last :meth:`inject` or :meth:`clear` (the count starts again from 0)."""
        with self.proxy.lock:
            self.proxy.faults = []
            injected, self.proxy.injected = self.proxy.injected, 0
            return injected

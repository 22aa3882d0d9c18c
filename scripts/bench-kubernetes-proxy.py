#!/usr/bin/env python3
"""A counting HTTP proxy in front of the API server, for scripts/bench-kubernetes: the daemon talks plain HTTP to
it on loopback, it forwards over TLS (verified against the test CA) and streams answers (watches) back, and it
writes one line per request ("METHOD path?query") to LOG. Each answer closes its connection.

    bench-kubernetes-proxy.py PORT UPSTREAM CA LOG
"""
import http.client
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, CA, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
HOST = urllib.parse.urlparse(UPSTREAM)
CONTEXT = ssl.create_default_context(cafile=CA)
LOCK = threading.Lock()
SKIP = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


class Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        with LOCK, open(LOG, "a") as log:
            log.write(f"{self.command} {self.path}\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPSConnection(HOST.hostname, HOST.port, context=CONTEXT, timeout=400)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIP}
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in SKIP:
                self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while chunk := answer.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
        upstream.close()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Forward).serve_forever()

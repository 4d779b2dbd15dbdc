# A recording HTTP proxy for the agent checks: forwards every request to an upstream server,
# streams the answer back as it comes, and appends one JSON line per exchange (method, path,
# request headers without credentials, request body, status, error body, seconds to the first
# streamed delta, i.e. the time to first token) to a log.
#
# Usage: python3 record_proxy.py UPSTREAM_URL LOG_FILE PORT_FILE
# It listens on 127.0.0.1 on a free port, writes that port to PORT_FILE and serves until killed.
import http.client
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
LOG = open(sys.argv[2], "a", encoding="utf-8")
LOG_LOCK = threading.Lock()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade", "proxy-connection"}
SECRET = {"authorization", "x-api-key", "cookie"}


def parsed(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=900)
        started, first_delta = time.monotonic(), None
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            kept = bytearray()
            while chunk := answer.read1(65536):
                if first_delta is None and b"delta" in chunk:
                    first_delta = round(time.monotonic() - started, 3)
                if answer.status >= 400 and len(kept) < 65536:
                    kept += chunk
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            status, error = answer.status, (parsed(bytes(kept)) if kept else None)
        except OSError as e:
            status, error = 599, f"proxy: {e}"
            self.close_connection = True
        finally:
            upstream.close()
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() not in SECRET},
            "body": parsed(body) if body else None,
            "status": status,
            "error": error,
            "first_delta_s": first_delta,
            "total_s": round(time.monotonic() - started, 3),
        }
        with LOG_LOCK:
            LOG.write(json.dumps(entry) + "\n")
            LOG.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Proxy)
with open(sys.argv[3], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()

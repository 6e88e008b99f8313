"""The one HTTP and TLS server setup of the test doubles: the listening sockets, the TLS context
of a certificate and key, and the request handler they answer from. Each double uses these
instead of its own, so a change to how the doubles serve (an address form, the TLS settings) is
made once. It changes no double's answers: what a double says stays in the double.

    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    from doubles import server   # in a double under Tests/doubles/
"""
import os
import socket
import ssl
import threading
import time

# http.server (with the email, html and mimetypes modules it loads) and what issue_certificate
# runs are imported where they are used: the doubles that speak below HTTP (silent-server,
# hostile-server's DNS and TLS modes) start as fast as they did alone.
#
# Ready, not a guess: a double that its test starts and then connects to says when it listens,
# one line `listening ADDR:PORT` on stdout once its socket is bound (ready() below), and the test
# waits for that line (Tests/IntegrationTests/TestDouble.swift, sandbox-node's wait_for), with a
# bound and a failure naming the double, never a fixed sleep: under load Python alone takes 0.4 s
# to start. NODE_AGENT_DOUBLE_BIND_DELAY=SECONDS (tests of that waiting only) delays each bind.


def _bind_delay():
    delay = float(os.environ.get("NODE_AGENT_DOUBLE_BIND_DELAY") or 0)
    if delay > 0:
        time.sleep(delay)


def ready(sock):
    """Says on stdout that the double listens on SOCK (bound, and listening if TCP): one line,
    `listening ADDR:PORT`, flushed. Call it once every socket the test reaches is bound."""
    host, port = sock.getsockname()[:2]
    print(f"listening {host}:{port}", flush=True)


def address(listen):
    """`ADDR:PORT` (ADDR may be a bracketed IPv6 address) as (ADDR, PORT)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def tls_context(cert, key):
    """A server's TLS context for the certificate (chain) and key in these PEM files, with
    Python's defaults (TLS 1.2 and 1.3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def issue_certificate(addr, ca_cert, ca_key):
    """A server certificate for IP:ADDR issued by the CA in CA_CERT and CA_KEY (an EC P-256 key,
    serverAuth, 30 days), made with openssl in a fresh folder; returns (cert, key) paths."""
    import subprocess
    import tempfile

    pki = tempfile.mkdtemp(prefix="double-pki-")
    with open(f"{pki}/ext", "w") as f:
        f.write(f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:{addr}\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={addr}",
                    "-keyout", f"{pki}/key", "-out", f"{pki}/csr"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", f"{pki}/csr", "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-CAserial", f"{pki}/srl", "-days", "30", "-extfile", f"{pki}/ext", "-out", f"{pki}/crt"],
                   check=True, capture_output=True)
    return f"{pki}/crt", f"{pki}/key"


def _handler():
    import json
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        """The doubles' request handler: http.server's, without its access log on stderr (a
        double logs what its tests read, itself)."""

        def log_message(self, *args):
            pass

        def send_json(self, status, body, headers=()):
            """Answers STATUS with BODY as JSON (Content-Type and Content-Length, then HEADERS)."""
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def __getattr__(name):
    """`server.Handler`, the doubles' request handler class, made on first use."""
    if name == "Handler":
        globals()["Handler"] = handler = _handler()
        return handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def http_server(listen, handler, cert=None, key=None):
    """An HTTP server on `ADDR:PORT` answering from HANDLER, a thread per connection; with CERT
    and KEY it speaks HTTPS (the listening socket wrapped: each connection's handshake is made as
    it is accepted). Call serve_forever(), or in_background()."""
    from http.server import ThreadingHTTPServer

    _bind_delay()
    server = ThreadingHTTPServer(address(listen), handler)
    if cert:
        server.socket = tls_context(cert, key).wrap_socket(server.socket, server_side=True)
    return server


def in_background(server):
    """Serves SERVER from a daemon thread (it ends with the program)."""
    threading.Thread(target=server.serve_forever, daemon=True).start()


def tcp_listener(addr, port, backlog):
    """A listening TCP socket on ADDR:PORT (SO_REUSEADDR, as http.server's), for the doubles
    that speak below HTTP."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _bind_delay()
    s.bind((addr, port))
    s.listen(backlog)
    return s


def accept_forever(listener, serve):
    """Accepts connections on LISTENER forever, each handed to SERVE(conn) on a daemon thread."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def udp_socket(addr, port):
    """A UDP socket bound to ADDR:PORT."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _bind_delay()
    s.bind((addr, port))
    return s

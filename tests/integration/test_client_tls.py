"""tep_operator.client over TLS, as against a real API server: the cluster's CA, a client
certificate or a token, and the API's error Status. The emulator speaks plain HTTP; this
server speaks HTTPS with certificates made by openssl for the test."""

import base64
import http.server
import json
import pathlib
import shutil
import ssl
import subprocess
import threading

import pytest
import urllib3
import yaml

from tep_operator import connection
from tep_operator.client import ApiException, Kube, describe_error, is_transient

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-subj", "/CN=test-ca", "-days", "1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=tep-{name}", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "1", *extra, cwd=d)  # fmt: skip
    return d


@pytest.fixture
def server(pki):
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            cert = self.connection.getpeercert() or {}
            subject = dict(x[0] for x in cert.get("subject", ()))
            seen.append(
                {"path": self.path, "cn": subject.get("commonName"), "auth": self.headers["Authorization"]}
            )
            if self.path.endswith("/missing"):
                status, body = (
                    404,
                    {"kind": "Status", "message": 'testplans "missing" not found', "code": 404},
                )
            else:
                status, body = 200, {"kind": "TestPlan", "metadata": {"name": "smoke", "namespace": "qa"}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, when given, must be the CA's
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def kubeconfig(path: pathlib.Path, server: str, cluster: dict, user: dict) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "t",
                "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return str(path)


def b64file(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_client_certificate_and_the_clusters_ca_inline(pki, server, tmp_path):
    url, seen = server
    user = {
        "client-certificate-data": b64file(pki / "client.crt"),
        "client-key-data": b64file(pki / "client.key"),
    }
    cluster = {"certificate-authority-data": b64file(pki / "ca.crt")}
    kube = Kube(connection.load(kubeconfig(tmp_path / "config", url, cluster, user)))
    assert kube.get_plan("qa", "smoke")["metadata"]["name"] == "smoke"
    assert seen == [
        {"path": "/apis/tep.dev/v1alpha1/namespaces/qa/testplans/smoke", "cn": "tep-client", "auth": None}
    ]


def test_a_token_the_ca_as_a_file_and_an_error_status(pki, server, tmp_path):
    url, seen = server
    shutil.copy(pki / "ca.crt", tmp_path / "ca.crt")
    config = kubeconfig(tmp_path / "config", url, {"certificate-authority": "ca.crt"}, {"token": "s3cret"})
    kube = Kube(connection.load(config))
    assert kube.find_plan("qa", "missing") is None
    with pytest.raises(ApiException) as caught:
        kube.get_plan("qa", "missing")
    assert caught.value.status == 404 and not is_transient(caught.value)
    assert describe_error(caught.value) == 'the API server answered 404: testplans "missing" not found'
    assert {s["auth"] for s in seen} == {"Bearer s3cret"}


def test_a_server_the_ca_did_not_sign_is_refused(server, tmp_path):
    url, seen = server
    kube = Kube(connection.load(kubeconfig(tmp_path / "config", url, {}, {"token": "s3cret"})))
    with pytest.raises(urllib3.exceptions.HTTPError, match="CERTIFICATE_VERIFY_FAILED"):
        kube.get_plan("qa", "smoke")
    assert seen == []  # the token never left
    insecure = kubeconfig(tmp_path / "insecure", url, {"insecure-skip-tls-verify": True}, {"token": "s3cret"})
    assert Kube(connection.load(insecure)).get_plan("qa", "smoke")["kind"] == "TestPlan"

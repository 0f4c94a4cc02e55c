"""Server start-up modes: plain HTTP and an operator-supplied certificate."""

from __future__ import annotations

import subprocess

import ebml
from conftest import HOST, block_keys, create_stream, get_media, spec_keys, unique_name, wait_fragments, whole_second_ms


def _round_trip(srv, clip):
    name = unique_name("mode")
    create_stream(srv, name)
    ep = srv.kv().get_data_endpoint(StreamName=name, APIName="PUT_MEDIA")["DataEndpoint"]
    assert ep == srv.data_endpoint
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip, timecode_base=start)
    res = srv.put_media(name, kvs.parts(), start_timestamp_ms=start, wait_persisted_timecode=kvs.fragments[-1].timecode)
    assert res.status == 200
    assert len([a for a in res.acks if a["EventType"] == "PERSISTED"]) == len(kvs.fragments), res.acks
    assert len(wait_fragments(srv, name, len(kvs.fragments))) == len(kvs.fragments)
    reader = get_media(srv, name, {"StartSelectorType": "EARLIEST"}, until_fragments=len(kvs.fragments))
    for frag, spec in zip(reader.fragments, kvs.fragments):
        assert block_keys(frag.cluster.blocks) == spec_keys(spec)
    return res


def test_plain_http_mode(private_server, clip4):
    srv = private_server("--plain-http")
    res = _round_trip(srv, clip4)
    assert res.alpn is None
    cli = srv.aws_cli("kinesisvideo", "list-streams")
    assert cli.json["StreamInfoList"]


def test_operator_certificate(private_server, clip4, tmp_path):
    ca_key, ca_pem = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, crt = tmp_path / "srv.key", tmp_path / "srv.csr", tmp_path / "srv.pem"
    ext = tmp_path / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{HOST},DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key), "-out", str(ca_pem), "-days", "2", "-subj", "/CN=e2e operator CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kvs.e2e")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))

    srv = private_server("--tls-cert", str(crt), "--tls-key", str(key), ca_file=str(ca_pem))
    # The served chain is the operator's: it verifies against the operator CA only.
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca_pem))
    with socket.create_connection((HOST, srv.port)) as raw, ctx.wrap_socket(raw, server_hostname=HOST) as s:
        der = s.getpeercert(binary_form=True)
    served = ssl.DER_cert_to_PEM_cert(der)
    assert "".join(served.split()) == "".join(crt.read_text().split())
    res = _round_trip(srv, clip4)
    assert res.alpn == "http/1.1"

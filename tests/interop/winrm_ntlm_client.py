#!/usr/bin/python3
"""Independent NTLM WEF sources for interop tests (no wec code).

  --mode sequence  pywinrm (transport='ntlm', message_encryption='always'; requests-ntlm and
                   ntlm-auth do NTLMSSP and the sealing): Enumerate on the manager URL, then on
                   the subscription's NotifyTo URL Heartbeat and Events (the real Windows messages
                   of tests/data/wsman); then a replayed sealed body on that connection, a
                   tampered one and a reordered one (the second of two sealed requests sent
                   first) on fresh sessions, each of which must be refused (400).
  --mode spnego    python3-gssapi with SPNEGO over gss-ntlmssp (NTLM inside SPNEGO, another NTLM
                   implementation's initiator): auth, then a sealed Enumerate.
  --mode cross     ntlm-auth by hand: NEGOTIATE on one connection, AUTHENTICATE on another: the
                   second connection must get 401.
  --mode v1        ntlm-auth with ntlm_compatibility=1 (NTLMv1 responses): prints the status of
                   the AUTHENTICATE (401 = refused, 200 = accepted).

Prints one JSON object per step on stdout; exits 1 at the first step whose answer is wrong.
Debian's OpenSSL 3 has no MD4 (the NT hash): pycryptodome's MD4 stands in for hashlib's.
"""
import argparse
import base64
import hashlib
import http.client
import struct
import sys
import urllib.parse

from Cryptodome.Hash import MD4
from wef_peer import Failure, main_steps, pywinrm_sequence, sample_text, step

_hashlib_new = hashlib.new


def _new(name, data=b"", **kw):
    if name.lower() == "md4":
        h = MD4.new()
        h.update(data)
        return h
    return _hashlib_new(name, data, **kw)


hashlib.new = _new

BOUNDARY = "Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


def run_sequence(args):
    import winrm.protocol

    def protocol(url):
        p = winrm.protocol.Protocol(endpoint=url, transport="ntlm", username=args.user,
                                    password=args.password, message_encryption="always")
        return p

    # Keep the last sealed request (the Events) to replay it.
    sent = {}

    def capture_requests(p):
        enc = p.transport.encryption
        prepare = enc.prepare_encrypted_request

        def capture(session, endpoint, message):
            req = prepare(session, endpoint, message)
            sent["req"] = req
            return req

        enc.prepare_encrypted_request = capture

    s = args.samples
    p = pywinrm_sequence(protocol, args, before_events=capture_requests)
    if args.skip_negative:
        return

    # The same sealed bytes again (a replay): refused.
    r = p.transport.session.send(sent["req"], timeout=30)
    step("replay", status=r.status_code)
    if r.status_code != 400:
        raise Failure(f"replayed body: HTTP {r.status_code} (want 400)")

    # A fresh session (new context), one sealed byte flipped: refused.
    p = protocol(args.url)
    p.transport.build_session()
    enc = p.transport.encryption
    req = enc.prepare_encrypted_request(p.transport.session, args.url,
                                        sample_text(s, "enumerate.utf16").encode("utf-8"))
    body = bytearray(req.body)
    at = body.find(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
    body[at + 4 + 16 + 10] ^= 0x01  # a byte of the sealed message, after the signature
    req.body = bytes(body)
    r = p.transport.session.send(req, timeout=30)
    step("tamper", status=r.status_code)
    if r.status_code != 400:
        raise Failure(f"tampered body: HTTP {r.status_code} (want 400)")

    # A fresh session, two requests sealed in order (sequence numbers n, n+1), the second sent
    # first: refused.
    p = protocol(args.url)
    p.transport.build_session()
    enc = p.transport.encryption
    body = sample_text(s, "enumerate.utf16").encode("utf-8")
    enc.prepare_encrypted_request(p.transport.session, args.url, body)
    second = enc.prepare_encrypted_request(p.transport.session, args.url, body)
    r = p.transport.session.send(second, timeout=30)
    step("reorder", status=r.status_code)
    if r.status_code != 400:
        raise Failure(f"reordered body: HTTP {r.status_code} (want 400)")


def ntlm_context(args, compatibility=3):
    from ntlm_auth.ntlm import NtlmContext
    domain, _, user = args.user.rpartition("\\")
    return NtlmContext(user, args.password, domain=domain, workstation="WIN10",
                       ntlm_compatibility=compatibility)


def post_auth(conn, path, token):
    conn.request("POST", path, body=b"",
                 headers={"Authorization": "Negotiate " + base64.b64encode(token).decode(),
                          "Content-Length": "0", "Connection": "Keep-Alive"})
    resp = conn.getresponse()
    resp.read()
    return resp


def run_cross(args):
    url = urllib.parse.urlsplit(args.url)
    ctx = ntlm_context(args)
    a = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    resp = post_auth(a, url.path, ctx.step())
    www = resp.getheader("WWW-Authenticate", "")
    if resp.status != 401 or not www.startswith("Negotiate "):
        raise Failure(f"NEGOTIATE: HTTP {resp.status} {www!r} (want 401 with a challenge)")
    step("challenge", status=resp.status)
    authenticate = ctx.step(base64.b64decode(www.split(" ", 1)[1]))
    b = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    resp = post_auth(b, url.path, authenticate)
    step("authenticate_elsewhere", status=resp.status)
    if resp.status != 401:
        raise Failure(f"AUTHENTICATE on another connection: HTTP {resp.status} (want 401)")
    # The same AUTHENTICATE on the CHALLENGE's own connection is accepted.
    resp = post_auth(a, url.path, authenticate)
    step("authenticate_same", status=resp.status)
    if resp.status != 200:
        raise Failure(f"AUTHENTICATE on the CHALLENGE's connection: HTTP {resp.status}")


def run_v1(args):
    url = urllib.parse.urlsplit(args.url)
    ctx = ntlm_context(args, compatibility=1)
    a = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    resp = post_auth(a, url.path, ctx.step())
    www = resp.getheader("WWW-Authenticate", "")
    if resp.status != 401 or not www.startswith("Negotiate "):
        raise Failure(f"NEGOTIATE: HTTP {resp.status} {www!r}")
    authenticate = ctx.step(base64.b64decode(www.split(" ", 1)[1]))
    nt_len = struct.unpack_from("<H", authenticate, 20)[0]
    resp = post_auth(a, url.path, authenticate)
    step("v1", status=resp.status, nt_response_length=nt_len)


def run_spnego(args):
    import gssapi
    spnego = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
    ntlm = gssapi.OID.from_int_seq("1.3.6.1.4.1.311.2.2.10")
    domain, _, user = args.user.rpartition("\\")
    name = gssapi.Name(args.user, gssapi.NameType.user)
    creds = gssapi.Credentials(name=name, usage="initiate", mechs=[spnego],
                               store={b"ntlmssp_password": args.password.encode(),
                                      b"ntlmssp_domain": domain.encode()})
    gssapi.raw.set_neg_mechs(creds, [ntlm])
    target = gssapi.Name("HTTP@" + args.host, gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=target, creds=creds, mech=spnego, usage="initiate",
                                 flags=[gssapi.RequirementFlag.confidentiality,
                                        gssapi.RequirementFlag.integrity])
    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    token = ctx.step()
    legs = 0
    while True:
        resp = post_auth(conn, url.path, token)
        legs += 1
        www = resp.getheader("WWW-Authenticate", "")
        if resp.status == 200:
            if www.startswith("Negotiate "):
                ctx.step(base64.b64decode(www.split(" ", 1)[1]))
            break
        if resp.status != 401 or not www.startswith("Negotiate ") or legs > 3:
            raise Failure(f"SPNEGO leg {legs}: HTTP {resp.status} {www!r}")
        token = ctx.step(base64.b64decode(www.split(" ", 1)[1]))
    if not ctx.complete:
        raise Failure("SPNEGO: context not complete")
    step("auth", status=200, legs=legs, mech=str(ctx.mech))
    plain = open(args.samples + "enumerate.utf16", "rb").read()
    wrapped = ctx.wrap(plain, True).message
    body = (f"--{BOUNDARY}\r\nContent-Type: {PROTOCOL}\r\n"
            f"OriginalContent: type=application/soap+xml;charset=UTF-16;Length={len(plain)}\r\n"
            f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n").encode()
    body += struct.pack("<I", 16) + wrapped + f"--{BOUNDARY}--\r\n".encode()
    conn.request("POST", url.path, body=body, headers={
        "Content-Type": f'multipart/encrypted;protocol="{PROTOCOL}";boundary="{BOUNDARY}"',
        "Content-Length": str(len(body)), "Connection": "Keep-Alive"})
    resp = conn.getresponse()
    raw = resp.read()
    if resp.status != 200:
        raise Failure(f"Enumerate: HTTP {resp.status} {raw[:200]!r}")
    marker = b"Content-Type: application/octet-stream\r\n"
    pos = raw.find(marker) + len(marker)
    (hlen,) = struct.unpack("<I", raw[pos:pos + 4])
    end = raw.rfind(f"--{BOUNDARY}--".encode())
    reply = ctx.unwrap(raw[pos + 4:end]).message
    text = reply[2:].decode("utf-16-le")
    if "EnumerateResponse" not in text:
        raise Failure(f"Enumerate: {text[:300]}")
    step("enumerate", status=200, signature_length=hlen)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True, help="DOMAIN\\USER")
    ap.add_argument("--password", required=True)
    ap.add_argument("--mode", choices=["sequence", "spnego", "cross", "v1"], default="sequence")
    ap.add_argument("--samples", default="")
    ap.add_argument("--subscription", default="")
    ap.add_argument("--host", default="srv.lab.local", help="collector host name (SPNEGO)")
    ap.add_argument("--skip-negative", action="store_true",
                    help="sequence: stop after Events (no replayed or tampered body)")
    args = ap.parse_args()
    args.samples = args.samples.rstrip("/") + "/"
    return main_steps({"sequence": run_sequence, "spnego": run_spnego, "cross": run_cross,
                       "v1": run_v1}[args.mode], args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A minimal WEF source on python3-gssapi (no wec code) that pushes SLDC-compressed Events.

Enumerates on the manager URL (Windows' own UTF-16 Enumerate bytes), then opens a new connection to it, authenticates (Kerberos or SPNEGO) and POSTs
the body in --body (an SLDC record, sent with Content-Encoding: SLDC) --count times, sealed with
Kerberos message encryption. Used to record realistic captures for `wec decode` tests and benches.
Prints one JSON line per step; exits 1 at the first wrong answer.
"""
import argparse
import os
import time
import base64
import http.client
import json
import struct
import sys
import urllib.parse

import gssapi
from gssapi.raw import IOV, IOVBufferType, wrap_iov

KRB5_OID = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")
SPNEGO_OID = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
BOUNDARY = "Encrypted Boundary"


def connect(url, args):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    scheme = "Kerberos" if args.mech == "kerberos" else "Negotiate"
    name = gssapi.Name(args.service, gssapi.NameType.hostbased_service)
    mech = KRB5_OID if args.mech == "kerberos" else SPNEGO_OID
    flags = [gssapi.RequirementFlag.mutual_authentication,
             gssapi.RequirementFlag.confidentiality, gssapi.RequirementFlag.integrity]
    ctx = gssapi.SecurityContext(name=name, mech=mech, flags=flags, usage="initiate")
    token = ctx.step()
    conn.request("POST", u.path, body=b"", headers={
        "Authorization": f"{scheme} {base64.b64encode(token).decode()}", "Content-Length": "0",
        "Connection": "Keep-Alive", "User-Agent": "Microsoft WinRM Client",
        "Content-Type": "application/soap+xml;charset=UTF-16", "Content-Encoding": "SLDC"})
    resp = conn.getresponse()
    resp.read()
    www = resp.getheader("WWW-Authenticate", "")
    if resp.status != 200 or not www.startswith(scheme + " "):
        raise RuntimeError(f"auth: HTTP {resp.status} {www!r}")
    ctx.step(base64.b64decode(www.split(" ", 1)[1]))
    return conn, ctx, u.path


def post(conn, ctx, path, args, plaintext, sldc):
    protocol = ("application/HTTP-Kerberos-session-encrypted" if args.mech == "kerberos"
                else "application/HTTP-SPNEGO-session-encrypted")
    iov = IOV(IOVBufferType.header, plaintext, IOVBufferType.padding, std_layout=False)
    wrap_iov(ctx, iov, confidential=True)
    header = iov[0].value
    data = iov[1].value + (iov[2].value or b"")
    tab = "\t" if args.tab else ""
    body = (f"--{BOUNDARY}\r\n{tab}Content-Type: {protocol}\r\n"
            f"{tab}OriginalContent: type=application/soap+xml;charset=UTF-16;Length={len(plaintext)}\r\n"
            f"--{BOUNDARY}\r\n{tab}Content-Type: application/octet-stream\r\n").encode()
    body += struct.pack("<I", len(header)) + header + data + f"--{BOUNDARY}--\r\n".encode()
    headers = {"Content-Type": f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"',
               "Content-Length": str(len(body)), "Connection": "Keep-Alive",
               "User-Agent": "Microsoft WinRM Client"}
    if sldc:
        headers["Content-Encoding"] = "SLDC"
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--service", default="HTTP@srv.windomain.local")
    ap.add_argument("--mech", choices=["kerberos", "spnego"], default="kerberos")
    ap.add_argument("--tab", action="store_true")
    ap.add_argument("--enumerate", required=True, help="Windows' UTF-16 Enumerate body")
    ap.add_argument("--notify-path", required=True, help="/wsman/subscriptions/<uuid>")
    ap.add_argument("--body", required=True, help="SLDC-compressed Events body")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--hold-until", help="after the first Events, keep the connection open until "
                    "this file exists (so that other connections interleave with this one)")
    args = ap.parse_args()
    try:
        conn, ctx, path = connect(args.url, args)
        # Enumerate as Windows does first (the reply lists the subscriptions; the caller already
        # knows the NotifyTo path of the one it follows).
        protocol_reply = post(conn, ctx, path, args, open(args.enumerate, "rb").read(), False)
        if protocol_reply != 200:
            raise RuntimeError(f"Enumerate: HTTP {protocol_reply}")
        conn.close()
        notify = args.notify_path
        conn, ctx, _ = connect(args.url, args)
        body = open(args.body, "rb").read()
        for i in range(args.count):
            status = post(conn, ctx, notify, args, body, True)
            if status != 200:
                raise RuntimeError(f"Events #{i}: HTTP {status}")
            if i == 0 and args.hold_until:
                print(json.dumps({"step": "holding"}), flush=True)
                deadline = time.monotonic() + 60
                while not os.path.exists(args.hold_until):
                    if time.monotonic() > deadline:
                        raise RuntimeError("hold file never appeared")
                    time.sleep(0.02)
        conn.close()
    except Exception as e:  # noqa: BLE001 - report any failure as a step
        print(json.dumps({"step": "failed", "error": str(e)}), flush=True)
        return 1
    print(json.dumps({"step": "done", "count": args.count}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Makes real GSS tokens for the wec::krb tests with MIT Kerberos through python3-gssapi.

Run with the test realm's environment (KRB5_CONFIG, KRB5CCNAME = the kinit'd client's cache,
KRB5_KTNAME = the service keytab). The initiator (client) and the acceptor (service) both live in
this process: init_sec_context -> AP-REQ, accept_sec_context -> AP-REP, then each side wraps
messages with wrap_iov over [HEADER, DATA, PADDING] like WinRM, and the other side checks them
with unwrap_iov. Everything is written as one JSON file with hex strings.

usage: make_tokens.py OUT.json --service HTTP/srv.windomain.local@REALM
                      [--mech krb5|spnego] [--no-mutual] [--sizes 0,1,16,...]
"""
import argparse
import json
import os

import gssapi
import gssapi.raw as graw
from gssapi.raw import IOV, IOVBufferType

KRB5_OID = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")
SPNEGO_OID = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
# GSS_C_INQ_SSPI_SESSION_KEY: the key that protects wrap tokens, and its enctype as an OID suffix.
SESSION_KEY_OID = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2.5.5")


def wrap(ctx, data, confidential):
    iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
    graw.wrap_iov(ctx, iov, confidential=confidential)
    header = bytes(iov[0].value or b"")
    body = bytes(iov[1].value or b"")
    padding = bytes(iov[2].value or b"")
    return header, body + padding


def unwrap(ctx, header, body):
    iov = IOV((IOVBufferType.header, False, header), body, std_layout=False)
    graw.unwrap_iov(ctx, iov)
    return bytes(iov[1].value or b"")


def session_key(ctx):
    try:
        parts = graw.inquire_sec_context_by_oid(ctx, SESSION_KEY_OID)
    except gssapi.exceptions.GSSError:
        return None, None
    key = bytes(parts[0])
    enctype = None
    if len(parts) > 1:
        oid = bytes(parts[1])
        # 1.2.840.113554.1.2.2.4.<enctype>: the last DER arc is the enctype (< 128 here).
        enctype = oid[-1]
    return key.hex(), enctype


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--service", required=True)
    ap.add_argument("--mech", choices=["krb5", "spnego"], default="krb5")
    ap.add_argument("--no-mutual", action="store_true")
    ap.add_argument("--sizes", default="0,1,15,16,17,31,32,33,100,1000,4096,70000")
    args = ap.parse_args()

    mech = KRB5_OID if args.mech == "krb5" else SPNEGO_OID
    target = gssapi.Name(args.service, gssapi.NameType.kerberos_principal)
    flags = [gssapi.RequirementFlag.integrity, gssapi.RequirementFlag.confidentiality,
             gssapi.RequirementFlag.out_of_sequence_detection]
    if not args.no_mutual:
        flags.append(gssapi.RequirementFlag.mutual_authentication)
    init = gssapi.SecurityContext(name=target, usage="initiate", mech=mech, flags=flags)
    ap_req = init.step()

    acc_creds = gssapi.Credentials(usage="accept")
    acc = gssapi.SecurityContext(creds=acc_creds, usage="accept")
    ap_rep = acc.step(ap_req)
    rounds = 0
    while not init.complete and ap_rep is not None and rounds < 4:
        nxt = init.step(ap_rep)
        rounds += 1
        if nxt is None or acc.complete:
            break
        ap_rep = acc.step(nxt)
    if not acc.complete or not init.complete:
        raise SystemExit("GSS context not established")

    key_hex, key_enctype = session_key(acc)
    out = {
        "mech": args.mech,
        "mutual": not args.no_mutual,
        "client": str(acc.initiator_name),
        "service": args.service,
        "ap_req": ap_req.hex(),
        "ap_rep": ap_rep.hex() if ap_rep else None,
        "gss_key": key_hex,
        "gss_key_enctype": key_enctype,
        "messages": [],
    }
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for i, size in enumerate(sizes):
        for direction, sender, receiver in (("initiator", init, acc), ("acceptor", acc, init)):
            plaintext = os.urandom(size) if i % 2 else (b"<s:Envelope>" * (size // 12 + 1))[:size]
            confidential = not (i == 2)  # one integrity-only token per direction
            header, body = wrap(sender, plaintext, confidential)
            if unwrap(receiver, header, body) != plaintext:
                raise SystemExit("gss unwrap_iov mismatch")
            out["messages"].append({
                "direction": direction,
                "sealed": confidential,
                "plaintext": plaintext.hex(),
                "header": header.hex(),
                "data": body.hex(),
            })
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

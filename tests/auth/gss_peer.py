#!/usr/bin/python3
"""Independent GSSAPI peer for the wec auth interop tests (needs Debian's python3-gssapi).

Speaks a line protocol on stdin/stdout, all binary values in hex ("-" = empty):
  initiate: prints TOKEN <ap-req>, reads TOKEN <ap-rep>, prints SEALED <header> <data> (the
            --message wrapped with wrap_iov [HEADER, DATA, PADDING]), reads SEALED <header> <data>,
            prints PLAIN <plaintext>.
  accept:   reads TOKEN <ap-req>, prints CLIENT <name> and TOKEN <ap-rep>, reads SEALED, prints
            PLAIN, then prints SEALED (the --message wrapped).
Errors: prints ERROR <text> and exits 1. Uses only the environment's krb5 config (KRB5_CONFIG).
"""
import argparse
import sys

import gssapi
from gssapi.raw import IOV, IOVBufferType, unwrap_iov, wrap_iov

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
KRB5 = gssapi.MechType.kerberos


def hx(b):
    return b.hex() if b else "-"


def unhex(s):
    return b"" if s == "-" else bytes.fromhex(s)


def say(*words):
    print(" ".join(words), flush=True)


def expect(tag):
    line = sys.stdin.readline().split()
    if not line or line[0] != tag:
        raise RuntimeError("expected %s, got %r" % (tag, line))
    return line[1:]


def seal(ctx, message):
    iov = IOV(IOVBufferType.header, message, IOVBufferType.padding, std_layout=False)
    wrap_iov(ctx, iov, confidential=True)
    header, data, padding = iov[0].value, iov[1].value, iov[2].value or b""
    return header, data + padding


def unseal(ctx, header, data):
    iov = IOV((IOVBufferType.header, False, header), data, std_layout=False)
    res = unwrap_iov(ctx, iov)
    if not res.encrypted:
        raise RuntimeError("message was not encrypted")
    return iov[1].value


def initiate(args):
    creds = gssapi.Credentials(usage="initiate", store={b"ccache": args.ccache.encode()})
    if "/" in args.target:
        name = gssapi.Name(args.target, gssapi.NameType.kerberos_principal)
    else:
        name = gssapi.Name(args.target, gssapi.NameType.hostbased_service)
    flags = (gssapi.RequirementFlag.mutual_authentication
             | gssapi.RequirementFlag.confidentiality
             | gssapi.RequirementFlag.integrity
             | gssapi.RequirementFlag.replay_detection
             | gssapi.RequirementFlag.out_of_sequence_detection)
    ctx = gssapi.SecurityContext(name=name, creds=creds, usage="initiate", flags=flags,
                                 mech=SPNEGO if args.mech == "spnego" else KRB5)
    say("TOKEN", hx(ctx.step()))
    while not ctx.complete:
        (reply,) = expect("TOKEN")
        out = ctx.step(unhex(reply))
        if out:
            say("TOKEN", hx(out))
    header, data = seal(ctx, bytes.fromhex(args.message))
    say("SEALED", hx(header), hx(data))
    h, d = expect("SEALED")
    say("PLAIN", hx(unseal(ctx, unhex(h), unhex(d))))


def accept(args):
    creds = gssapi.Credentials(usage="accept", store={b"keytab": args.keytab.encode()})
    ctx = gssapi.SecurityContext(creds=creds, usage="accept")
    while not ctx.complete:
        (token,) = expect("TOKEN")
        out = ctx.step(unhex(token))
        if ctx.complete:
            say("CLIENT", str(ctx.initiator_name))
        say("TOKEN", hx(out))
    h, d = expect("SEALED")
    say("PLAIN", hx(unseal(ctx, unhex(h), unhex(d))))
    header, data = seal(ctx, bytes.fromhex(args.message))
    say("SEALED", hx(header), hx(data))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    i = sub.add_parser("initiate")
    i.add_argument("--target", required=True)
    i.add_argument("--mech", choices=["krb5", "spnego"], default="krb5")
    i.add_argument("--ccache", required=True)
    i.add_argument("--message", required=True)
    a = sub.add_parser("accept")
    a.add_argument("--keytab", required=True)
    a.add_argument("--message", required=True)
    args = p.parse_args()
    try:
        initiate(args) if args.mode == "initiate" else accept(args)
    except Exception as e:  # reported to the test, which fails with the text
        say("ERROR", repr(e).replace("\n", " "))
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""An independent WinRM peer for `wec serve --auth basic`: pywinrm (transport='basic') over
HTTPS, the server certificate checked against the test CA (server_cert_validation='validate',
ca_trust_path). Sends the real Windows messages Enumerate -> Heartbeat -> Events to the
subscription's NotifyTo and prints one JSON line per step; a refused password is printed as
{"step": "enumerate", "status": 401}.
"""

import argparse
import sys

from wef_peer import main_steps, pywinrm_sequence


def run(args):
    import winrm.protocol

    def protocol(url):
        return winrm.protocol.Protocol(endpoint=url, transport="basic", username=args.user,
                                       password=args.password,
                                       server_cert_validation="validate",
                                       ca_trust_path=args.ca)

    pywinrm_sequence(protocol, args)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca", required=True, help="PEM bundle that issued the server certificate")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--subscription", required=True)
    args = ap.parse_args()
    args.samples = args.samples.rstrip("/") + "/"
    return main_steps(run, args)


if __name__ == "__main__":
    sys.exit(main())

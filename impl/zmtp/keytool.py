"""zmtp-keys: make and inspect CURVE keys.

zmtp-keys generate                   a new key pair, in Z85 and hex
zmtp-keys generate --zcert NAME      ... written as czmq certificate files NAME and NAME_secret
zmtp-keys public SECRET              the public key of a secret key (Z85 or hex)
zmtp-keys show NAME                  the keys in a czmq certificate
"""

from __future__ import annotations

import argparse
import sys

from .keys import CurveKeyPair


def _print(pair: CurveKeyPair, secret: bool = True) -> None:
    print(f"public-key  z85 {pair.public_z85}")
    print(f"public-key  hex {pair.public_hex}")
    if secret and pair.secret is not None:
        print(f"secret-key  z85 {pair.secret_z85}")
        print(f"secret-key  hex {pair.secret_hex}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="zmtp-keys", description="CURVE key pairs for ZMTP (Z85, hex, czmq certificates)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate", help="make a new key pair")
    gen.add_argument("--zcert", metavar="NAME", help="write czmq certificate files NAME and NAME_secret")
    pub = sub.add_parser("public", help="print the public key of a secret key")
    pub.add_argument("secret", help="the secret key, 40 Z85 characters or 64 hex digits")
    show = sub.add_parser("show", help="print the keys of a czmq certificate")
    show.add_argument("name")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "generate":
            pair = CurveKeyPair.generate()
            if args.zcert:
                pair.save_zcert(args.zcert)
                print(f"wrote {args.zcert} (public) and {args.zcert}_secret (secret, mode 0600)")
                _print(pair, secret=False)
            else:
                _print(pair)
        elif args.cmd == "public":
            _print(CurveKeyPair.from_secret(args.secret), secret=False)
        else:
            _print(CurveKeyPair.load_zcert(args.name))
    except ValueError as exc:
        print(f"zmtp-keys: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

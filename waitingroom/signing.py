"""Ed25519 signing keys of admission tokens: the active signer, the keys still accepted, the JWKS.

Configuration (parsed by `KeyRing.from_config`):
- signing keys: `kid=<base64url 32-byte Ed25519 private seed>` entries, comma separated (a bare
  seed gets a kid derived from its public key). The FIRST is the active signer; the others are
  published and accepted but sign nothing (a key being introduced before it signs, or the
  previous signer right after a rotation).
- retired keys: `kid=<base64url 32-byte public key>@<epoch seconds>` entries. Published and
  accepted until that instant, then dropped: the end of the rotation window.
- `dev-only` or nothing: a development-only key derived from a seed string (kid `dev-…`).
  Anyone who knows the seed can forge tokens, so production must configure real keys (the
  settings check says so).

`python -m waitingroom.signing` prints a fresh `kid=seed` entry and its public key.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "EdDSA"
DEV_KID_PREFIX = "dev-"
DEV_ONLY = "dev-only"  # the signing-keys value (or an empty one) asking for the development key


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class VerifyKey:
    kid: str
    key: Ed25519PublicKey
    not_after: float | None  # epoch seconds; None = no end (a configured signing key)

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": ALGORITHM,
            "use": "sig",
            "kid": self.kid,
            "x": b64url_encode(public_bytes(self.key)),
        }


def _entries(spec: str, *, bare: bool = False) -> list[tuple[str, str]]:
    """(kid, value) pairs; with `bare`, an entry without `kid=` gets kid "" (derived later)."""
    out: list[tuple[str, str]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, value = part.partition("=")
        if not sep and bare:
            kid, value = "", part
        kid, value = kid.strip(), value.strip()
        if (sep and not kid) or not value or (not sep and not bare):
            raise ValueError("admission key entry must be kid=value (the value is not shown)")
        out.append((kid, value))
    return out


def derived_kid(public: Ed25519PublicKey) -> str:
    """The kid of a key configured without one: stable, from its public half."""
    return "k-" + b64url_encode(hashlib.sha256(public_bytes(public)).digest())[:10]


def _private_key(kid: str, seed_b64: str) -> Ed25519PrivateKey:
    try:
        seed = b64url_decode(seed_b64)
    except ValueError as exc:
        raise ValueError(f"admission signing key {kid!r} is not base64url") from exc
    if len(seed) != 32:
        raise ValueError(f"admission signing key {kid!r} must be a 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _retired_key(kid: str, value: str) -> VerifyKey:
    pub_b64, sep, until = value.rpartition("@")
    if not sep:
        raise ValueError(f"retired admission key {kid!r} must be <public key>@<epoch seconds>")
    try:
        raw = b64url_decode(pub_b64)
        not_after = float(until)
    except ValueError as exc:
        raise ValueError(f"retired admission key {kid!r} is malformed") from exc
    if len(raw) != 32:
        raise ValueError(f"retired admission key {kid!r} must be a 32-byte Ed25519 public key")
    return VerifyKey(kid, Ed25519PublicKey.from_public_bytes(raw), not_after)


class KeyRing:
    """One signer plus every key a token may still be verified with."""

    def __init__(
        self,
        signer_kid: str,
        signer: Ed25519PrivateKey,
        verify_keys: list[VerifyKey],
        *,
        dev_only: bool = False,
    ) -> None:
        kids = [k.kid for k in verify_keys]
        if len(set(kids)) != len(kids):
            raise ValueError("admission key ids must be unique")
        if signer_kid not in kids:
            raise ValueError("the signer must be among the verify keys")
        self.signer_kid = signer_kid
        self.signer = signer
        self.dev_only = dev_only  # True: a key anyone can derive (never in production)
        self._keys = {k.kid: k for k in verify_keys}

    @classmethod
    def from_config(cls, signing: str, retired: str = "", dev_seed: str = "") -> KeyRing:
        entries = [] if signing.strip() == DEV_ONLY else _entries(signing, bare=True)
        if not entries:
            if retired.strip():
                raise ValueError("retired admission keys need at least one signing key")
            return cls.development(dev_seed)
        privates = []
        for kid, seed in entries:
            private = _private_key(kid or "(no kid)", seed)
            privates.append((kid or derived_kid(private.public_key()), private))
        keys = [VerifyKey(kid, priv.public_key(), None) for kid, priv in privates]
        keys += [_retired_key(kid, value) for kid, value in _entries(retired)]
        return cls(privates[0][0], privates[0][1], keys)

    @classmethod
    def development(cls, seed: str) -> KeyRing:
        """DEVELOPMENT ONLY: a key anyone can derive from `seed`."""
        if not seed:
            raise ValueError("a development admission key needs a non-empty seed")
        digest = hashlib.sha256(b"flashsale development-only admission key\0" + seed.encode())
        private = Ed25519PrivateKey.from_private_bytes(digest.digest())
        kid = DEV_KID_PREFIX + b64url_encode(public_bytes(private.public_key()))[:8]
        return cls(kid, private, [VerifyKey(kid, private.public_key(), None)], dev_only=True)

    def verify_key(self, kid: str, now: float) -> Ed25519PublicKey | None:
        key = self._keys.get(kid)
        if key is None or (key.not_after is not None and now >= key.not_after):
            return None
        return key.key

    def not_after(self, kid: str) -> float:
        """When the key `kid` stops being accepted (inf for a configured signing key)."""
        key = self._keys.get(kid)
        if key is None:
            return 0.0
        return math.inf if key.not_after is None else key.not_after

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        live = [k for k in self._keys.values() if k.not_after is None or now < k.not_after]
        return {"keys": [k.jwk() for k in live]}


def generate_entry(kid: str | None = None) -> tuple[str, str]:
    """A new `kid=seed` signing entry and the matching base64url public key."""
    seed = secrets.token_bytes(32)
    kid = kid or time.strftime("k%Y%m%d%H%M%S", time.gmtime())
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return f"{kid}={b64url_encode(seed)}", b64url_encode(public_bytes(public))


def main(argv: list[str], out: Callable[[str], None] = print) -> int:
    entry, public = generate_entry(argv[1] if len(argv) > 1 else None)
    out(f"signing entry (secret, for ADMISSION_SIGNING_KEYS): {entry}")
    out(f"public key (for ADMISSION_RETIRED_KEYS after the next rotation): {public}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

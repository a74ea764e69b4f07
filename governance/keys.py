"""Signing keys: the calling services' public keys, this deployment's own signing keys, dev keys.

Layout of `KEYS_DIR` (default `var/keys`, mount it from a secret store in production):
    services/<service>/<anything>.pem   public keys that `<service>` may sign service JWTs with
                                        (several files = rotation: add the new key, then drop the old)
    agents.private.pem                  dev only: the agents' signing key (else SERVICE_PRIVATE_KEY[_FILE])
    local-issuer.private.pem            dev only: the local user-token issuer's key
                                        (else LOCAL_ISSUER_PRIVATE_KEY[_FILE])
A key's id (`kid`) is its RFC 7638 JWK thumbprint, so it is never configured by hand.
"""

import base64
import hashlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public_key: PublicKeyTypes) -> str:
    """RFC 7638 thumbprint of an Ed25519 or RSA public key."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    elif isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        members = {
            "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        }
    else:
        raise TypeError(f"unsupported key type {type(public_key).__name__}")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def load_private_key(pem: str) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem.encode(), password=None)


@lru_cache(maxsize=8)
def signing_key(pem: str) -> tuple[PrivateKeyTypes, str]:
    """A private key parsed once per process, with its key id (parsing costs more than a signature)."""
    key = load_private_key(pem)
    return key, key_id(key.public_key())


def public_pem(private_key: PrivateKeyTypes) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(private_key: PrivateKeyTypes) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_once(path: Path, data: bytes) -> None:
    """Create `path` with `data` unless it exists; safe when several processes race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def dev_secret_key(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    _write_once(path, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()


def ensure_dev_keys(keys_dir: Path, service: str = "agents") -> None:
    """Generate the development keys if missing: the service's key pair and the local issuer's key."""
    service_key_path = keys_dir / f"{service}.private.pem"
    if not service_key_path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        _write_once(service_key_path, private_pem(key))
    key = load_private_key(service_key_path.read_text())
    public_path = keys_dir / "services" / service / f"{key_id(key.public_key())}.pem"
    _write_once(public_path, public_pem(key))
    _write_once(keys_dir / "local-issuer.private.pem", private_pem(ed25519.Ed25519PrivateKey.generate()))


def _directory_fingerprint(root: Path) -> tuple:
    if not root.is_dir():
        return ()
    return tuple(sorted((str(path), path.stat().st_mtime_ns) for path in root.glob("*/*.pem")))


@lru_cache(maxsize=4)
def _load_service_keys(fingerprint: tuple) -> dict[str, dict[str, PublicKeyTypes]]:
    keys: dict[str, dict[str, PublicKeyTypes]] = {}
    for path_text, _mtime in fingerprint:
        path = Path(path_text)
        public_key = serialization.load_pem_public_key(path.read_bytes())
        keys.setdefault(path.parent.name, {})[key_id(public_key)] = public_key
    return keys


def service_public_keys(keys_dir: Path) -> dict[str, dict[str, PublicKeyTypes]]:
    """{service name: {kid: public key}}, re-read whenever a key file is added, changed or removed."""
    return _load_service_keys(_directory_fingerprint(keys_dir / "services"))

"""Signing official documents: one :class:`Signer` interface, a PAdES signer (pyHanko) and a demo PKI.

Every issued PDF is signed with its agency's key. :class:`Signer` is all the register needs — ``sign(pdf)``
and the certificate's ``fingerprint`` and ``subject`` — so a GB/T 38540 electronic-seal signer (SM2/SM3, the
legally binding Chinese e-seal, out of scope here) can replace :class:`PadesSigner` without touching callers.

:class:`PadesSigner` writes a PAdES baseline signature (``ETSI.CAdES.detached``, SHA-256) with pyHanko: any
PDF reader that trusts the root shows which key signed and that nothing changed since. :func:`verify_pdf` is
pyHanko's validator with the keys folder's root as the only trust anchor.

The demo PKI (:func:`ensure_demo_keys`, ``regflow documents keys --demo``, run by ``regflow demo``) creates in
the keys folder (``REGFLOW_KEYS_DIR``) a root CA and one ECDSA P-256 key and certificate per agency, named by a
digest of the agency's code (codes are Chinese). It is idempotent: an existing key is never replaced — a
replaced key would leave the PDFs it signed unverifiable against the folder. A real deployment puts keys
issued by its own CA in the same files.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.errors import NotFound

ROOT_KEY, ROOT_CERT = "root-ca.key.pem", "root-ca.cert.pem"
ROOT_NAME = "regflow 演示根证书 (demo root CA)"
ROOT_YEARS, AGENCY_YEARS = 20, 5


class Signer(Protocol):
    """What issuing needs from a signer: sign a PDF, and name the certificate it signs with."""

    #: SHA-256 of the signer certificate's DER, hex
    fingerprint: str
    #: the certificate's subject, readable
    subject: str

    def sign(self, pdf: bytes, *, reason: str) -> bytes: ...


def key_stem(agency_code: str) -> str:
    """The file name stem of an agency's key and certificate (its code is Chinese: a digest names it)."""
    return "agency-" + hashlib.sha256(agency_code.encode()).hexdigest()[:16]


def fingerprint(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()


class PadesSigner:
    """A PAdES signature by a key and certificate held in memory, its chain up to the demo (or own) root."""

    def __init__(self, key_pem: bytes, cert_pem: bytes, chain_pem: list[bytes]):
        from pyhanko.sign import signers  # noqa: PLC0415  (pyHanko: a second to import; issuing only)
        from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: PLC0415  (as above)

        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        der = cert.public_bytes(serialization.Encoding.DER)
        chain = [asn1_x509.Certificate.load(x509.load_pem_x509_certificate(c).public_bytes(
            serialization.Encoding.DER)) for c in chain_pem]
        self.fingerprint = fingerprint(der)
        self.subject = cert.subject.rfc4514_string()
        self._signer = signers.SimpleSigner(
            signing_cert=asn1_x509.Certificate.load(der),
            signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
            cert_registry=SimpleCertificateStore.from_certs(chain))

    def sign(self, pdf: bytes, *, reason: str) -> bytes:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: PLC0415  (as above)
        from pyhanko.sign import fields as sig_fields  # noqa: PLC0415  (as above)
        from pyhanko.sign import signers  # noqa: PLC0415  (as above)

        meta = signers.PdfSignatureMetadata(field_name="AgencySignature", md_algorithm="sha256", reason=reason,
                                            subfilter=sig_fields.SigSeedSubFilter.PADES)
        return outside_event_loop(lambda: signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta,
                                                           signer=self._signer).getvalue())


def outside_event_loop(fn):
    """``fn()``, which runs pyHanko's synchronous API (it starts an asyncio event loop of its own): directly, or — when
    this thread already runs a loop (an asyncio server, a test driving a browser) — on a short-lived thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="regflow-sign") as pool:
        return pool.submit(fn).result()


_SIGNERS: dict[tuple, PadesSigner] = {}


def load_signer(keys_dir: str | Path, agency_code: str) -> PadesSigner:
    """The signer of ``agency_code`` from the keys folder (cached while its files are unchanged). NotFound,
    saying how to create one, when the agency has no key."""
    folder = Path(keys_dir)
    stem = key_stem(agency_code)
    key, cert, root = folder / f"{stem}.key.pem", folder / f"{stem}.cert.pem", folder / ROOT_CERT
    if not (key.is_file() and cert.is_file() and root.is_file()):
        raise NotFound(f"agency {agency_code} has no signing key in {folder} "
                       f"(create the demo keys with: regflow documents keys --demo)")
    stamp = (str(folder.resolve()), agency_code, key.stat().st_mtime_ns, cert.stat().st_mtime_ns)
    signer = _SIGNERS.get(stamp)
    if signer is None:
        signer = PadesSigner(key.read_bytes(), cert.read_bytes(), [root.read_bytes()])
        _SIGNERS.clear() if len(_SIGNERS) > 64 else None
        _SIGNERS[stamp] = signer
    return signer


# ------------------------------------------------------------------------------------------ demo PKI
def _clip(text: str, limit: int = 64) -> str:
    """At most ``limit`` UTF-8 bytes (X.520's upper bound for a name attribute), whole characters."""
    while len(text.encode()) > limit:
        text = text[:-1]
    return text


def _name(common: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, _clip(org)))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, _clip(common)))
    return x509.Name(attrs)


def _write_private(path: Path, data: bytes) -> None:
    """Written as a new file readable by its owner only; never over an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _root(folder: Path, now: datetime) -> tuple[object, x509.Certificate, bool]:
    key_path, cert_path = folder / ROOT_KEY, folder / ROOT_CERT
    if key_path.is_file() and cert_path.is_file():
        return (serialization.load_pem_private_key(key_path.read_bytes(), password=None),
                x509.load_pem_x509_certificate(cert_path.read_bytes()), False)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(ROOT_NAME)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def _agency_cert(folder: Path, code: str, name: str, root_key, root_cert: x509.Certificate, now: datetime) -> bool:
    stem = key_stem(code)
    key_path, cert_path = folder / f"{stem}.key.pem", folder / f"{stem}.cert.pem"
    if key_path.is_file() and cert_path.is_file():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(code, name))
            .issuer_name(root_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365 * AGENCY_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def ensure_demo_keys(keys_dir: str | Path, agencies: list[tuple[str, str]]) -> dict:
    """The demo root CA and a key per agency (``(code, name)``) in ``keys_dir``, each created only when missing.
    Returns what was created and what existed."""
    folder = Path(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)  # certificates are checked against the real time, never the engine's clock
    root_key, root_cert, root_created = _root(folder, now)
    created, existing = [], []
    for code, name in agencies:
        (created if _agency_cert(folder, code, name, root_key, root_cert, now) else existing).append(code)
    return {"keys_dir": str(folder), "root_created": root_created, "created": created, "existing": existing,
            "root_fingerprint": fingerprint(root_cert.public_bytes(serialization.Encoding.DER))}


# ------------------------------------------------------------------------------------------ verification
@dataclass
class SignatureCheck:
    ok: bool
    problem: str | None = None
    signer_fingerprint: str | None = None
    signer_subject: str | None = None


def verify_pdf(pdf: bytes, keys_dir: str | Path) -> SignatureCheck:
    """pyHanko's validation of the PDF's one signature, the keys folder's root as the only trust anchor: the
    signed bytes intact, the signature valid, the chain trusted and nothing appended after signing."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415  (pyHanko: a second to import; issuing only)
    from pyhanko.sign.validation import validate_pdf_signature  # noqa: PLC0415  (as above)
    from pyhanko_certvalidator import ValidationContext  # noqa: PLC0415  (as above)

    root = Path(keys_dir) / ROOT_CERT
    if not root.is_file():
        return SignatureCheck(False, f"no root certificate {root} to check signatures against")
    anchor = asn1_x509.Certificate.load(x509.load_pem_x509_certificate(root.read_bytes()).public_bytes(
        serialization.Encoding.DER))
    try:
        sigs = PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures
    except Exception as exc:  # noqa: BLE001 - a mangled file is a finding, not a crash
        return SignatureCheck(False, f"not a readable PDF: {type(exc).__name__}: {exc}")
    if len(sigs) != 1:
        return SignatureCheck(False, f"{len(sigs)} signatures (expected one)")
    sig = sigs[0]
    try:
        status = outside_event_loop(lambda: validate_pdf_signature(sig, ValidationContext(trust_roots=[anchor])))
    except Exception as exc:  # noqa: BLE001
        return SignatureCheck(False, f"the signature cannot be validated: {type(exc).__name__}: {exc}")
    cert = status.signing_cert
    fp = fingerprint(cert.dump()) if cert is not None else None
    subject = cert.subject.human_friendly if cert is not None else None
    if not (status.intact and status.valid):
        return SignatureCheck(False, "the signed bytes were changed or the signature is invalid", fp, subject)
    if not status.trusted:
        return SignatureCheck(False, "the signer's certificate does not chain to the root", fp, subject)
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        return SignatureCheck(False, "the file was changed after it was signed", fp, subject)
    return SignatureCheck(True, None, fp, subject)

#!/usr/bin/env python3
"""An independent Notary Project signature verifier, written from the specification
(notaryproject/specifications: signature-specification.md, signature-envelope-jws.md,
trust-store-trust-policy.md) and the OCI distribution spec, sharing no code with the Rust signer.

It is the second implementation the Rust tests check signatures against: it resolves a tag, finds
the signature manifests that refer to it (referrers API, else the sha256-<hex> tag-schema index),
and verifies each JWS envelope: integrity, the certificate rules, authenticity against the given
trust store (byte-equal certificate), expiry, certificate validity now, and that the payload
names exactly the media type, digest and size the registry serves.

Sources: a plain-HTTP registry (--registry HOST:PORT --repo NAME) or an OCI image layout
(--oci-layout DIR), which is how notation's own test vectors are stored.

Prints one JSON document: {"verified": bool, "target": {...}, "signatures": [{"digest",
"ok", "reason", "shape", ...}]}. Exit 0 when at least one signature verified, 1 otherwise,
2 on usage or I/O errors.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

SIG_ARTIFACT = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
EMPTY = "application/vnd.oci.empty.v1+json"
PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
THUMBS = "io.cncf.notary.x509chain.thumbprint#S256"
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
KNOWN_CRIT = {"io.cncf.notary.signingScheme", "io.cncf.notary.expiry"}
# alg -> (hash, key check)
ALGS = {
    "PS256": (hashes.SHA256, ("rsa", 2048)),
    "PS384": (hashes.SHA384, ("rsa", 3072)),
    "PS512": (hashes.SHA512, ("rsa", 4096)),
    "ES256": (hashes.SHA256, ("ec", "secp256r1")),
    "ES384": (hashes.SHA384, ("ec", "secp384r1")),
    "ES512": (hashes.SHA512, ("ec", "secp521r1")),
}
FORBIDDEN_EKU = {
    ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.TIME_STAMPING,
    ExtendedKeyUsageOID.OCSP_SIGNING, x509.ObjectIdentifier("2.5.29.37.0"),
}


class Fail(Exception):
    pass


def b64url(s):
    if "=" in s:
        raise Fail("base64url with padding")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Registry:
    def __init__(self, host, repo):
        self.base = "http://%s/v2/%s" % (host, repo)

    def get(self, path, accept=None, limit=4 << 20):
        req = urllib.request.Request(self.base + path)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read(limit + 1)
                if len(body) > limit:
                    raise Fail("response over %d bytes" % limit)
                return r.status, r.headers.get("Content-Type", "").split(";")[0].strip(), body
        except urllib.error.HTTPError as e:
            return e.code, "", b""

    def resolve(self, ref):
        status, ctype, body = self.get("/manifests/" + ref, ACCEPT)
        if status != 200:
            raise Fail("manifest %s: HTTP %d" % (ref, status))
        return {"mediaType": ctype, "digest": sha256(body), "size": len(body)}, body

    def referrers(self, digest):
        status, ctype, body = self.get("/referrers/%s?artifactType=%s" % (digest, SIG_ARTIFACT), INDEX)
        if status == 200 and ctype == INDEX:
            return json.loads(body).get("manifests", []), "referrers-api"
        status, _, body = self.get("/manifests/" + digest.replace(":", "-", 1), INDEX)
        if status != 200:
            return [], "tag-schema"
        return json.loads(body).get("manifests", []), "tag-schema"

    def manifest(self, digest):
        status, _, body = self.get("/manifests/" + digest, ACCEPT)
        if status != 200 or sha256(body) != digest:
            raise Fail("signature manifest %s unreadable or does not hash to its digest" % digest)
        return body

    def blob(self, digest):
        status, _, body = self.get("/blobs/" + digest, None, 32 << 20)
        if status != 200 or sha256(body) != digest:
            raise Fail("blob %s unreadable or does not hash to its digest" % digest)
        return body


class Layout:
    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "index.json")) as f:
            self.index = json.load(f)

    def read(self, digest):
        with open(os.path.join(self.root, "blobs", *digest.split(":", 1)), "rb") as f:
            body = f.read()
        if sha256(body) != digest:
            raise Fail("blob %s does not hash to its digest" % digest)
        return body

    def by_tag(self, tag):
        for d in self.index["manifests"]:
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return d
        return None

    def resolve(self, ref):
        d = self.by_tag(ref)
        if d is None:
            raise Fail("no tag %s in the layout" % ref)
        body = self.read(d["digest"])
        return {"mediaType": d["mediaType"], "digest": d["digest"], "size": len(body)}, body

    def referrers(self, digest):
        d = self.by_tag(digest.replace(":", "-", 1))
        if d is None:
            return [], "tag-schema"
        return json.loads(self.read(d["digest"])).get("manifests", []), "tag-schema"

    def manifest(self, digest):
        return self.read(digest)

    def blob(self, digest):
        return self.read(digest)


def check_leaf(cert, now):
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        raise Fail("leaf certificate has no key usage")
    if not ku.critical:
        raise Fail("leaf key usage is not critical")
    v = ku.value
    if not v.digital_signature:
        raise Fail("leaf key usage lacks digitalSignature")
    if v.key_encipherment or v.data_encipherment or v.key_agreement or v.key_cert_sign or v.crl_sign:
        raise Fail("leaf key usage has a forbidden bit")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if any(o in FORBIDDEN_EKU for o in eku):
            raise Fail("leaf extended key usage has a forbidden purpose")
    except x509.ExtensionNotFound:
        pass
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise Fail("leaf is a CA")
    except x509.ExtensionNotFound:
        pass


def verify_with(pub, alg, sig, msg):
    h, _ = ALGS[alg]
    if isinstance(pub, ec.EllipticCurvePublicKey):
        n = len(sig) // 2
        der = encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
        pub.verify(der, msg, ec.ECDSA(h()))
    else:
        pub.verify(sig, msg, padding.PSS(mgf=padding.MGF1(h()), salt_length=h.digest_size), h())


def issued_by(child, parent):
    if child.issuer != parent.subject:
        return False
    try:
        pub = parent.public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(child.signature_hash_algorithm))
        else:
            pub.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), child.signature_hash_algorithm)
        return True
    except InvalidSignature:
        return False


def verify_envelope(env_bytes, target, trusted_der, now):
    env = json.loads(env_bytes)
    if sorted(env) != ["header", "payload", "protected", "signature"]:
        raise Fail("envelope members are %s" % sorted(env))
    protected = json.loads(b64url(env["protected"]))
    alg = protected.get("alg")
    if alg not in ALGS:
        raise Fail("alg %r not allowed" % alg)
    if protected.get("cty") != PAYLOAD:
        raise Fail("cty is %r" % protected.get("cty"))
    crit = protected.get("crit")
    if not isinstance(crit, list) or "io.cncf.notary.signingScheme" not in crit:
        raise Fail("crit missing or lacks signingScheme")
    unknown = set(crit) - KNOWN_CRIT
    if unknown:
        raise Fail("unknown critical headers %s" % sorted(unknown))
    if protected.get("io.cncf.notary.signingScheme") != "notary.x509":
        raise Fail("signing scheme %r" % protected.get("io.cncf.notary.signingScheme"))
    if "io.cncf.notary.signingTime" not in protected:
        raise Fail("signingTime missing")
    signing_time = datetime.datetime.fromisoformat(protected["io.cncf.notary.signingTime"].replace("Z", "+00:00"))
    expiry = protected.get("io.cncf.notary.expiry")
    if expiry is not None:
        if "io.cncf.notary.expiry" not in crit:
            raise Fail("expiry not marked critical")
        exp = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        if exp <= signing_time:
            raise Fail("expiry before signing time")
    x5c = env["header"].get("x5c")
    if not x5c:
        raise Fail("x5c missing")
    ders = [base64.b64decode(c, validate=True) for c in x5c]
    chain = [x509.load_der_x509_certificate(d) for d in ders]
    leaf = chain[0]
    kind, size = ALGS[alg][1]
    pub = leaf.public_key()
    if kind == "rsa" and not (isinstance(pub, rsa.RSAPublicKey) and pub.key_size == size):
        raise Fail("alg %s does not match the leaf key" % alg)
    if kind == "ec" and not (isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == size):
        raise Fail("alg %s does not match the leaf key" % alg)
    # 1. Integrity.
    try:
        verify_with(pub, alg, b64url(env["signature"]), (env["protected"] + "." + env["payload"]).encode())
    except InvalidSignature:
        raise Fail("integrity: signature does not verify")
    check_leaf(leaf, now)
    for i in range(len(chain) - 1):
        if not issued_by(chain[i], chain[i + 1]):
            raise Fail("integrity: certificate %d not issued by %d" % (i + 1, i + 2))
    if chain[-1].issuer != chain[-1].subject:
        raise Fail("integrity: chain does not end in a self-signed certificate")
    # 3. Authenticity: a certificate of the chain is in the trust store.
    if not any(d in trusted_der for d in ders):
        raise Fail("authenticity: no certificate of the chain is in the trust store")
    # 4. Expiry.
    if expiry is not None and now >= datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00")):
        raise Fail("expiry: the signature expired at %s" % expiry)
    # 5. Certificate validity now (no timestamp).
    for c in chain:
        if not (c.not_valid_before_utc <= now <= c.not_valid_after_utc):
            raise Fail("validity: certificate %s not valid now" % c.subject.rfc4514_string())
    # 7. The payload names exactly what the registry serves.
    payload = json.loads(b64url(env["payload"]))
    ta = payload.get("targetArtifact", {})
    for k in ("mediaType", "digest", "size"):
        if ta.get(k) != target[k]:
            raise Fail("descriptor: payload %s %r, registry %r" % (k, ta.get(k), target[k]))
    return {"alg": alg, "thumbprints": [hashlib.sha256(d).hexdigest() for d in ders],
            "subject": leaf.subject.rfc4514_string(), "signingAgent": env["header"].get("io.cncf.notary.signingAgent")}


def check_manifest(m, target):
    if len(m.get("layers", [])) != 1:
        raise Fail("signature manifest has %d layers" % len(m.get("layers", [])))
    if m["layers"][0].get("mediaType") != JWS:
        raise Fail("layer media type %r is not JWS" % m["layers"][0].get("mediaType"))
    if "artifactType" in m:
        if m["artifactType"] != SIG_ARTIFACT or m["config"]["mediaType"] != EMPTY:
            raise Fail("artifactType shape with wrong config")
        shape = "artifactType"
    elif m["config"]["mediaType"] == SIG_ARTIFACT:
        shape = "config"
    else:
        raise Fail("not a signature manifest")
    if m.get("subject", {}).get("digest") != target["digest"]:
        raise Fail("subject is not the target")
    if THUMBS not in m.get("annotations", {}):
        raise Fail("thumbprint annotation missing")
    return shape


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry")
    ap.add_argument("--repo")
    ap.add_argument("--oci-layout")
    ap.add_argument("--reference", required=True)
    ap.add_argument("--trust-cert", action="append", default=[])
    ap.add_argument("--now", help="RFC 3339 time to verify at (default: now)")
    a = ap.parse_args()
    try:
        src = Layout(a.oci_layout) if a.oci_layout else Registry(a.registry, a.repo)
        trusted = []
        for p in a.trust_cert:
            with open(p, "rb") as f:
                trusted += [c.public_bytes(encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
                            for c in x509.load_pem_x509_certificates(f.read())]
        now = (datetime.datetime.fromisoformat(a.now.replace("Z", "+00:00")) if a.now
               else datetime.datetime.now(datetime.timezone.utc))
        target, _ = src.resolve(a.reference)
        entries, via = src.referrers(target["digest"])
    except (Fail, OSError, ValueError) as e:
        print(json.dumps({"error": str(e)}))
        return 2
    results = []
    for e in entries:
        if e.get("artifactType", SIG_ARTIFACT) != SIG_ARTIFACT:
            continue
        r = {"digest": e.get("digest")}
        try:
            m = json.loads(src.manifest(e["digest"]))
            r["shape"] = check_manifest(m, target)
            r["manifest"] = m
            env = src.blob(m["layers"][0]["digest"])
            r.update(verify_envelope(env, target, trusted, now))
            listed = json.loads(m["annotations"][THUMBS])
            if [t.lower() for t in listed] != r["thumbprints"]:
                raise Fail("thumbprint annotation does not match x5c")
            r["envelope"] = json.loads(env)
            r["ok"] = True
        except (Fail, KeyError, ValueError, TypeError) as ex:
            r["ok"] = False
            r["reason"] = str(ex)
        results.append(r)
    ok = any(r["ok"] for r in results)
    print(json.dumps({"verified": ok, "target": target, "via": via, "signatures": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

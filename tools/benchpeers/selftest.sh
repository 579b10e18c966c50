#!/usr/bin/env bash
# Self-test of the xmlsec peer-benchmark harness: the documents it signs and
# encrypts must be exactly what the benchmark claims, as judged by the xmlsec1
# command line tool (and, when python3 + cryptography are available, by an
# independent decoder of the XML Encryption 1.1 AES-GCM / RSA-OAEP layout).
#
#   tools/benchpeers/selftest.sh            # builds bin/xmlsec_bench first
#   BENCH_BIN=path/to/xmlsec_bench tools/benchpeers/selftest.sh
#
# Env: KEY_LOOKUP (no-x509 | x509-untrusted | x509-trusted, default no-x509),
#      SIGN_INPUT (plain | encrypted, default plain).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

in=saml/testdata/bench/approve-request.xml
keys=saml/testdata/keys
ns_id_attr='ID urn:kecis:protocol:1.0:ServiceRequest'

log() { printf 'selftest: %s\n' "$*" >&2; }
die() { printf 'selftest: FAIL: %s\n' "$*" >&2; exit 1; }

command -v xmlsec1 >/dev/null || die "xmlsec1 not installed (apt-get install -y xmlsec1)"

bin=${BENCH_BIN:-}
if [[ -z $bin ]]; then
    mkdir -p bin
    bin=bin/xmlsec_bench
    # shellcheck disable=SC2046 # pkg-config output is meant to be split
    cc -O2 -Wall -Wextra -Werror -o "$bin" tools/benchpeers/xmlsec_bench.c \
        $(pkg-config --cflags --libs xmlsec1-openssl)
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$bin" --in "$in" \
    --rsa-key $keys/merchant-rsa.key.pem --rsa-cert $keys/merchant-rsa.cert.pem \
    --ec-key $keys/merchant-ec.key.pem --ec-cert $keys/merchant-ec.cert.pem \
    --recipient-key $keys/issuer-rsa.key.pem --recipient-cert $keys/issuer-rsa.cert.pem \
    --key-lookup "${KEY_LOOKUP:-no-x509}" --sign-input "${SIGN_INPUT:-plain}" \
    --selftest "$dir" 2>"$dir/harness.log" ||
    { cat "$dir/harness.log" >&2; die "harness --selftest failed"; }

# xmlsec1 prints "certificate verification failed" for the untrusted embedded
# certificate before it falls back to the given key; only its exit status and
# "OK" matter.
verify() { # cert file
    xmlsec1 --verify --pubkey-cert-pem "$1" --id-attr:$ns_id_attr "$2" >"$dir/v.out" 2>&1
}

for alg in rsa ecdsa; do
    key=merchant-rsa
    [[ $alg == ecdsa ]] && key=merchant-ec
    verify $keys/$key.cert.pem "$dir/signed-$alg.xml" ||
        { cat "$dir/v.out" >&2; die "xmlsec1 --verify rejects signed-$alg.xml"; }
    grep -q '^OK$' "$dir/v.out" || die "xmlsec1 --verify did not say OK for signed-$alg.xml"
    log "xmlsec1 --verify accepts signed-$alg.xml"

    if verify $keys/attacker-rsa.cert.pem "$dir/signed-$alg.xml"; then
        die "signed-$alg.xml verifies with the attacker's certificate"
    fi
    sed 's/Amount="15000"/Amount="15001"/' "$dir/signed-$alg.xml" >"$dir/tampered-$alg.xml"
    cmp -s "$dir/signed-$alg.xml" "$dir/tampered-$alg.xml" && die "tampering changed nothing"
    if verify $keys/$key.cert.pem "$dir/tampered-$alg.xml"; then
        die "tampered signed-$alg.xml verifies"
    fi
    log "xmlsec1 --verify rejects signed-$alg.xml with a wrong key and when tampered"
done

xmlsec1 --decrypt --privkey-pem $keys/issuer-rsa.key.pem "$dir/encrypted.xml" \
    >"$dir/xmlsec1-decrypted.xml" 2>"$dir/d.out" ||
    { cat "$dir/d.out" >&2; die "xmlsec1 --decrypt fails on encrypted.xml"; }
cmp -s "$dir/xmlsec1-decrypted.xml" "$dir/original.xml" ||
    { diff "$dir/original.xml" "$dir/xmlsec1-decrypted.xml" >&2 || true
      die "xmlsec1 --decrypt output differs from the original"; }
cmp -s "$dir/decrypted.xml" "$dir/original.xml" || die "harness decrypt output differs"
grep -q '4111111111111111' "$dir/encrypted.xml" && die "card number in clear in encrypted.xml"
log "xmlsec1 --decrypt restores the original document from encrypted.xml"

if ! python3 -c 'import cryptography' 2>/dev/null; then
    log "python3 cryptography not available: structure/layout checks skipped"
    log "PASS"
    exit 0
fi

python3 - "$dir" "$keys" <<'PY'
import base64, sys, xml.etree.ElementTree as ET
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

d, keys = sys.argv[1], sys.argv[2]
DS = "{http://www.w3.org/2000/09/xmldsig#}"
XENC = "{http://www.w3.org/2001/04/xmlenc#}"
KECIS = "{urn:kecis:protocol:1.0}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"

def fail(msg):
    sys.exit("selftest: FAIL: " + msg)

def b64(el):
    return base64.b64decode("".join(el.text.split()))

def der(path):
    return x509.load_pem_x509_certificate(open(path, "rb").read()).public_bytes(
        serialization.Encoding.DER)

# --- signature shape (KECIS §4.1) ---
for alg, key, meth in (("rsa", "merchant-rsa", "rsa-sha256"),
                       ("ecdsa", "merchant-ec", "ecdsa-sha256")):
    root = ET.parse(f"{d}/signed-{alg}.xml").getroot()
    kids = list(root)
    if root.tag != KECIS + "ServiceRequest" or kids[0].tag != SAML + "Issuer" \
            or kids[1].tag != DS + "Signature":
        fail(f"signed-{alg}: Signature is not the second child after saml:Issuer")
    if len(root.findall(f".//{DS}Signature")) != 1:
        fail(f"signed-{alg}: not exactly one Signature")
    si = kids[1].find(DS + "SignedInfo")
    alg_of = lambda path: si.find(path).get("Algorithm")
    if alg_of(DS + "CanonicalizationMethod") != "http://www.w3.org/2001/10/xml-exc-c14n#":
        fail("c14n method")
    if alg_of(DS + "SignatureMethod") != "http://www.w3.org/2001/04/xmldsig-more#" + meth:
        fail("signature method")
    refs = si.findall(DS + "Reference")
    if len(refs) != 1 or refs[0].get("URI") != "#" + root.get("ID"):
        fail("reference")
    tr = [t.get("Algorithm") for t in refs[0].find(DS + "Transforms")]
    if tr != ["http://www.w3.org/2000/09/xmldsig#enveloped-signature",
              "http://www.w3.org/2001/10/xml-exc-c14n#"]:
        fail(f"transforms {tr}")
    if refs[0].find(DS + "DigestMethod").get("Algorithm") != "http://www.w3.org/2001/04/xmlenc#sha256":
        fail("digest method")
    certs = kids[1].findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    if len(certs) != 1 or b64(certs[0]) != der(f"{keys}/{key}.cert.pem"):
        fail(f"signed-{alg}: KeyInfo/X509Data/X509Certificate is not the signer certificate")
    if alg == "ecdsa" and len(b64(kids[1].find(DS + "SignatureValue"))) != 64:
        fail("ECDSA SignatureValue is not raw r||s (64 bytes for P-256)")

# --- encryption: decode the XML Encryption 1.1 layout independently ---
root = ET.parse(f"{d}/encrypted.xml").getroot()
pay = root.find(f"{KECIS}Payload/Ecom/Payment")
ed = pay.find(XENC + "EncryptedData")
if ed is None or pay.find("Card") is not None:
    fail("Card not replaced by EncryptedData")
if ed.get("Type") != "http://www.w3.org/2001/04/xmlenc#Element":
    fail("EncryptedData Type")
if ed.find(XENC + "EncryptionMethod").get("Algorithm") != "http://www.w3.org/2009/xmlenc11#aes256-gcm":
    fail("data encryption method")
ek = ed.find(f"{DS}KeyInfo/{XENC}EncryptedKey")
if ek is None or ek.get("Recipient") != "https://issuer.example/kecis":
    fail("EncryptedKey / Recipient")
em = ek.find(XENC + "EncryptionMethod")
if em.get("Algorithm") != "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" or len(em):
    fail("key transport method (expected rsa-oaep-mgf1p with no DigestMethod/OAEPparams)")
certs = ek.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
if len(certs) != 1 or b64(certs[0]) != der(f"{keys}/issuer-rsa.cert.pem"):
    fail("EncryptedKey KeyInfo does not carry the recipient certificate")

priv = serialization.load_pem_private_key(open(f"{keys}/issuer-rsa.key.pem", "rb").read(), None)
cek = priv.decrypt(b64(ek.find(f"{XENC}CipherData/{XENC}CipherValue")),
                   padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
if len(cek) != 32:
    fail(f"content key is {len(cek)} bytes, want 32")
blob = b64(ed.find(f"{XENC}CipherData/{XENC}CipherValue"))
iv, ct = blob[:12], blob[12:]           # IV (12) || ciphertext || tag (16)
pt = AESGCM(cek).decrypt(iv, ct, None)  # no AAD
orig = open(f"{d}/original.xml", "rb").read()
start = orig.index(b"<Card ")
end = orig.index(b"</Card>") + len(b"</Card>")
if pt != orig[start:end]:
    fail(f"GCM plaintext {pt!r} is not the original Card element")
print(f"selftest: independent decode OK: OAEP(SHA-1, MGF1-SHA-1) -> 32-byte key; "
      f"CipherValue = IV(12) || ciphertext({len(ct) - 16}) || tag(16), no AAD; "
      f"plaintext = the Card element", file=sys.stderr)
PY
log "PASS"

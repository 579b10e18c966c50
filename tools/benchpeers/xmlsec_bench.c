/*
 * xmlsec_bench: peer-comparison benchmark of libxmlsec1 (OpenSSL backend) on
 * the KECIS wire profile (docs/spec, KECIS §4 and §8).
 *
 * Build (scripts/bench-peers.sh does this):
 *   cc -O2 -Wall -Wextra -o bin/xmlsec_bench tools/benchpeers/xmlsec_bench.c \
 *      $(pkg-config --cflags --libs xmlsec1-openssl)
 *
 * Keys are loaded once; each operation then runs on one thread for --duration
 * seconds and prints exactly one line:
 *   RESULT xmlsec <op> <ops_per_sec>
 *
 * One op is, exactly:
 *   rsa-sha256-sign, ecdsa-sha256-sign
 *       parse the unsigned request from memory, insert an enveloped signature
 *       template right after saml:Issuer (exc-c14n, rsa-sha256/ecdsa-sha256,
 *       one Reference URI="#<root ID>" with enveloped-signature + exc-c14n,
 *       sha256, KeyInfo/X509Data), register the root ID attribute, sign,
 *       serialise with xmlDocDumpMemory.
 *   rsa-sha256-verify, ecdsa-sha256-verify
 *       parse a signed document (prepared once), register the ID, verify with
 *       a keys manager holding the signer certificate's key, require
 *       xmlSecDSigStatusSucceeded.
 *   xmlenc-gcm256-oaep-encrypt
 *       parse, replace the Payment/Card element by an EncryptedData
 *       (Type=#Element, xenc11#aes256-gcm) whose KeyInfo holds an EncryptedKey
 *       (rsa-oaep-mgf1p, Recipient, KeyInfo/X509Data = recipient cert) under a
 *       fresh AES-256 session key, serialise.
 *   xmlenc-gcm256-oaep-decrypt
 *       parse an encrypted document (prepared once), find EncryptedData,
 *       decrypt with the recipient private key, serialise.
 *
 * Options:
 *   --duration S     seconds per op (default 3; "2" and "2s" accepted)
 *   --ops a,b        run only these ops
 *   --key-lookup M   how verify/decrypt find the key held by the keys manager:
 *                    no-x509 (default: KeyInfo/X509Data ignored),
 *                    x509-untrusted (as the xmlsec1 CLI: the embedded cert is
 *                    chain-checked against OpenSSL's default store, fails,
 *                    then the manager's key is used), x509-trusted (the
 *                    manager also trusts the signer/recipient certificate)
 *   --sign-input I   plain (default: the unsigned request) or encrypted (the
 *                    request with Card already encrypted, as on the wire;
 *                    verify then checks signatures over encrypted documents)
 *
 * --selftest DIR writes original.xml, signed-rsa.xml, signed-ecdsa.xml,
 * encrypted.xml and decrypted.xml into DIR (tools/benchpeers/selftest.sh then
 * checks them with the xmlsec1 command line tool).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlmemory.h>
#include <libxml/xmlversion.h>

#ifndef XMLSEC_NO_XSLT
#include <libxslt/security.h>
#include <libxslt/xslt.h>
#endif

#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#include <openssl/opensslv.h>

#define KECIS_NS "urn:kecis:protocol:1.0"
#define SAML_NS "urn:oasis:names:tc:SAML:2.0:assertion"
#define RECIPIENT "https://issuer.example/kecis"
#define PARSE_OPTS (XML_PARSE_NONET)

/* ------------------------------------------------------------------ */
/* errors                                                              */

/* With --key-lookup x509-untrusted, every verify/decrypt makes xmlsec report
 * "certificate verification failed" for the embedded certificate before it
 * falls back to the keys manager's key. Those expected reports are counted,
 * not printed; every other report is printed, and a real failure still fails
 * the operation. */
static int g_lookup;
static unsigned long g_cert_reports;

static void errors_cb(const char *file, int line, const char *func,
                      const char *errorObject, const char *errorSubject,
                      int reason, const char *msg) {
    if (reason == XMLSEC_ERRORS_R_CERT_VERIFY_FAILED && g_lookup == 1) {
        g_cert_reports++;
        return;
    }
#if defined(XMLSEC_CRYPTO_OPENSSL) && defined(XMLSEC_NO_CRYPTO_DYNAMIC_LOADING)
    /* the callback xmlSecOpenSSLInit installs: adds OpenSSL's error queue */
    xmlSecOpenSSLErrorsDefaultCallback(file, line, func, errorObject,
                                       errorSubject, reason, msg);
#else
    xmlSecErrorsDefaultCallback(file, line, func, errorObject, errorSubject,
                                reason, msg);
#endif
}

static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "xmlsec_bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_file(const char *path, char **out, int *outLen) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0;
    if (f == NULL) {
        fail("open %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap == 0 ? 16384 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                fail("out of memory reading %s", path);
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f) || len > 0x7fffffff) {
        fail("read %s failed", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    *outLen = (int)len;
    return 0;
}

static int write_file(const char *dir, const char *name, const xmlChar *data,
                      int len) {
    char path[4096];
    FILE *f;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fail("path too long: %s/%s", dir, name);
        return -1;
    }
    f = fopen(path, "wb");
    if (f == NULL) {
        fail("create %s: %s", path, strerror(errno));
        return -1;
    }
    if (fwrite(data, 1, (size_t)len, f) != (size_t)len) {
        fail("write %s failed", path);
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        fail("close %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static xmlDocPtr parse(const char *buf, int len) {
    xmlDocPtr doc = xmlReadMemory(buf, len, "kecis.xml", NULL, PARSE_OPTS);
    if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        fail("cannot parse document");
        if (doc != NULL) xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

/* Registers the root's "ID" attribute as an XML ID and returns its value
 * (owned by the document). */
static const xmlChar *register_root_id(xmlDocPtr doc) {
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlAttrPtr attr;
    if (root == NULL) return NULL;
    attr = xmlHasProp(root, BAD_CAST "ID");
    if (attr == NULL || attr->children == NULL ||
        attr->children->content == NULL) {
        fail("root has no ID attribute");
        return NULL;
    }
    if (xmlGetID(doc, attr->children->content) == NULL &&
        xmlAddID(NULL, doc, attr->children->content, attr) == NULL) {
        fail("xmlAddID failed");
        return NULL;
    }
    return attr->children->content;
}

static int dump(xmlDocPtr doc, xmlChar **out, int *outLen) {
    xmlChar *buf = NULL;
    int len = 0;
    xmlDocDumpMemory(doc, &buf, &len);
    if (buf == NULL || len <= 0) {
        fail("xmlDocDumpMemory failed");
        if (buf != NULL) xmlFree(buf);
        return -1;
    }
    if (out != NULL) {
        *out = buf;
        *outLen = len;
    } else {
        xmlFree(buf);
    }
    return 0;
}

/* The no-namespace Card element under Payment under Ecom. */
static xmlNodePtr find_card(xmlDocPtr doc) {
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr ecom, payment, card;
    if (root == NULL) return NULL;
    ecom = xmlSecFindNode(root, BAD_CAST "Ecom", NULL);
    if (ecom == NULL) return NULL;
    payment = xmlSecFindChild(ecom, BAD_CAST "Payment", NULL);
    if (payment == NULL) return NULL;
    card = xmlSecFindChild(payment, BAD_CAST "Card", NULL);
    return card;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

typedef struct {
    xmlSecKeyPtr rsaSign;      /* private key + cert */
    xmlSecKeyPtr ecSign;       /* private key + cert */
    xmlSecKeysMngrPtr rsaVerify; /* holds the key of the RSA signer cert */
    xmlSecKeysMngrPtr ecVerify;  /* holds the key of the EC signer cert */
    xmlSecKeysMngrPtr encMngr;   /* holds the recipient cert's public key */
    xmlSecKeysMngrPtr decMngr;   /* holds the recipient private key + cert */
} keys_t;

/* How the verifier / decryptor finds its key (--key-lookup). In every mode
 * the key comes from a keys manager that holds the signer's certificate key
 * (verify) or the recipient's private key (decrypt); the modes differ in what
 * xmlsec does with the KeyInfo/X509Data it finds in the message first. */
enum {
    /* X509Data is not an enabled key data type: xmlsec skips it and takes
     * the manager's key. Closest to KECIS, which pins keys from metadata. */
    LOOKUP_NO_X509,
    /* xmlsec parses the embedded certificate and verifies it against its X509
     * store (OpenSSL default paths: a scan of /etc/ssl/certs per message);
     * this fails (not trusted), xmlsec reports "certificate verification
     * failed" and falls back to the manager's key. Exactly what
     * `xmlsec1 --verify --pubkey-cert-pem` / `--decrypt --privkey-pem` do. */
    LOOKUP_X509_UNTRUSTED,
    /* the manager also holds the certificate as trusted, so verifying the
     * embedded certificate succeeds (verify then uses its key). */
    LOOKUP_X509_TRUSTED
};
typedef char lookup_check[LOOKUP_X509_UNTRUSTED == 1 ? 1 : -1]; /* errors_cb */
static const char *const lookup_names[] = {"no-x509", "x509-untrusted",
                                           "x509-trusted"};

/* LOOKUP_NO_X509: a non-empty enabledKeyData list means only these KeyInfo
 * children are processed (nested EncryptedKey contexts inherit the list). */
static int restrict_keyinfo(xmlSecKeyInfoCtxPtr ctx) {
    const xmlSecKeyDataId enabled[] = {
        xmlSecKeyDataNameId,         xmlSecKeyDataValueId,
        xmlSecKeyDataEncryptedKeyId, xmlSecKeyDataAesId,
        xmlSecKeyDataRsaId,          xmlSecKeyDataEcdsaId};
    for (size_t i = 0; i < sizeof(enabled) / sizeof(enabled[0]); i++) {
        if (xmlSecPtrListAdd(&ctx->enabledKeyData, (xmlSecPtr)enabled[i]) < 0) {
            fail("xmlSecPtrListAdd(enabledKeyData) failed");
            return -1;
        }
    }
    return 0;
}

static xmlSecKeyPtr load_private(const char *keyFile, const char *certFile) {
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoad(keyFile, xmlSecKeyDataFormatPem,
                                              NULL, NULL, NULL);
    if (key == NULL) {
        fail("cannot load private key %s", keyFile);
        return NULL;
    }
    if (xmlSecCryptoAppKeyCertLoad(key, certFile, xmlSecKeyDataFormatPem) < 0) {
        fail("cannot load certificate %s", certFile);
        xmlSecKeyDestroy(key);
        return NULL;
    }
    if (xmlSecKeySetName(key, BAD_CAST keyFile) < 0) {
        fail("xmlSecKeySetName failed");
        xmlSecKeyDestroy(key);
        return NULL;
    }
    return key;
}

static xmlSecKeyPtr load_cert_key(const char *certFile) {
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoad(
        certFile, xmlSecKeyDataFormatCertPem, NULL, NULL, NULL);
    if (key == NULL) {
        fail("cannot load key from certificate %s", certFile);
        return NULL;
    }
    if (xmlSecKeySetName(key, BAD_CAST certFile) < 0) {
        fail("xmlSecKeySetName failed");
        xmlSecKeyDestroy(key);
        return NULL;
    }
    return key;
}

/* A key holding only a copy of key's value (no X509 data). Takes ownership
 * of key. The simple keys store hands out a duplicate of the key on every
 * lookup, and duplicating attached X509 data (X509_dup, re-decoding the
 * public key in OpenSSL 3) costs more than an RSA verification; the
 * verifier / decryptor only needs the key itself. */
static xmlSecKeyPtr value_only(xmlSecKeyPtr key) {
    xmlSecKeyPtr out;
    xmlSecKeyDataPtr value;
    if (key == NULL) return NULL;
    out = xmlSecKeyCreate();
    if (out == NULL) {
        fail("xmlSecKeyCreate failed");
        xmlSecKeyDestroy(key);
        return NULL;
    }
    value = xmlSecKeyDataDuplicate(xmlSecKeyGetValue(key));
    if (value == NULL || xmlSecKeySetValue(out, value) < 0) {
        fail("cannot copy the key value");
        if (value != NULL) xmlSecKeyDataDestroy(value);
        xmlSecKeyDestroy(out);
        xmlSecKeyDestroy(key);
        return NULL;
    }
    if (xmlSecKeySetName(out, xmlSecKeyGetName(key)) < 0) {
        fail("xmlSecKeySetName failed");
        xmlSecKeyDestroy(out);
        xmlSecKeyDestroy(key);
        return NULL;
    }
    xmlSecKeyDestroy(key);
    return out;
}

/* A keys manager that owns exactly one key. Takes ownership of key. */
static xmlSecKeysMngrPtr mngr_with(xmlSecKeyPtr key) {
    xmlSecKeysMngrPtr mngr;
    if (key == NULL) return NULL;
    mngr = xmlSecKeysMngrCreate();
    if (mngr == NULL) {
        fail("xmlSecKeysMngrCreate failed");
        xmlSecKeyDestroy(key);
        return NULL;
    }
    if (xmlSecCryptoAppDefaultKeysMngrInit(mngr) < 0) {
        fail("xmlSecCryptoAppDefaultKeysMngrInit failed");
        xmlSecKeyDestroy(key);
        xmlSecKeysMngrDestroy(mngr);
        return NULL;
    }
    if (xmlSecCryptoAppDefaultKeysMngrAdoptKey(mngr, key) < 0) {
        fail("xmlSecCryptoAppDefaultKeysMngrAdoptKey failed");
        xmlSecKeyDestroy(key);
        xmlSecKeysMngrDestroy(mngr);
        return NULL;
    }
    return mngr;
}

static void keys_free(keys_t *k) {
    if (k->rsaSign != NULL) xmlSecKeyDestroy(k->rsaSign);
    if (k->ecSign != NULL) xmlSecKeyDestroy(k->ecSign);
    if (k->rsaVerify != NULL) xmlSecKeysMngrDestroy(k->rsaVerify);
    if (k->ecVerify != NULL) xmlSecKeysMngrDestroy(k->ecVerify);
    if (k->encMngr != NULL) xmlSecKeysMngrDestroy(k->encMngr);
    if (k->decMngr != NULL) xmlSecKeysMngrDestroy(k->decMngr);
    memset(k, 0, sizeof(*k));
}

/* ------------------------------------------------------------------ */
/* operations                                                          */

typedef struct {
    const char *in;        /* unsigned request */
    int inLen;
    const char *signIn;    /* what the sign ops parse: in, or encrypted */
    int signInLen;
    keys_t *keys;
    xmlChar *signedRsa;    /* prepared once for verify */
    int signedRsaLen;
    xmlChar *signedEc;
    int signedEcLen;
    xmlChar *encrypted;    /* prepared once for decrypt */
    int encryptedLen;
} bench_t;

/* One sign op; if out != NULL, the serialised document is returned. */
static int op_sign(bench_t *b, int ec, xmlChar **out, int *outLen) {
    xmlDocPtr doc = NULL;
    xmlNodePtr root, issuer, signNode = NULL, refNode, keyInfoNode;
    xmlSecDSigCtxPtr dsigCtx = NULL;
    const xmlChar *id;
    xmlChar uri[512];
    int ret = -1, n;

    doc = parse(b->signIn, b->signInLen);
    if (doc == NULL) goto done;
    root = xmlDocGetRootElement(doc);
    issuer = xmlSecGetNextElementNode(root->children);
    if (issuer == NULL || !xmlSecCheckNodeName(issuer, BAD_CAST "Issuer",
                                               BAD_CAST SAML_NS)) {
        fail("first child of the root is not saml:Issuer");
        goto done;
    }
    id = register_root_id(doc);
    if (id == NULL) goto done;
    n = snprintf((char *)uri, sizeof(uri), "#%s", (const char *)id);
    if (n < 0 || (size_t)n >= sizeof(uri)) {
        fail("ID too long");
        goto done;
    }

    signNode = xmlSecTmplSignatureCreate(
        doc, xmlSecTransformExclC14NId,
        ec ? xmlSecTransformEcdsaSha256Id : xmlSecTransformRsaSha256Id, NULL);
    if (signNode == NULL) {
        fail("xmlSecTmplSignatureCreate failed");
        goto done;
    }
    if (xmlAddNextSibling(issuer, signNode) == NULL) {
        fail("xmlAddNextSibling failed");
        xmlFreeNode(signNode);
        goto done;
    }
    refNode = xmlSecTmplSignatureAddReference(signNode, xmlSecTransformSha256Id,
                                              NULL, uri, NULL);
    if (refNode == NULL) {
        fail("xmlSecTmplSignatureAddReference failed");
        goto done;
    }
    if (xmlSecTmplReferenceAddTransform(refNode, xmlSecTransformEnvelopedId) == NULL ||
        xmlSecTmplReferenceAddTransform(refNode, xmlSecTransformExclC14NId) == NULL) {
        fail("xmlSecTmplReferenceAddTransform failed");
        goto done;
    }
    keyInfoNode = xmlSecTmplSignatureEnsureKeyInfo(signNode, NULL);
    if (keyInfoNode == NULL || xmlSecTmplKeyInfoAddX509Data(keyInfoNode) == NULL) {
        fail("cannot add KeyInfo/X509Data");
        goto done;
    }

    dsigCtx = xmlSecDSigCtxCreate(NULL);
    if (dsigCtx == NULL) {
        fail("xmlSecDSigCtxCreate failed");
        goto done;
    }
    /* Borrow the key loaded once; detached again before destroy. */
    dsigCtx->signKey = ec ? b->keys->ecSign : b->keys->rsaSign;
    if (xmlSecDSigCtxSign(dsigCtx, signNode) < 0) {
        fail("xmlSecDSigCtxSign failed");
        goto done;
    }
    if (dsigCtx->status != xmlSecDSigStatusSucceeded) {
        fail("signature status %d", (int)dsigCtx->status);
        goto done;
    }
    if (dump(doc, out, outLen) < 0) goto done;
    ret = 0;
done:
    if (dsigCtx != NULL) {
        dsigCtx->signKey = NULL;
        xmlSecDSigCtxDestroy(dsigCtx);
    }
    if (doc != NULL) xmlFreeDoc(doc);
    return ret;
}

static int verify_buf(bench_t *b, int ec, const xmlChar *buf, int len) {
    xmlSecKeysMngrPtr mngr = ec ? b->keys->ecVerify : b->keys->rsaVerify;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, node;
    xmlSecDSigCtxPtr dsigCtx = NULL;
    int ret = -1;

    doc = parse((const char *)buf, len);
    if (doc == NULL) goto done;
    if (register_root_id(doc) == NULL) goto done;
    root = xmlDocGetRootElement(doc);
    node = xmlSecFindChild(root, xmlSecNodeSignature, xmlSecDSigNs);
    if (node == NULL) {
        fail("no ds:Signature child of the root");
        goto done;
    }
    dsigCtx = xmlSecDSigCtxCreate(mngr);
    if (dsigCtx == NULL) {
        fail("xmlSecDSigCtxCreate failed");
        goto done;
    }
    if (g_lookup == LOOKUP_NO_X509 && restrict_keyinfo(&dsigCtx->keyInfoReadCtx) < 0)
        goto done;
    if (xmlSecDSigCtxVerify(dsigCtx, node) < 0) {
        fail("xmlSecDSigCtxVerify failed");
        goto done;
    }
    if (dsigCtx->status != xmlSecDSigStatusSucceeded) {
        fail("signature status %d (not succeeded)", (int)dsigCtx->status);
        goto done;
    }
    if (xmlSecPtrListGetSize(&dsigCtx->signedInfoReferences) != 1) {
        fail("expected exactly one reference");
        goto done;
    }
    ret = 0;
done:
    if (dsigCtx != NULL) xmlSecDSigCtxDestroy(dsigCtx);
    if (doc != NULL) xmlFreeDoc(doc);
    return ret;
}

static int op_verify(bench_t *b, int ec) {
    return ec ? verify_buf(b, 1, b->signedEc, b->signedEcLen)
              : verify_buf(b, 0, b->signedRsa, b->signedRsaLen);
}

static int op_encrypt(bench_t *b, xmlChar **out, int *outLen) {
    xmlDocPtr doc = NULL;
    xmlNodePtr card, encData = NULL, keyInfo, encKey, ekKeyInfo;
    xmlSecEncCtxPtr encCtx = NULL;
    int ret = -1;

    doc = parse(b->in, b->inLen);
    if (doc == NULL) goto done;
    card = find_card(doc);
    if (card == NULL) {
        fail("no Ecom/Payment/Card element");
        goto done;
    }
    encData = xmlSecTmplEncDataCreate(doc, xmlSecTransformAes256GcmId, NULL,
                                      xmlSecTypeEncElement, NULL, NULL);
    if (encData == NULL) {
        fail("xmlSecTmplEncDataCreate failed");
        goto done;
    }
    if (xmlSecTmplEncDataEnsureCipherValue(encData) == NULL) {
        fail("xmlSecTmplEncDataEnsureCipherValue failed");
        goto done;
    }
    keyInfo = xmlSecTmplEncDataEnsureKeyInfo(encData, NULL);
    if (keyInfo == NULL) {
        fail("xmlSecTmplEncDataEnsureKeyInfo failed");
        goto done;
    }
    encKey = xmlSecTmplKeyInfoAddEncryptedKey(keyInfo, xmlSecTransformRsaOaepId,
                                              NULL, NULL, BAD_CAST RECIPIENT);
    if (encKey == NULL) {
        fail("xmlSecTmplKeyInfoAddEncryptedKey failed");
        goto done;
    }
    if (xmlSecTmplEncDataEnsureCipherValue(encKey) == NULL) {
        fail("xmlSecTmplEncDataEnsureCipherValue (EncryptedKey) failed");
        goto done;
    }
    ekKeyInfo = xmlSecTmplEncDataEnsureKeyInfo(encKey, NULL);
    if (ekKeyInfo == NULL || xmlSecTmplKeyInfoAddX509Data(ekKeyInfo) == NULL) {
        fail("cannot add EncryptedKey KeyInfo/X509Data");
        goto done;
    }

    encCtx = xmlSecEncCtxCreate(b->keys->encMngr);
    if (encCtx == NULL) {
        fail("xmlSecEncCtxCreate failed");
        goto done;
    }
    /* Fresh session key per op, as `xmlsec1 --encrypt --session-key aes-256`. */
    encCtx->encKey = xmlSecKeyGenerate(xmlSecKeyDataAesId, 256,
                                       xmlSecKeyDataTypeSession);
    if (encCtx->encKey == NULL) {
        fail("xmlSecKeyGenerate(aes, 256) failed");
        goto done;
    }
    if (xmlSecEncCtxXmlEncrypt(encCtx, encData, card) < 0) {
        fail("xmlSecEncCtxXmlEncrypt failed");
        goto done;
    }
    encData = NULL; /* now part of the document, replacing Card */
    if (dump(doc, out, outLen) < 0) goto done;
    ret = 0;
done:
    if (encCtx != NULL) xmlSecEncCtxDestroy(encCtx);
    if (encData != NULL) xmlFreeNode(encData);
    if (doc != NULL) xmlFreeDoc(doc);
    return ret;
}

static int op_decrypt(bench_t *b, xmlChar **out, int *outLen) {
    xmlDocPtr doc = NULL;
    xmlNodePtr node;
    xmlSecEncCtxPtr encCtx = NULL;
    int ret = -1;

    doc = parse((const char *)b->encrypted, b->encryptedLen);
    if (doc == NULL) goto done;
    node = xmlSecFindNode(xmlDocGetRootElement(doc), xmlSecNodeEncryptedData,
                          xmlSecEncNs);
    if (node == NULL) {
        fail("no xenc:EncryptedData");
        goto done;
    }
    encCtx = xmlSecEncCtxCreate(b->keys->decMngr);
    if (encCtx == NULL) {
        fail("xmlSecEncCtxCreate failed");
        goto done;
    }
    if (g_lookup == LOOKUP_NO_X509 && restrict_keyinfo(&encCtx->keyInfoReadCtx) < 0)
        goto done;
    if (xmlSecEncCtxDecrypt(encCtx, node) < 0) {
        fail("xmlSecEncCtxDecrypt failed");
        goto done;
    }
    if (encCtx->result == NULL || !encCtx->resultReplaced) {
        fail("decryption did not replace the EncryptedData element");
        goto done;
    }
    if (dump(doc, out, outLen) < 0) goto done;
    ret = 0;
done:
    if (encCtx != NULL) xmlSecEncCtxDestroy(encCtx);
    if (doc != NULL) xmlFreeDoc(doc);
    return ret;
}

/* ------------------------------------------------------------------ */
/* driver                                                              */

enum {
    OP_RSA_SIGN,
    OP_EC_SIGN,
    OP_RSA_VERIFY,
    OP_EC_VERIFY,
    OP_ENCRYPT,
    OP_DECRYPT,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "rsa-sha256-sign",  "ecdsa-sha256-sign",          "rsa-sha256-verify",
    "ecdsa-sha256-verify", "xmlenc-gcm256-oaep-encrypt", "xmlenc-gcm256-oaep-decrypt",
};

static int run_op(bench_t *b, int op) {
    switch (op) {
    case OP_RSA_SIGN: return op_sign(b, 0, NULL, NULL);
    case OP_EC_SIGN: return op_sign(b, 1, NULL, NULL);
    case OP_RSA_VERIFY: return op_verify(b, 0);
    case OP_EC_VERIFY: return op_verify(b, 1);
    case OP_ENCRYPT: return op_encrypt(b, NULL, NULL);
    case OP_DECRYPT: return op_decrypt(b, NULL, NULL);
    default: return -1;
    }
}

static int measure(bench_t *b, int op, double duration) {
    double start, end, elapsed;
    long count = 0;
    int i;

    /* Warm-up: a few untimed ops (caches, lazily initialised state). */
    for (i = 0; i < 10; i++) {
        if (run_op(b, op) < 0) {
            fail("%s failed during warm-up", op_names[op]);
            return -1;
        }
    }
    start = now_sec();
    end = start + duration;
    do {
        if (run_op(b, op) < 0) {
            fail("%s failed after %ld ops", op_names[op], count);
            return -1;
        }
        count++;
        elapsed = now_sec() - start;
    } while (start + elapsed < end);
    printf("RESULT xmlsec %s %.1f\n", op_names[op], (double)count / elapsed);
    fflush(stdout);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: xmlsec_bench --in FILE --rsa-key K --rsa-cert C --ec-key K "
            "--ec-cert C\n"
            "                    --recipient-key K --recipient-cert C\n"
            "                    [--duration SECONDS] [--ops op1,op2,...] "
            "[--selftest DIR]\n"
            "                    [--key-lookup no-x509|x509-untrusted|x509-trusted]\n"
            "                    [--sign-input plain|encrypted]\n"
            "ops:");
    for (int i = 0; i < OP_COUNT; i++) fprintf(f, " %s", op_names[i]);
    fprintf(f, "\n");
}

typedef struct {
    const char *in, *rsaKey, *rsaCert, *ecKey, *ecCert, *recKey, *recCert;
    const char *selftest, *ops, *lookup, *signInput;
    double duration;
} opts_t;

static int parse_args(int argc, char **argv, opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->duration = 3.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fail("missing value for %s", a);
            return -1;
        }
        if (strcmp(a, "--in") == 0) dst = &o->in;
        else if (strcmp(a, "--rsa-key") == 0) dst = &o->rsaKey;
        else if (strcmp(a, "--rsa-cert") == 0) dst = &o->rsaCert;
        else if (strcmp(a, "--ec-key") == 0) dst = &o->ecKey;
        else if (strcmp(a, "--ec-cert") == 0) dst = &o->ecCert;
        else if (strcmp(a, "--recipient-key") == 0) dst = &o->recKey;
        else if (strcmp(a, "--recipient-cert") == 0) dst = &o->recCert;
        else if (strcmp(a, "--selftest") == 0) dst = &o->selftest;
        else if (strcmp(a, "--ops") == 0) dst = &o->ops;
        else if (strcmp(a, "--key-lookup") == 0) dst = &o->lookup;
        else if (strcmp(a, "--sign-input") == 0) dst = &o->signInput;
        else if (strcmp(a, "--duration") == 0) {
            char *endp = NULL;
            const char *v = argv[++i];
            size_t vl = strlen(v);
            errno = 0;
            o->duration = strtod(v, &endp);
            /* accept "3" and "3s" */
            if (errno != 0 || endp == v ||
                !(*endp == '\0' || (endp == v + vl - 1 && *endp == 's')) ||
                !(o->duration > 0.0 && o->duration <= 3600.0)) {
                fail("bad --duration %s", v);
                return -1;
            }
            continue;
        } else {
            fail("unknown flag %s", a);
            usage(stderr);
            return -1;
        }
        *dst = argv[++i];
    }
    if (o->lookup != NULL) {
        int found = 0;
        for (int i = 0; i < 3; i++) {
            if (strcmp(o->lookup, lookup_names[i]) == 0) {
                g_lookup = i;
                found = 1;
            }
        }
        if (!found) {
            fail("bad --key-lookup %s (no-x509, x509-untrusted or x509-trusted)",
                 o->lookup);
            return -1;
        }
    }
    if (o->signInput != NULL && strcmp(o->signInput, "plain") != 0 &&
        strcmp(o->signInput, "encrypted") != 0) {
        fail("bad --sign-input %s (plain or encrypted)", o->signInput);
        return -1;
    }
    if (!o->in || !o->rsaKey || !o->rsaCert || !o->ecKey || !o->ecCert ||
        !o->recKey || !o->recCert) {
        fail("--in, --rsa-key, --rsa-cert, --ec-key, --ec-cert, "
             "--recipient-key and --recipient-cert are required");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Marks selected ops in sel[]; NULL list means all. */
static int select_ops(const char *list, int sel[OP_COUNT]) {
    char *copy, *tok, *save = NULL;
    if (list == NULL) {
        for (int i = 0; i < OP_COUNT; i++) sel[i] = 1;
        return 0;
    }
    for (int i = 0; i < OP_COUNT; i++) sel[i] = 0;
    copy = strdup(list);
    if (copy == NULL) return -1;
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < OP_COUNT; i++) {
            if (strcmp(tok, op_names[i]) == 0) {
                sel[i] = 1;
                found = 1;
            }
        }
        if (!found) {
            fail("unknown op %s", tok);
            free(copy);
            return -1;
        }
    }
    free(copy);
    return 0;
}

static int trust_cert(xmlSecKeysMngrPtr mngr, const char *certFile) {
    if (mngr == NULL) return -1;
    if (xmlSecCryptoAppKeysMngrCertLoad(mngr, certFile, xmlSecKeyDataFormatPem,
                                        xmlSecKeyDataTypeTrusted) < 0) {
        fail("cannot load %s as a trusted certificate", certFile);
        return -1;
    }
    return 0;
}

static int load_keys(const opts_t *o, keys_t *k) {
    memset(k, 0, sizeof(*k));

    k->rsaSign = load_private(o->rsaKey, o->rsaCert);
    k->ecSign = load_private(o->ecKey, o->ecCert);
    k->rsaVerify = mngr_with(value_only(load_cert_key(o->rsaCert)));
    k->ecVerify = mngr_with(value_only(load_cert_key(o->ecCert)));
    /* the encryptor writes the recipient certificate into KeyInfo: keep it */
    k->encMngr = mngr_with(load_cert_key(o->recCert));
    k->decMngr = mngr_with(value_only(load_private(o->recKey, o->recCert)));
    if (!k->rsaSign || !k->ecSign || !k->rsaVerify || !k->ecVerify ||
        !k->encMngr || !k->decMngr) {
        keys_free(k);
        return -1;
    }
    if (g_lookup == LOOKUP_X509_TRUSTED &&
        (trust_cert(k->rsaVerify, o->rsaCert) < 0 ||
         trust_cert(k->ecVerify, o->ecCert) < 0 ||
         trust_cert(k->decMngr, o->recCert) < 0)) {
        keys_free(k);
        return -1;
    }
    return 0;
}

static int prepare(bench_t *b, int signEncrypted) {
    if (op_encrypt(b, &b->encrypted, &b->encryptedLen) < 0) return -1;
    if (signEncrypted) {
        b->signIn = (const char *)b->encrypted;
        b->signInLen = b->encryptedLen;
    } else {
        b->signIn = b->in;
        b->signInLen = b->inLen;
    }
    if (op_sign(b, 0, &b->signedRsa, &b->signedRsaLen) < 0) return -1;
    if (op_sign(b, 1, &b->signedEc, &b->signedEcLen) < 0) return -1;
    /* Sanity: the prepared documents verify/decrypt before timing starts. */
    if (op_verify(b, 0) < 0 || op_verify(b, 1) < 0) return -1;
    if (op_decrypt(b, NULL, NULL) < 0) return -1;
    return 0;
}

/* A signed document with one digit of IssueInstant changed must not verify. */
static int tamper_check(bench_t *b, int ec) {
    const xmlChar *src = ec ? b->signedEc : b->signedRsa;
    int len = ec ? b->signedEcLen : b->signedRsaLen, ret = -1;
    xmlChar *copy = xmlStrndup(src, len);
    char *p;
    if (copy == NULL) return -1;
    p = strstr((char *)copy, "IssueInstant=\"");
    if (p == NULL) {
        fail("selftest: no IssueInstant in the signed document");
        goto done;
    }
    p += strlen("IssueInstant=\"");
    *p = (*p == '1') ? '2' : '1';
    fprintf(stderr, "xmlsec_bench: selftest: verifying a tampered %s document "
                    "(an error report below is expected)\n", ec ? "ECDSA" : "RSA");
    if (verify_buf(b, ec, copy, len) == 0) {
        fail("selftest: tampered %s document verified", ec ? "ECDSA" : "RSA");
        goto done;
    }
    ret = 0;
done:
    xmlFree(copy);
    return ret;
}

static int selftest(bench_t *b, const char *dir) {
    xmlDocPtr doc;
    xmlChar *orig = NULL, *dec = NULL;
    int origLen = 0, decLen = 0, ret = -1;

    doc = parse(b->in, b->inLen);
    if (doc == NULL) return -1;
    if (dump(doc, &orig, &origLen) < 0) {
        xmlFreeDoc(doc);
        return -1;
    }
    xmlFreeDoc(doc);
    if (tamper_check(b, 0) < 0 || tamper_check(b, 1) < 0) goto done;
    if (op_decrypt(b, &dec, &decLen) < 0) goto done;
    if (decLen != origLen || memcmp(dec, orig, (size_t)origLen) != 0) {
        fail("selftest: decrypted document differs from the original");
        goto done;
    }
    if (write_file(dir, "original.xml", orig, origLen) < 0 ||
        write_file(dir, "signed-rsa.xml", b->signedRsa, b->signedRsaLen) < 0 ||
        write_file(dir, "signed-ecdsa.xml", b->signedEc, b->signedEcLen) < 0 ||
        write_file(dir, "encrypted.xml", b->encrypted, b->encryptedLen) < 0 ||
        write_file(dir, "decrypted.xml", dec, decLen) < 0)
        goto done;
    fprintf(stderr, "xmlsec_bench: selftest documents written to %s\n", dir);
    ret = 0;
done:
    if (orig != NULL) xmlFree(orig);
    if (dec != NULL) xmlFree(dec);
    return ret;
}

/* How far initialisation got, so that shutdown undoes exactly that. */
static struct {
    int xmlsec, cryptoApp, crypto;
#ifndef XMLSEC_NO_XSLT
    xsltSecurityPrefsPtr xsltPrefs;
#endif
} g_init;

static int init_libs(void) {
    xmlInitParser();
    LIBXML_TEST_VERSION
#ifndef XMLSEC_NO_XSLT
    /* No XSLT transform is used; forbid everything, as xmlsec's examples do. */
    g_init.xsltPrefs = xsltNewSecurityPrefs();
    if (g_init.xsltPrefs == NULL) {
        fail("xsltNewSecurityPrefs failed");
        return -1;
    }
    if (xsltSetSecurityPrefs(g_init.xsltPrefs, XSLT_SECPREF_READ_FILE, xsltSecurityForbid) < 0 ||
        xsltSetSecurityPrefs(g_init.xsltPrefs, XSLT_SECPREF_WRITE_FILE, xsltSecurityForbid) < 0 ||
        xsltSetSecurityPrefs(g_init.xsltPrefs, XSLT_SECPREF_CREATE_DIRECTORY, xsltSecurityForbid) < 0 ||
        xsltSetSecurityPrefs(g_init.xsltPrefs, XSLT_SECPREF_READ_NETWORK, xsltSecurityForbid) < 0 ||
        xsltSetSecurityPrefs(g_init.xsltPrefs, XSLT_SECPREF_WRITE_NETWORK, xsltSecurityForbid) < 0) {
        fail("xsltSetSecurityPrefs failed");
        return -1;
    }
    xsltSetDefaultSecurityPrefs(g_init.xsltPrefs);
#endif
    if (xmlSecInit() < 0) {
        fail("xmlSecInit failed");
        return -1;
    }
    g_init.xmlsec = 1;
    if (xmlSecCheckVersion() != 1) {
        fail("loaded libxmlsec1 is not compatible with the headers");
        return -1;
    }
#ifdef XMLSEC_CRYPTO_DYNAMIC_LOADING
    /* Crypto engine loaded at run time: ask for the OpenSSL one. */
    if (xmlSecCryptoDLLoadLibrary(BAD_CAST "openssl") < 0) {
        fail("xmlSecCryptoDLLoadLibrary(openssl) failed");
        return -1;
    }
#endif
    /* With XMLSEC_NO_CRYPTO_DYNAMIC_LOADING (Debian's build), the
     * xmlSecCrypto* names are macros for the linked xmlSecOpenSSL* functions;
     * with dynamic loading they dispatch to the library loaded above. */
    if (xmlSecCryptoAppInit(NULL) < 0) {
        fail("xmlSecCryptoAppInit failed");
        return -1;
    }
    g_init.cryptoApp = 1;
    if (xmlSecCryptoInit() < 0) {
        fail("xmlSecCryptoInit failed");
        return -1;
    }
    g_init.crypto = 1;
    /* after xmlSecCryptoInit, which installs the engine's own callback */
    xmlSecErrorsSetCallback(errors_cb);
    return 0;
}

static void shutdown_libs(void) {
    if (g_init.crypto) xmlSecCryptoShutdown();
    if (g_init.cryptoApp) xmlSecCryptoAppShutdown();
    if (g_init.xmlsec) xmlSecShutdown();
#ifndef XMLSEC_NO_XSLT
    if (g_init.xsltPrefs != NULL) {
        xsltSetDefaultSecurityPrefs(NULL);
        xsltFreeSecurityPrefs(g_init.xsltPrefs);
    }
    xsltCleanupGlobals();
#endif
    xmlCleanupParser();
    memset(&g_init, 0, sizeof(g_init));
}

int main(int argc, char **argv) {
    opts_t o;
    keys_t keys;
    bench_t b;
    char *in = NULL;
    int inLen = 0, sel[OP_COUNT], rc = 1;

    if (parse_args(argc, argv, &o) < 0) return 2;
    if (select_ops(o.ops, sel) < 0) return 2;
    if (read_file(o.in, &in, &inLen) < 0) return 1;

    if (init_libs() < 0) {
        shutdown_libs();
        free(in);
        return 1;
    }
    fprintf(stderr,
            "xmlsec_bench: xmlsec %s, libxml2 %s, %s, duration %.2fs, "
            "key lookup %s, sign input %s\n",
            XMLSEC_VERSION, LIBXML_DOTTED_VERSION, OPENSSL_VERSION_TEXT,
            o.duration, lookup_names[g_lookup],
            o.signInput != NULL ? o.signInput : "plain");

    memset(&b, 0, sizeof(b));
    if (load_keys(&o, &keys) < 0) goto out;
    b.in = in;
    b.inLen = inLen;
    b.keys = &keys;

    if (prepare(&b, o.signInput != NULL && strcmp(o.signInput, "encrypted") == 0) < 0) {
        fail("preparing signed/encrypted documents failed");
        goto out_keys;
    }
    if (o.selftest != NULL) {
        rc = selftest(&b, o.selftest) < 0 ? 1 : 0;
        goto out_keys;
    }

    rc = 0;
    for (int i = 0; i < OP_COUNT; i++) {
        if (!sel[i]) continue;
        if (measure(&b, i, o.duration) < 0) {
            rc = 1;
            break;
        }
    }
    if (g_cert_reports > 0)
        fprintf(stderr,
                "xmlsec_bench: %lu expected 'certificate verification failed' "
                "reports (untrusted embedded cert, key from keys manager) not "
                "shown\n",
                g_cert_reports);

out_keys:
    keys_free(&keys);
out:
    if (b.signedRsa != NULL) xmlFree(b.signedRsa);
    if (b.signedEc != NULL) xmlFree(b.signedEc);
    if (b.encrypted != NULL) xmlFree(b.encrypted);
    shutdown_libs();
    free(in);
    return rc;
}

/*! kecis-encrypt 1.0.0 | KECIS §8 browser card encryption | Apache-2.0 */
// Encrypts the ECML card fields of a checkout form in the cardholder's
// browser, for the one provider the hub named (POST /v1/routes), so that the
// card never reaches the merchant's server in clear. The result is the
// xenc:EncryptedData of KECIS §8.2 that the hub's JSON facade takes as
// encrypted.card: the ECML Card element (Ecom/Payment/Card), encrypted with
// AES-256-GCM (http://www.w3.org/2009/xmlenc11#aes256-gcm: CipherValue =
// 12-octet IV, ciphertext, 16-octet tag) under a fresh key, the key wrapped
// with RSA-OAEP (http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p: SHA-1
// digest and MGF1-SHA-1) for the provider's encryption certificate, which
// the EncryptedKey names with the provider's entityID. No dependency: Web
// Crypto only, so the page must be a secure context (HTTPS).
//
//   KECIS.encryptCard(fields, route) -> Promise<{card, card_bin, card_last4}>
//     fields: ECML card field names (Ecom_Payment_Card_*) to strings;
//     route:  the JSON answer of POST /v1/routes ({recipient,
//             encryption_certificate}), passed on by the merchant's server.
//     card is encrypted.card; card_bin and card_last4 are the routing
//     hints (the first six and last four digits, "" unless 13-19 digits).
//   KECIS.fieldsOf(form) -> the values of the form's [data-ecml] inputs.
//   KECIS.cardElement(fields) -> the Card element's XML (the plaintext).
//
// Errors name a field, never its value.
(function (root) {
  "use strict";

  var VERSION = "1.0.0";
  var NS_XENC = "http://www.w3.org/2001/04/xmlenc#";
  var NS_DS = "http://www.w3.org/2000/09/xmldsig#";
  var ALG_CONTENT = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
  var ALG_TRANSPORT = NS_XENC + "rsa-oaep-mgf1p";

  // The Card element's attributes in the order the hub's ECML writer
  // puts them, with their flat names (RFC 4112 §2.1.1).
  var CARD_ATTRS = [
    ["Name", "Ecom_Payment_Card_Name"],
    ["Type", "Ecom_Payment_Card_Type"],
    ["Number", "Ecom_Payment_Card_Number"],
    ["Protocols", "Ecom_Payment_Card_Protocol"],
    ["Verification", "Ecom_Payment_Card_Verification"],
    ["Issuer", "Ecom_Payment_Card_IssueNumber"]
  ];
  var CARD_DATES = [
    ["ExpDate", "Ecom_Payment_Card_ExpDate"],
    ["ValidDate", "Ecom_Payment_Card_ValidFrom"]
  ];
  var DATE_PARTS = ["Day", "Month", "Year"];
  var NUMBER = "Ecom_Payment_Card_Number";

  function fail(msg) {
    throw new Error("kecis-encrypt: " + msg);
  }

  var known = {};
  CARD_ATTRS.forEach(function (a) { known[a[1]] = true; });
  CARD_DATES.forEach(function (d) {
    DATE_PARTS.forEach(function (p) { known[d[1] + "_" + p] = true; });
  });

  // value returns a field as the Card carries it: trimmed, the number
  // without the spaces and dashes people type.
  function value(fields, name) {
    var v = fields[name];
    if (v === undefined || v === null) {
      return "";
    }
    if (typeof v !== "string") {
      fail(name + " must be a string");
    }
    v = v.trim();
    if (name === NUMBER) {
      v = v.replace(/[\s-]/g, "");
    }
    // Characters an XML attribute would not carry as written (controls,
    // lone surrogates): refused rather than silently changed.
    if (/[\u0000-\u001f\u007f\ud800-\udfff\ufffe\uffff]/.test(v)) {
      fail(name + " holds a character that cannot be sent");
    }
    return v;
  }

  function escapeAttr(v) {
    return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/'/g, "&apos;").replace(/"/g, "&quot;");
  }

  function attrs(pairs) {
    var s = "";
    pairs.forEach(function (p) {
      if (p[1] !== "") {
        s += " " + p[0] + '="' + escapeAttr(p[1]) + '"';
      }
    });
    return s;
  }

  function cardElement(fields) {
    if (!fields || typeof fields !== "object") {
      fail("the card fields must be an object");
    }
    Object.keys(fields).forEach(function (k) {
      if (!known[k]) {
        fail(k + " is not an ECML card field");
      }
    });
    var num = value(fields, NUMBER);
    if (!/^[0-9]{13,19}$/.test(num)) {
      fail(NUMBER + " must be 13 to 19 digits");
    }
    var head = attrs(CARD_ATTRS.map(function (a) { return [a[0], value(fields, a[1])]; }));
    var body = "";
    CARD_DATES.forEach(function (d) {
      var parts = DATE_PARTS.map(function (p) { return [p, value(fields, d[1] + "_" + p)]; });
      var a = attrs(parts);
      if (a !== "") {
        body += "<" + d[0] + a + "/>";
      }
    });
    return body === "" ? "<Card" + head + "/>" : "<Card" + head + ">" + body + "</Card>";
  }

  // DER: the SubjectPublicKeyInfo of an X.509 certificate (RFC 5280
  // §4.1: Certificate → tbsCertificate → [0] version, serialNumber,
  // signature, issuer, validity, subject, subjectPublicKeyInfo).
  function tlv(der, off) {
    if (off + 2 > der.length) {
      fail("the encryption certificate is truncated");
    }
    var len = der[off + 1];
    var hdr = 2;
    if (len & 0x80) {
      var n = len & 0x7f;
      if (n < 1 || n > 3 || off + 2 + n > der.length) {
        fail("the encryption certificate is not DER");
      }
      len = 0;
      for (var i = 0; i < n; i++) {
        len = len * 256 + der[off + 2 + i];
      }
      hdr += n;
    }
    var end = off + hdr + len;
    if (end > der.length) {
      fail("the encryption certificate is truncated");
    }
    return { tag: der[off], body: off + hdr, end: end };
  }

  function spkiOf(der) {
    var cert = tlv(der, 0);
    if (cert.tag !== 0x30 || cert.end !== der.length) {
      fail("the encryption certificate is not an X.509 certificate");
    }
    var tbs = tlv(der, cert.body);
    var off = tbs.body;
    var f = tlv(der, off);
    if (f.tag === 0xa0) {
      off = f.end;
    }
    var want = [0x02, 0x30, 0x30, 0x30, 0x30]; // serial, signature, issuer, validity, subject
    for (var i = 0; i < want.length; i++) {
      f = tlv(der, off);
      if (f.tag !== want[i]) {
        fail("the encryption certificate is not an X.509 certificate");
      }
      off = f.end;
    }
    var spki = tlv(der, off);
    if (spki.tag !== 0x30) {
      fail("the encryption certificate is not an X.509 certificate");
    }
    return der.slice(off, spki.end);
  }

  function pemToDER(pem) {
    if (typeof pem !== "string") {
      fail("route.encryption_certificate must be a PEM certificate");
    }
    var m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+\/=\s]+)-----END CERTIFICATE-----/.exec(pem);
    if (!m) {
      fail("route.encryption_certificate must be a PEM certificate");
    }
    var bin = atob(m[1].replace(/\s/g, ""));
    var der = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      der[i] = bin.charCodeAt(i);
    }
    return der;
  }

  function b64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  function subtle() {
    var c = root.crypto;
    if (!c || !c.subtle || !c.getRandomValues) {
      fail("Web Crypto is not available: the page must be served over HTTPS");
    }
    return c.subtle;
  }

  function encryptCard(fields, route) {
    return Promise.resolve().then(function () {
      if (!route || typeof route.recipient !== "string" || route.recipient === "") {
        fail("route.recipient must be the provider's entityID from POST /v1/routes");
      }
      var plain = new TextEncoder().encode(cardElement(fields));
      var der = pemToDER(route.encryption_certificate);
      var s = subtle();
      var num = value(fields, NUMBER);
      var rsa, raw, aes;
      return s.importKey("spki", spkiOf(der), { name: "RSA-OAEP", hash: "SHA-1" }, false, ["encrypt"])
        .catch(function () { fail("the encryption certificate does not hold an RSA key"); })
        .then(function (k) {
          if (!k.algorithm || k.algorithm.modulusLength < 2048) {
            fail("the encryption certificate's RSA key is shorter than 2048 bits");
          }
          rsa = k;
          raw = root.crypto.getRandomValues(new Uint8Array(32));
          return s.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt"]);
        })
        .then(function (k) {
          aes = k;
          return s.encrypt({ name: "RSA-OAEP" }, rsa, raw);
        })
        .then(function (wrapped) {
          raw.fill(0);
          var iv = root.crypto.getRandomValues(new Uint8Array(12));
          return s.encrypt({ name: "AES-GCM", iv: iv, tagLength: 128 }, aes, plain).then(function (ct) {
            plain.fill(0);
            var cv = new Uint8Array(12 + ct.byteLength);
            cv.set(iv, 0);
            cv.set(new Uint8Array(ct), 12);
            var ed =
              '<xenc:EncryptedData xmlns:xenc="' + NS_XENC + '" Type="' + NS_XENC + 'Element">' +
              '<xenc:EncryptionMethod Algorithm="' + ALG_CONTENT + '"/>' +
              '<ds:KeyInfo xmlns:ds="' + NS_DS + '">' +
              '<xenc:EncryptedKey xmlns:xenc="' + NS_XENC + '" xmlns:ds="' + NS_DS + '" Recipient="' + escapeAttr(route.recipient) + '">' +
              '<xenc:EncryptionMethod Algorithm="' + ALG_TRANSPORT + '"/>' +
              "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>" + b64(der) + "</ds:X509Certificate></ds:X509Data></ds:KeyInfo>" +
              "<xenc:CipherData><xenc:CipherValue>" + b64(new Uint8Array(wrapped)) + "</xenc:CipherValue></xenc:CipherData>" +
              "</xenc:EncryptedKey>" +
              "</ds:KeyInfo>" +
              "<xenc:CipherData><xenc:CipherValue>" + b64(cv) + "</xenc:CipherValue></xenc:CipherData>" +
              "</xenc:EncryptedData>";
            return { card: ed, card_bin: num.slice(0, 6), card_last4: num.slice(-4) };
          });
        });
    });
  }

  function fieldsOf(form) {
    var out = {};
    var els = form.querySelectorAll("[data-ecml]");
    for (var i = 0; i < els.length; i++) {
      out[els[i].getAttribute("data-ecml")] = els[i].value;
    }
    return out;
  }

  root.KECIS = Object.freeze({
    version: VERSION,
    encryptCard: encryptCard,
    cardElement: cardElement,
    fieldsOf: fieldsOf
  });
})(typeof globalThis !== "undefined" ? globalThis : self);

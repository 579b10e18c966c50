/*
 * KecisXmlEnc: XML Encryption 1.1 with Apache Santuario (xmlsec 2.1.x), for
 * KECIS interoperability tests. Test tool only: it is compiled and run by
 * internal/testutil/santuario.go and never ships.
 *
 *   encrypt --cert RECIPIENT_CERT.pem --in FILE --element LOCALNAME
 *           --key-transport rsa-oaep|rsa-oaep-mgf1p [--recipient ENTITYID]
 *           [--line-breaks true|false] --out FILE
 *   decrypt --key RECIPIENT_KEY.pem --in FILE --out FILE
 *
 * --line-breaks false sets org.apache.xml.security.ignoreLineBreaks (as
 * OpenSAML does): base64 on one line and no newlines between the KeyInfo
 * children. The default, true, is plain Santuario's output: base64 wrapped at
 * 76 columns with CRLF (serialized as "&#13;\n").
 *
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage error.
 */

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.xml.security.encryption.EncryptedData;
import org.apache.xml.security.encryption.EncryptedKey;
import org.apache.xml.security.encryption.XMLCipher;
import org.apache.xml.security.keys.KeyInfo;
import org.apache.xml.security.keys.content.X509Data;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

public final class KecisXmlEnc {
    static final String NS_XENC = "http://www.w3.org/2001/04/xmlenc#";
    static final String NS_DS = "http://www.w3.org/2000/09/xmldsig#";
    static final String TYPE_ELEMENT = "http://www.w3.org/2001/04/xmlenc#Element";

    static final String AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
    static final String AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
    static final String RSA_OAEP_11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
    static final String RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
    static final String SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    static final String MGF1_SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256";

    /** Data algorithms this tool decrypts, with their key length in bytes. */
    static final Map<String, Integer> DATA_ALGS = Map.of(AES128_GCM, 16, AES256_GCM, 32);
    /** Key transport algorithms this tool decrypts. */
    static final Set<String> KEY_ALGS = Set.of(RSA_OAEP_11, RSA_OAEP_MGF1P);

    /** A failure to report on stderr, exit status 1. */
    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        Failure(String msg) { super(msg); }
        Failure(String msg, Throwable cause) { super(msg, cause); }
    }

    /** A usage error, exit status 2. */
    static final class Usage extends Exception {
        private static final long serialVersionUID = 1L;
        Usage(String msg) { super(msg); }
    }

    public static void main(String[] args) {
        try {
            if (args.length == 0) {
                throw new Usage("missing command");
            }
            Map<String, String> opts = parseOptions(args);
            switch (args[0]) {
                case "encrypt" -> encrypt(opts);
                case "decrypt" -> decrypt(opts);
                default -> throw new Usage("unknown command " + args[0]);
            }
        } catch (Usage e) {
            System.err.println("KecisXmlEnc: " + e.getMessage());
            System.err.println("usage: KecisXmlEnc encrypt --cert CERT.pem --in FILE --element LOCALNAME"
                    + " --key-transport rsa-oaep|rsa-oaep-mgf1p [--recipient ENTITYID] [--line-breaks true|false] --out FILE");
            System.err.println("       KecisXmlEnc decrypt --key KEY.pem --in FILE --out FILE");
            System.exit(2);
        } catch (Failure e) {
            System.err.println("KecisXmlEnc: " + describe(e));
            System.exit(1);
        } catch (Exception e) {
            System.err.println("KecisXmlEnc: " + describe(e));
            System.exit(1);
        }
    }

    /** The message of e and of its causes, on one line. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = e; c != null; c = c.getCause()) {
            String m = c.getMessage();
            if (m == null || m.isEmpty()) {
                m = c.getClass().getName();
            } else if (!(c instanceof Failure)) {
                m = c.getClass().getSimpleName() + ": " + m;
            }
            if (sb.length() > 0) {
                if (sb.indexOf(m) >= 0) {
                    continue;
                }
                sb.append(": ");
            }
            sb.append(m);
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.toString();
    }

    static Map<String, String> parseOptions(String[] args) throws Usage {
        Map<String, String> opts = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() == 2) {
                throw new Usage("unexpected argument " + a);
            }
            if (i + 1 >= args.length) {
                throw new Usage(a + " needs a value");
            }
            if (opts.put(a.substring(2), args[++i]) != null) {
                throw new Usage(a + " given twice");
            }
        }
        return opts;
    }

    static String need(Map<String, String> opts, String name) throws Usage {
        String v = opts.remove(name);
        if (v == null || v.isEmpty()) {
            throw new Usage("missing --" + name);
        }
        return v;
    }

    static void noMore(Map<String, String> opts) throws Usage {
        if (!opts.isEmpty()) {
            throw new Usage("unknown option --" + opts.keySet().iterator().next());
        }
    }

    // ---- encrypt ----------------------------------------------------------

    static void encrypt(Map<String, String> opts) throws Exception {
        String certPath = need(opts, "cert");
        String in = need(opts, "in");
        String elementName = need(opts, "element");
        String transport = need(opts, "key-transport");
        String out = need(opts, "out");
        String recipient = opts.remove("recipient");
        String lineBreaks = opts.getOrDefault("line-breaks", "true");
        opts.remove("line-breaks");
        noMore(opts);
        switch (lineBreaks) {
            case "true" -> { }
            case "false" -> System.setProperty("org.apache.xml.security.ignoreLineBreaks", "true");
            default -> throw new Usage("--line-breaks must be true or false, not " + lineBreaks);
        }

        String keyAlg;
        String digestAlg;
        String mgfAlg;
        switch (transport) {
            case "rsa-oaep" -> { keyAlg = XMLCipher.RSA_OAEP_11; digestAlg = SHA256; mgfAlg = MGF1_SHA256; }
            case "rsa-oaep-mgf1p" -> { keyAlg = XMLCipher.RSA_OAEP; digestAlg = SHA1; mgfAlg = null; }
            default -> throw new Usage("--key-transport must be rsa-oaep or rsa-oaep-mgf1p, not " + transport);
        }

        X509Certificate cert = readCertificate(Path.of(certPath));
        byte[] input = Files.readAllBytes(Path.of(in));
        Document doc = parse(input);
        Element target = firstElement(doc, elementName);
        if (target == null) {
            throw new Failure("no element " + elementName + " (in no namespace) in " + in);
        }

        org.apache.xml.security.Init.init();

        KeyGenerator kg = KeyGenerator.getInstance("AES");
        kg.init(256);
        SecretKey cek = kg.generateKey();

        // The content-encryption key, wrapped for the recipient's RSA key.
        XMLCipher keyCipher = XMLCipher.getInstance(keyAlg, null, digestAlg);
        keyCipher.init(XMLCipher.WRAP_MODE, cert.getPublicKey());
        EncryptedKey ek = keyCipher.encryptKey(doc, cek, mgfAlg, null);
        if (recipient != null && !recipient.isEmpty()) {
            ek.setRecipient(recipient);
        }
        KeyInfo ekKeyInfo = new KeyInfo(doc);
        X509Data x509 = new X509Data(doc);
        x509.addCertificate(cert);
        ekKeyInfo.add(x509);
        ek.setKeyInfo(ekKeyInfo);

        // The element, replaced by EncryptedData Type=#Element.
        XMLCipher dataCipher = XMLCipher.getInstance(XMLCipher.AES_256_GCM);
        dataCipher.init(XMLCipher.ENCRYPT_MODE, cek);
        EncryptedData ed = dataCipher.getEncryptedData();
        KeyInfo edKeyInfo = new KeyInfo(doc);
        edKeyInfo.add(ek);
        ed.setKeyInfo(edKeyInfo);
        dataCipher.doFinal(doc, target, false);

        write(doc, input, Path.of(out));
    }

    /** The first element, in document order, with this local name and no namespace. */
    static Element firstElement(Document doc, String localName) {
        NodeList all = doc.getElementsByTagNameNS("*", localName);
        for (int i = 0; i < all.getLength(); i++) {
            Element e = (Element) all.item(i);
            String ns = e.getNamespaceURI();
            if (ns == null || ns.isEmpty()) {
                return e;
            }
        }
        return null;
    }

    // ---- decrypt ----------------------------------------------------------

    static void decrypt(Map<String, String> opts) throws Exception {
        String keyPath = need(opts, "key");
        String in = need(opts, "in");
        String out = need(opts, "out");
        noMore(opts);

        PrivateKey priv = readPrivateKey(Path.of(keyPath));
        byte[] input = Files.readAllBytes(Path.of(in));
        Document doc = parse(input);

        org.apache.xml.security.Init.init();

        int n = 0;
        for (;;) {
            NodeList eds = doc.getElementsByTagNameNS(NS_XENC, "EncryptedData");
            if (eds.getLength() == 0) {
                break;
            }
            n++;
            decryptOne(doc, (Element) eds.item(0), priv, n);
        }
        if (n == 0) {
            throw new Failure("no xenc:EncryptedData in " + in);
        }
        write(doc, input, Path.of(out));
    }

    static void decryptOne(Document doc, Element edElem, PrivateKey priv, int n) throws Exception {
        String where = "EncryptedData #" + n;
        String type = edElem.getAttributeNS(null, "Type");
        if (!TYPE_ELEMENT.equals(type)) {
            throw new Failure(where + ": Type " + quote(type) + " refused: only " + TYPE_ELEMENT);
        }
        String dataAlg = algorithmOf(edElem);
        Integer keyLen = DATA_ALGS.get(dataAlg);
        if (keyLen == null) {
            throw new Failure(where + ": data encryption algorithm " + quote(dataAlg)
                    + " refused: only aes128-gcm and aes256-gcm");
        }

        Element keyInfo = child(edElem, NS_DS, "KeyInfo");
        List<Element> eks = keyInfo == null ? List.of() : children(keyInfo, NS_XENC, "EncryptedKey");
        if (eks.isEmpty()) {
            throw new Failure(where + ": no xenc:EncryptedKey in its ds:KeyInfo");
        }

        List<String> errors = new ArrayList<>();
        for (Element ekElem : eks) {
            String keyAlg = algorithmOf(ekElem);
            if (!KEY_ALGS.contains(keyAlg)) {
                throw new Failure(where + ": key transport algorithm " + quote(keyAlg)
                        + " refused: only rsa-oaep and rsa-oaep-mgf1p");
            }
            Key cek;
            try {
                XMLCipher keyCipher = XMLCipher.getInstance();
                keyCipher.setSecureValidation(true);
                keyCipher.init(XMLCipher.UNWRAP_MODE, priv);
                EncryptedKey ek = keyCipher.loadEncryptedKey(doc, ekElem);
                cek = keyCipher.decryptKey(ek, dataAlg);
            } catch (Exception e) {
                errors.add("EncryptedKey: " + describe(e));
                continue;
            }
            if (cek == null || cek.getEncoded() == null || cek.getEncoded().length != keyLen) {
                errors.add("EncryptedKey: the unwrapped key does not have the " + keyLen
                        + " bytes that " + dataAlg + " needs");
                continue;
            }
            try {
                XMLCipher dataCipher = XMLCipher.getInstance();
                dataCipher.setSecureValidation(true);
                dataCipher.init(XMLCipher.DECRYPT_MODE, cek);
                dataCipher.doFinal(doc, edElem);
                return;
            } catch (Exception e) {
                throw new Failure(where + ": decrypting the data failed", e);
            }
        }
        throw new Failure(where + ": no EncryptedKey could be decrypted with this key: "
                + String.join("; ", errors));
    }

    static String algorithmOf(Element encryptedType) {
        Element em = child(encryptedType, NS_XENC, "EncryptionMethod");
        return em == null ? "" : em.getAttributeNS(null, "Algorithm");
    }

    static String quote(String s) {
        return s == null || s.isEmpty() ? "(none)" : "\"" + s + "\"";
    }

    static Element child(Element parent, String ns, String localName) {
        List<Element> l = children(parent, ns, localName);
        return l.isEmpty() ? null : l.get(0);
    }

    static List<Element> children(Element parent, String ns, String localName) {
        List<Element> l = new ArrayList<>();
        for (Node c = parent.getFirstChild(); c != null; c = c.getNextSibling()) {
            if (c.getNodeType() == Node.ELEMENT_NODE && ns.equals(c.getNamespaceURI())
                    && localName.equals(c.getLocalName())) {
                l.add((Element) c);
            }
        }
        return l;
    }

    // ---- XML --------------------------------------------------------------

    static Document parse(byte[] input) throws Failure {
        try {
            DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
            dbf.setNamespaceAware(true);
            dbf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            dbf.setFeature("http://xml.org/sax/features/external-general-entities", false);
            dbf.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
            dbf.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
            dbf.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            dbf.setAttribute(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
            dbf.setXIncludeAware(false);
            dbf.setExpandEntityReferences(false);
            DocumentBuilder db = dbf.newDocumentBuilder();
            db.setErrorHandler(null);
            Document doc = db.parse(new ByteArrayInputStream(input));
            Element root = doc.getDocumentElement();
            if (root.hasAttributeNS(null, "ID")) {
                root.setIdAttributeNS(null, "ID", true);
            }
            return doc;
        } catch (Exception e) {
            throw new Failure("parsing the input failed", e);
        }
    }

    /** Writes doc as it stands, without indentation; an XML declaration only if the input had one. */
    static void write(Document doc, byte[] input, Path out) throws Exception {
        TransformerFactory tf = TransformerFactory.newInstance();
        tf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        Transformer t = tf.newTransformer();
        t.setOutputProperty(OutputKeys.METHOD, "xml");
        t.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
        t.setOutputProperty(OutputKeys.INDENT, "no");
        t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, hasDeclaration(input) ? "no" : "yes");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        t.transform(new DOMSource(doc), new StreamResult(buf));
        Files.write(out, buf.toByteArray());
    }

    static boolean hasDeclaration(byte[] input) {
        int i = 0;
        if (input.length >= 3 && (input[0] & 0xff) == 0xef && (input[1] & 0xff) == 0xbb && (input[2] & 0xff) == 0xbf) {
            i = 3;
        }
        return new String(input, i, Math.min(5, input.length - i), StandardCharsets.US_ASCII).equals("<?xml");
    }

    // ---- keys -------------------------------------------------------------

    static X509Certificate readCertificate(Path p) throws Failure {
        try {
            byte[] der = pem(p, "CERTIFICATE");
            return (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(der));
        } catch (Failure e) {
            throw e;
        } catch (Exception e) {
            throw new Failure("reading certificate " + p + " failed", e);
        }
    }

    static PrivateKey readPrivateKey(Path p) throws Failure {
        byte[] der = pem(p, "PRIVATE KEY");
        try {
            return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(der));
        } catch (Exception e) {
            throw new Failure("reading private key " + p + " failed (an RSA key in PKCS#8 PEM, BEGIN PRIVATE KEY, is required)", e);
        }
    }

    /** The DER bytes of the first PEM block with this label. */
    static byte[] pem(Path p, String label) throws Failure {
        String text;
        try {
            text = Files.readString(p, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new Failure("reading " + p + " failed", e);
        }
        String begin = "-----BEGIN " + label + "-----";
        String end = "-----END " + label + "-----";
        int b = text.indexOf(begin);
        int e = b < 0 ? -1 : text.indexOf(end, b);
        if (b < 0 || e < 0) {
            throw new Failure(p + ": no PEM block " + begin);
        }
        String body = text.substring(b + begin.length(), e).replaceAll("\\s", "");
        try {
            return Base64.getDecoder().decode(body);
        } catch (IllegalArgumentException ex) {
            throw new Failure(p + ": bad base64 in " + label, ex);
        }
    }
}

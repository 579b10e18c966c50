/*
 * Validate: the second, independent schema processor for KECIS documents
 * (docs/spec/schema): the JDK's javax.xml.validation, Xerces inside the JDK,
 * W3C XML Schema 1.0. Package internal/xsd/javaxsd compiles and runs it.
 *
 *   java Validate --catalog CATALOG --schema DRIVER.xsd [--schema MORE.xsd]... < FILES
 *
 * It needs nothing but a JDK (11 or later runs the source directly), so
 * another stack can check its messages the same way, from the repository:
 *
 *   ls *.xml | java internal/xsd/javaxsd/Validate.java \
 *       --catalog docs/spec/schema/catalog.xml --schema docs/spec/schema/kecis-all.xsd
 *
 * FILES is a list of documents, one path a line (UTF-8); every one is
 * validated in this one JVM. Output, one line per problem on stdout:
 *
 *   path:line:col: message
 *
 * then a summary on stderr. Exit status 0: every document valid; 1: some
 * invalid; 2: a usage error or schemas that do not load (their problems on
 * stderr, "schema: " in front).
 *
 * Offline by construction: every schema location goes through the OASIS XML
 * catalog (javax.xml.catalog, RESOLVE=strict) or is a file: location next to
 * the schema that imports it; a location the catalog does not map is refused
 * before any connection is made, and accessExternalSchema=file refuses any
 * other scheme besides. Documents may carry no DOCTYPE (so no external DTD,
 * no entity), and a value of an element or attribute never reaches the
 * output: the message quotes it as [value] (a card or account number must not
 * land in a CI log).
 */

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Reader;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import javax.xml.XMLConstants;
import javax.xml.catalog.CatalogException;
import javax.xml.catalog.CatalogFeatures;
import javax.xml.catalog.CatalogManager;
import javax.xml.catalog.CatalogResolver;
import javax.xml.parsers.SAXParserFactory;
import javax.xml.transform.Source;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.Schema;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.ValidatorHandler;
import org.w3c.dom.ls.LSInput;
import org.w3c.dom.ls.LSResourceResolver;
import org.xml.sax.Attributes;
import org.xml.sax.ContentHandler;
import org.xml.sax.ErrorHandler;
import org.xml.sax.InputSource;
import org.xml.sax.Locator;
import org.xml.sax.SAXException;
import org.xml.sax.SAXParseException;
import org.xml.sax.XMLReader;

public final class Validate {
    private static final String DISALLOW_DOCTYPE = "http://apache.org/xml/features/disallow-doctype-decl";
    private static final String FULL_CHECKING = "http://apache.org/xml/features/validation/schema-full-checking";
    // libxml2's limit without XML_PARSE_HUGE: deeper is refused, as xmllint refuses it.
    private static final String MAX_DEPTH = "jdk.xml.maxElementDepth";
    private static final String MAX_DEPTH_VALUE = "256";

    public static void main(String[] args) throws Exception {
        String catalog = null;
        List<String> schemas = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 < args.length && a.equals("--catalog")) {
                catalog = args[++i];
            } else if (i + 1 < args.length && a.equals("--schema")) {
                schemas.add(args[++i]);
            } else {
                usage("unknown argument " + a);
            }
        }
        if (catalog == null || schemas.isEmpty()) {
            usage("--catalog and at least one --schema are required");
        }
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(System.err, true, StandardCharsets.UTF_8);

        long t0 = System.nanoTime();
        Schema schema = loadSchema(Paths.get(catalog), schemas, err);
        if (schema == null) {
            err.flush();
            System.exit(2);
        }
        long t1 = System.nanoTime();

        int files = 0, invalid = 0;
        SAXParserFactory pf = parserFactory();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String path; (path = in.readLine()) != null; ) {
            if (path.isEmpty()) {
                continue;
            }
            files++;
            List<String> problems = validate(pf, schema, path);
            if (!problems.isEmpty()) {
                invalid++;
                for (String p : problems) {
                    out.println(p);
                }
            }
        }
        out.flush();
        long t2 = System.nanoTime();
        err.printf("validated %d files, %d invalid, in %d ms (schemas loaded in %d ms)%n",
                files, invalid, (t2 - t1) / 1_000_000, (t1 - t0) / 1_000_000);
        System.exit(invalid == 0 ? 0 : 1);
    }

    private static void usage(String why) {
        System.err.println("usage: java Validate --catalog CATALOG --schema FILE.xsd [--schema FILE.xsd]... < FILES: " + why);
        System.exit(2);
    }

    // ---- schemas ----

    /** Loads the schemas, or prints why not and returns null. */
    static Schema loadSchema(Path catalog, List<String> schemas, PrintStream err) {
        List<String> problems = new ArrayList<>();
        try {
            CatalogFeatures features = CatalogFeatures.builder()
                    .with(CatalogFeatures.Feature.FILES, catalog.toAbsolutePath().toUri().toString())
                    .with(CatalogFeatures.Feature.RESOLVE, "strict")
                    .with(CatalogFeatures.Feature.PREFER, "system")
                    .build();
            OfflineResolver resolver = new OfflineResolver(CatalogManager.catalogResolver(features), problems);

            SchemaFactory sf = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
            sf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            sf.setFeature(XMLConstants.USE_CATALOG, false); // our resolver, nothing else
            sf.setFeature(FULL_CHECKING, true);             // UPA and restriction checks, as libxml2
            sf.setFeature(DISALLOW_DOCTYPE, true);
            sf.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "file");
            sf.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            sf.setResourceResolver(resolver);
            sf.setErrorHandler(new ErrorHandler() {
                // A warning too: Xerces only warns about an import it cannot
                // read, and the document types then fail later, obscurely.
                public void warning(SAXParseException e) { problems.add(format(e, "warning: ")); }
                public void error(SAXParseException e) { problems.add(format(e, "")); }
                public void fatalError(SAXParseException e) { problems.add(format(e, "")); }
            });
            Source[] sources = new Source[schemas.size()];
            for (int i = 0; i < sources.length; i++) {
                File f = new File(schemas.get(i));
                sources[i] = new StreamSource(f.toURI().toString());
            }
            Schema s = sf.newSchema(sources);
            if (problems.isEmpty()) {
                return s;
            }
        } catch (SAXException | CatalogException | IllegalArgumentException e) {
            if (problems.isEmpty() || !(e instanceof SAXParseException)) {
                problems.add(e instanceof SAXParseException ? format((SAXParseException) e, "") : String.valueOf(e.getMessage()));
            }
        }
        for (String p : new LinkedHashSet<>(problems)) {
            err.println("schema: " + p);
        }
        return null;
    }

    private static String format(SAXParseException e, String prefix) {
        String where = e.getSystemId() == null ? "?" : e.getSystemId();
        return where + ":" + e.getLineNumber() + ":" + e.getColumnNumber() + ": " + prefix + oneLine(e.getMessage());
    }

    /**
     * OfflineResolver finds every schema the loaded ones import or include:
     * the catalog by the location as written (http://www.w3.org/TR/... and
     * the like), then a relative location against a file: base (a schema
     * beside the one that includes it; the catalog is asked for the
     * absolute form first), then, for an import with no location, the
     * catalog by namespace. Whatever else is refused, and recorded.
     */
    static final class OfflineResolver implements LSResourceResolver {
        private final CatalogResolver catalog;
        private final List<String> problems;

        OfflineResolver(CatalogResolver catalog, List<String> problems) {
            this.catalog = catalog;
            this.problems = problems;
        }

        @Override
        public LSInput resolveResource(String type, String namespace, String publicId, String systemId, String baseURI) {
            String resolved = null;
            if (systemId != null && !systemId.isEmpty()) {
                resolved = lookup(publicId, systemId);
                if (resolved == null) {
                    URI abs = absolute(systemId, baseURI);
                    if (abs != null && !abs.toString().equals(systemId)) {
                        resolved = lookup(publicId, abs.toString());
                    }
                    if (resolved == null && abs != null && "file".equals(abs.getScheme())) {
                        resolved = abs.toString();
                    }
                }
            } else if (namespace != null && !namespace.isEmpty()) {
                resolved = lookup(publicId, namespace);
                if (resolved == null) {
                    return null; // an import without a location the catalog does not know: a hint only
                }
            } else {
                return null;
            }
            if (resolved == null) {
                problems.add((baseURI == null ? "?" : baseURI) + ": " + systemId
                        + " (namespace " + namespace + ") is not in the catalog: refusing to fetch it");
                return new Input(publicId, "file:/nonexistent/kecis-refused", baseURI); // never read: problems stops the load
            }
            if (!resolved.startsWith("file:")) {
                problems.add((baseURI == null ? "?" : baseURI) + ": the catalog maps " + systemId
                        + " to " + resolved + ", not a file: refusing to fetch it");
                return new Input(publicId, "file:/nonexistent/kecis-refused", baseURI);
            }
            return new Input(publicId, resolved, baseURI);
        }

        /** The catalog's file for id, or null (RESOLVE=strict throws on no match). */
        private String lookup(String publicId, String id) {
            try {
                InputSource is = catalog.resolveEntity(publicId, id);
                return is == null ? null : is.getSystemId();
            } catch (CatalogException e) {
                return null;
            }
        }

        private static URI absolute(String systemId, String base) {
            try {
                URI u = new URI(systemId);
                if (u.isAbsolute()) {
                    return u;
                }
                return base == null ? null : new URI(base).resolve(u);
            } catch (URISyntaxException | IllegalArgumentException e) {
                return null;
            }
        }
    }

    /** An LSInput Xerces opens by its system identifier. */
    static final class Input implements LSInput {
        private String publicId, systemId, baseURI;

        Input(String publicId, String systemId, String baseURI) {
            this.publicId = publicId;
            this.systemId = systemId;
            this.baseURI = baseURI;
        }

        public Reader getCharacterStream() { return null; }
        public void setCharacterStream(Reader r) {}
        public InputStream getByteStream() { return null; }
        public void setByteStream(InputStream s) {}
        public String getStringData() { return null; }
        public void setStringData(String s) {}
        public String getSystemId() { return systemId; }
        public void setSystemId(String s) { systemId = s; }
        public String getPublicId() { return publicId; }
        public void setPublicId(String s) { publicId = s; }
        public String getBaseURI() { return baseURI; }
        public void setBaseURI(String s) { baseURI = s; }
        public String getEncoding() { return null; }
        public void setEncoding(String s) {}
        public boolean getCertifiedText() { return false; }
        public void setCertifiedText(boolean b) {}
    }

    // ---- documents ----

    static SAXParserFactory parserFactory() throws Exception {
        SAXParserFactory pf = SAXParserFactory.newInstance();
        pf.setNamespaceAware(true);
        pf.setValidating(false);
        pf.setXIncludeAware(false);
        pf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        pf.setFeature(DISALLOW_DOCTYPE, true);
        pf.setFeature("http://xml.org/sax/features/external-general-entities", false);
        pf.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
        pf.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        return pf;
    }

    /** The problems of one document, each "path:line:col: message". */
    static List<String> validate(SAXParserFactory pf, Schema schema, String path) {
        List<String> problems = new ArrayList<>();
        Recorder rec = new Recorder();
        ErrorHandler eh = new ErrorHandler() {
            public void warning(SAXParseException e) {}
            public void error(SAXParseException e) { problems.add(line(path, e, rec)); }
            public void fatalError(SAXParseException e) throws SAXException {
                problems.add(line(path, e, rec));
                throw e;
            }
        };
        try {
            XMLReader r = pf.newSAXParser().getXMLReader();
            r.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            r.setProperty(MAX_DEPTH, MAX_DEPTH_VALUE);
            r.setEntityResolver((publicId, systemId) -> {
                throw new SAXException("external entity " + systemId + " refused");
            });
            ValidatorHandler vh = schema.newValidatorHandler();
            vh.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
            vh.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            vh.setResourceResolver((type, ns, publicId, systemId, base) -> new Input(publicId, "file:/nonexistent/kecis-refused", base));
            vh.setErrorHandler(eh);
            rec.next = vh;
            r.setContentHandler(rec);
            r.setErrorHandler(eh);
            File f = new File(path);
            if (!f.isFile()) {
                problems.add(path + ":0:0: not a readable file");
                return problems;
            }
            try (InputStream is = Files.newInputStream(f.toPath())) {
                InputSource src = new InputSource(is);
                src.setSystemId(f.toURI().toString());
                r.parse(src);
            }
        } catch (SAXParseException e) {
            if (problems.isEmpty()) {
                problems.add(line(path, e, rec));
            }
        } catch (Exception e) {
            problems.add(path + ":0:0: " + oneLine(String.valueOf(e.getMessage())));
        }
        return problems;
    }

    private static String line(String path, SAXParseException e, Recorder rec) {
        return path + ":" + Math.max(e.getLineNumber(), 0) + ":" + Math.max(e.getColumnNumber(), 0) + ": "
                + oneLine(rec.redact(String.valueOf(e.getMessage())));
    }

    private static String oneLine(String s) {
        return s.replaceAll("[\\r\\n\\t]+", " ").trim();
    }

    /**
     * Recorder passes the parser's events on to the validator and remembers
     * the text of the open elements and the attribute values of the last
     * start tag, the values a Xerces message can quote: redact replaces
     * each quoted one by [value].
     */
    static final class Recorder implements ContentHandler {
        ContentHandler next;
        private final Deque<StringBuilder> text = new ArrayDeque<>();
        private final List<String> attrs = new ArrayList<>();

        String redact(String msg) {
            Set<String> values = new LinkedHashSet<>();
            StringBuilder top = text.peek();
            if (top != null) {
                addForms(values, top.toString());
            }
            for (String a : attrs) {
                addForms(values, a);
            }
            String out = msg;
            for (String v : values) {
                out = out.replace("'" + v + "'", "'[value]'").replace("\"" + v + "\"", "\"[value]\"");
            }
            // Besides, wherever Xerces's templates put a value (a value
            // normalised in a way not foreseen above).
            for (Pattern p : VALUE_TEMPLATES) {
                out = p.matcher(out).replaceFirst("$1'[value]'$2");
            }
            return DUPLICATE.matcher(out).replaceFirst("$1[value]$2");
        }

        private static final Pattern[] VALUE_TEMPLATES = {
            // cvc-pattern-valid, cvc-enumeration-valid, cvc-*Length-valid, cvc-m*Inclusive/Exclusive-valid, ...
            Pattern.compile("^(cvc-[\\w.-]+: Value )'.*'( (?:with length = '[^']*' )?is not facet-valid)", Pattern.DOTALL),
            // cvc-datatype-valid.1.2.*
            Pattern.compile("^(cvc-[\\w.-]+: )'.*'( is not a valid value)", Pattern.DOTALL),
            // cvc-type.3.1.3, cvc-attribute.3, cvc-elt.5.2.2.2.*, cvc-au
            Pattern.compile("^(cvc-[\\w.-]+: The value )'.*'( of (?:element|attribute) ')", Pattern.DOTALL),
            // cvc-identity-constraint.4.3: a keyref's value
            Pattern.compile("^(cvc-identity-constraint[\\w.-]*: Key '[^']*' with value )'.*'( not found)", Pattern.DOTALL),
        };

        // cvc-identity-constraint.4.1, 4.2.2: a duplicate unique or key
        // value, which Xerces writes in brackets (fields of other elements).
        private static final Pattern DUPLICATE = Pattern.compile(
            "^(cvc-identity-constraint[\\w.-]*: Duplicate (?:unique|key) value )\\[.*\\]( declared for identity constraint)", Pattern.DOTALL);

        private static void addForms(Set<String> values, String v) {
            if (v.isEmpty()) {
                return;
            }
            values.add(v);
            values.add(v.trim());
            values.add(v.replaceAll("[\\t\\r\\n]", " "));
            values.add(v.trim().replaceAll("\\s+", " "));
            values.remove("");
        }

        public void setDocumentLocator(Locator l) { next.setDocumentLocator(l); }
        public void startDocument() throws SAXException { next.startDocument(); }
        public void endDocument() throws SAXException { next.endDocument(); }
        public void startPrefixMapping(String p, String u) throws SAXException { next.startPrefixMapping(p, u); }
        public void endPrefixMapping(String p) throws SAXException { next.endPrefixMapping(p); }

        public void startElement(String uri, String local, String q, Attributes a) throws SAXException {
            attrs.clear();
            for (int i = 0; i < a.getLength(); i++) {
                attrs.add(a.getValue(i));
            }
            text.push(new StringBuilder());
            next.startElement(uri, local, q, a);
        }

        public void endElement(String uri, String local, String q) throws SAXException {
            next.endElement(uri, local, q);
            text.pop();
            attrs.clear();
        }

        public void characters(char[] ch, int start, int len) throws SAXException {
            StringBuilder top = text.peek();
            if (top != null) {
                top.append(ch, start, len);
            }
            next.characters(ch, start, len);
        }

        public void ignorableWhitespace(char[] ch, int start, int len) throws SAXException {
            next.ignorableWhitespace(ch, start, len);
        }

        public void processingInstruction(String t, String d) throws SAXException { next.processingInstruction(t, d); }
        public void skippedEntity(String name) throws SAXException { next.skippedEntity(name); }
    }
}

package metadata_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The federation must serve 1,000 participants (KECIS §11.2):
// each generated one has 4 or 5 certificates, ten endpoints and a BIN
// list. These tests build, sign and verify the aggregate and the 1,000
// per-entity documents, and have xmlsec1 verify them against the hub's
// certificate; the figures go to the test log (go test -v -run 1000).

// The elements whose ID attribute xmlsec1 is told about (--id-attr:ID).
const (
	xmlsecEntity   = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor"
	xmlsecEntities = "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor"
)

type measured struct {
	took  time.Duration
	alloc uint64 // bytes allocated
}

func measure(f func()) measured {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return measured{took: took, alloc: after.TotalAlloc - before.TotalAlloc}
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// xmlsec1Verify runs xmlsec1 --verify on data with the hub's certificate
// and returns how long it took and its peak resident memory.
func xmlsec1Verify(t *testing.T, xmlsec, hubPEM string, data []byte, idNode string) (time.Duration, int64) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "signed.xml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", hubPEM, "--enabled-reference-uris", "same-doc", "--id-attr:ID", idNode, f)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("xmlsec1 --verify refused the hub's signature: %v\n%s", err, out)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return took, rss
}

func xmlsec1Refuses(t *testing.T, xmlsec, hubPEM string, data []byte, idNode string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tampered.xml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", hubPEM, "--id-attr:ID", idNode, f).CombinedOutput()
	if err == nil {
		t.Fatalf("xmlsec1 accepted a tampered document:\n%s", out)
	}
}

var aggregate1000 = sync.OnceValues(func() ([]byte, error) {
	s, err := saml.LoadSigner(filepath.Join(keysDir, "issuer-rsa.key.pem"), certPath("issuer-rsa"))
	if err != nil {
		return nil, err
	}
	return metadata.BuildAggregate(participants(), "urn:kecis:federation:test", "", now.Add(7*24*time.Hour), 6*time.Hour, s)
})

func TestAggregate1000(t *testing.T) {
	signer := hub(t)
	var signed []byte
	var err error
	build := measure(func() {
		signed, err = metadata.BuildAggregate(participants(), "urn:kecis:federation:test", "", now.Add(7*24*time.Hour), 6*time.Hour, signer)
	})
	if err != nil {
		t.Fatal(err)
	}
	var agg *metadata.Aggregate
	verify := measure(func() {
		agg, err = metadata.VerifyAggregate(signed, []*x509.Certificate{signer.Cert}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Entities) != 1000 {
		t.Fatalf("%d entities", len(agg.Entities))
	}
	certs, endpoints, bins := 0, 0, 0
	for _, ed := range agg.Entities {
		certs += len(ed.Keys) + len(ed.TLSKeys)
		endpoints += len(ed.Endpoints)
		for _, s := range ed.Services {
			bins += len(s.BINs)
		}
	}
	t.Logf("aggregate of 1,000 participants (%d certificates, %d endpoints, %d BIN entries): %d bytes (%s)", certs, endpoints, bins, len(signed), mib(uint64(len(signed))))
	t.Logf("build+sign (RSA-2048 hub key): %v, %s allocated", build.took.Round(time.Millisecond), mib(build.alloc))
	t.Logf("verify+parse: %v, %s allocated", verify.took.Round(time.Millisecond), mib(verify.alloc))

	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	hubPEM := certPath("issuer-rsa")
	took, rss := xmlsec1Verify(t, xmlsec, hubPEM, signed, xmlsecEntities)
	t.Logf("xmlsec1 --verify: %v, peak RSS %d KiB", took.Round(time.Millisecond), rss)
	// Not vacuous: xmlsec1 refuses the aggregate with one endpoint changed.
	tampered := []byte(replaceOnce(string(signed), participants()[999].Endpoints[9].Location, "https://attacker.example/soap"))
	xmlsec1Refuses(t, xmlsec, hubPEM, tampered, xmlsecEntities)
	if _, err := metadata.VerifyAggregate(tampered, []*x509.Certificate{signer.Cert}, now); err == nil {
		t.Fatal("our verifier accepted the tampered aggregate")
	}
}

// TestEntities1000: the Metadata Query side at the same scale: 1,000
// descriptors each signed by the hub on its own, each verifying with our
// verifier; a sample verifies with xmlsec1.
func TestEntities1000(t *testing.T) {
	signer := hub(t)
	eds := participants()
	signed := make([][]byte, len(eds))
	var firstErr error
	var mu sync.Mutex
	sign := measure(func() {
		var wg sync.WaitGroup
		work := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := range work {
					b, err := metadata.SignEntity(withValidity(eds[i], 24*time.Hour, time.Hour), signer)
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					signed[i] = b
				}
			})
		}
		for i := range eds {
			work <- i
		}
		close(work)
		wg.Wait()
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	total := 0
	verify := measure(func() {
		for i, b := range signed {
			total += len(b)
			ed, err := metadata.VerifyEntity(b, []*x509.Certificate{signer.Cert}, now)
			if err != nil {
				t.Fatalf("%s: %v", eds[i].EntityID, err)
			}
			if ed.EntityID != eds[i].EntityID {
				t.Fatal("wrong entity")
			}
		}
	})
	t.Logf("1,000 per-entity documents: %d bytes in all (%d on average); signing %v on %d CPUs (%s allocated), verifying %v sequentially (%s allocated)",
		total, total/len(signed), sign.took.Round(time.Millisecond), runtime.GOMAXPROCS(0), mib(sign.alloc), verify.took.Round(time.Millisecond), mib(verify.alloc))

	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	hubPEM := certPath("issuer-rsa")
	var took time.Duration
	sample := []int{0, 3, 5, 6, 8, 123, 500, 777, 998, 999} // roles, an organization, rollovers
	for _, i := range sample {
		d, _ := xmlsec1Verify(t, xmlsec, hubPEM, signed[i], xmlsecEntity)
		took += d
	}
	t.Logf("xmlsec1 --verify of %d sampled descriptors: %v each on average", len(sample), (took / time.Duration(len(sample))).Round(time.Millisecond))
	xmlsec1Refuses(t, xmlsec, hubPEM, []byte(replaceOnce(string(signed[5]), `Priority="10"`, `Priority="1"`)), xmlsecEntity)
}

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("fixture lacks " + old)
	}
	return strings.Replace(s, old, new, 1)
}

// BenchmarkAggregate1000Build measures building and signing the aggregate
// of 1,000 participants (go test -bench Aggregate1000 -benchmem).
func BenchmarkAggregate1000Build(b *testing.B) {
	signer := hub(b)
	eds := participants()
	var size int
	b.ReportAllocs()
	for b.Loop() {
		signed, err := metadata.BuildAggregate(eds, "urn:kecis:federation:test", "", now.Add(24*time.Hour), time.Hour, signer)
		if err != nil {
			b.Fatal(err)
		}
		size = len(signed)
	}
	b.ReportMetric(float64(size), "bytes/doc")
}

// BenchmarkAggregate1000Verify measures verifying and parsing it.
func BenchmarkAggregate1000Verify(b *testing.B) {
	signed, err := aggregate1000()
	if err != nil {
		b.Fatal(err)
	}
	trusted := []*x509.Certificate{hub(b).Cert}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := metadata.VerifyAggregate(signed, trusted, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(signed)), "bytes/doc")
}

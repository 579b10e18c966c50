package faulttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

// pgCluster is a private PostgreSQL cluster the test made: initdb'd as
// the postgres user (runuser) in a temporary directory, on a port of its
// own, on loopback only — never the machine's shared cluster. It is
// stopped and removed when the test ends.
type pgCluster struct {
	t         *testing.T
	bin, dir  string
	data, log string
	port      string
}

// newPGCluster makes and starts the cluster. It skips (fails under
// CI=true) when this is not root, or runuser, the postgres user or
// PostgreSQL's server binaries are missing.
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	need := func(why string) {
		t.Helper()
		if testutil.CI() {
			t.Fatalf("a private PostgreSQL cluster needs %s, and CI=true", why)
		}
		t.Skipf("a private PostgreSQL cluster needs %s", why)
	}
	if os.Geteuid() != 0 {
		need("root (initdb runs as the postgres user through runuser)")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		need("runuser (util-linux)")
	}
	if err := exec.Command("id", "-u", "postgres").Run(); err != nil {
		need("the postgres user (Debian package postgresql)")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		need("PostgreSQL's server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)")
	}
	sort.Strings(bins)
	dir, err := os.MkdirTemp("", "kecis-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir, data: filepath.Join(dir, "data"),
		log: filepath.Join(dir, "postgres.log")}
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown postgres %s: %v %s", dir, err, out)
	}
	if out, err := c.asPostgres(filepath.Join(c.bin, "initdb"), "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := strings.Cut(freeAddr(t), ":")
	c.port = port
	c.start()
	return c
}

func (c *pgCluster) asPostgres(args ...string) ([]byte, error) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func (c *pgCluster) pgctl(args ...string) error {
	out, err := c.asPostgres(append([]string{filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-w", "-t", "20"}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start() {
	c.t.Helper()
	// Durability is not what these tests are about: fsync off keeps the
	// cluster fast on a shared machine.
	opts := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.port, c.dir)
	if err := c.pgctl("start", "-l", c.log, "-o", opts); err != nil {
		c.t.Fatal(err)
	}
}

// stop shuts the server down (fast: sessions are ended, nothing waits).
func (c *pgCluster) stop() {
	c.t.Helper()
	if err := c.pgctl("stop", "-m", "fast"); err != nil {
		c.t.Fatal(err)
	}
}

// dsn is the DSN of database db on the cluster.
func (c *pgCluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable", c.port, db)
}

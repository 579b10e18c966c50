package xsd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/kecis/kecis/docs/spec/schema"
)

// source is the schema set: docs/spec/schema, embedded.
var source fs.FS = schema.FS

// schemaSet is the schemas written to disk for xmllint.
type schemaSet struct {
	dir, driver, catalog string
	// external are the files outside dir the catalog maps to (Debian's
	// OASIS and W3C schemas): Available checks they exist.
	external []string
}

var schemas = sync.OnceValues(func() (*schemaSet, error) { return materialise(source) })

// materialise writes fsys's files to a directory of the temporary
// directory named by their SHA-256, shared by every process of this user
// that embeds the same schemas (no directory left per process): made
// under a private name and renamed into place, and reused only when it is
// this user's, private and holds exactly these files.
func materialise(fsys fs.FS) (*schemaSet, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		files[p] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("xsd: reading the embedded schemas: %w", err)
	}
	if files[Driver] == nil || files[Catalog] == nil {
		return nil, fmt.Errorf("xsd: the embedded schemas lack %s or %s", Driver, Catalog)
	}
	h := sha256.New()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(files[name]))
		h.Write(files[name])
	}
	dir := filepath.Join(os.TempDir(), "kecis-xsd-"+hex.EncodeToString(h.Sum(nil))[:24])
	if !holds(dir, files) {
		if dir, err = write(dir, files); err != nil {
			return nil, err
		}
	}
	set := &schemaSet{dir: dir, driver: filepath.Join(dir, Driver), catalog: filepath.Join(dir, Catalog)}
	if set.external, err = catalogTargets(files[Catalog]); err != nil {
		return nil, err
	}
	return set, nil
}

// write writes files under a fresh private directory and renames it to
// dir; when another process got there first with the same files, theirs
// is used; when dir is someone else's or differs, the private one is.
func write(dir string, files map[string][]byte) (string, error) {
	tmp, err := os.MkdirTemp(os.TempDir(), "kecis-xsd-tmp-")
	if err != nil {
		return "", fmt.Errorf("xsd: %w", err)
	}
	for name, b := range files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", fmt.Errorf("xsd: %w", err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return "", fmt.Errorf("xsd: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err == nil {
		return dir, nil
	}
	if holds(dir, files) {
		_ = os.RemoveAll(tmp)
		return dir, nil
	}
	return tmp, nil // dir is not ours to use: keep the private copy
}

// holds reports whether dir is a private directory of this user holding
// exactly files.
func holds(dir string, files map[string][]byte) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByMe(fi) {
		return false
	}
	n := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		want, ok := files[filepath.ToSlash(rel)]
		if !ok || !d.Type().IsRegular() {
			return errors.New("unexpected file")
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			return errors.New("differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}

// catalogTargets lists the absolute files an XML catalog maps to (its
// uri, rewritePrefix and nextCatalog's catalog attributes that name a
// file: or absolute path).
func catalogTargets(catalog []byte) ([]string, error) {
	var out []string
	d := xml.NewDecoder(bytes.NewReader(catalog))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("xsd: %s: %w", Catalog, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		for _, a := range se.Attr {
			if a.Name.Local != "uri" && a.Name.Local != "rewritePrefix" && a.Name.Local != "catalog" {
				continue
			}
			p := strings.TrimPrefix(a.Value, "file://")
			if filepath.IsAbs(p) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

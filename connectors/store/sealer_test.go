package store_test

import (
	"bytes"
	"testing"

	"github.com/kecis/kecis/connectors/store"
)

func TestSealerBindsValueToRow(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := store.NewSealer(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("4111111111111111"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("4111111111111111")) {
		t.Fatal("the sealed value holds the plain text")
	}
	if got, err := s.Open(sealed, []byte("row-1")); err != nil || string(got) != "4111111111111111" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("row-2")); err == nil {
		t.Fatal("a value sealed for row-1 opened as row-2")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, []byte("row-1")); err == nil {
		t.Fatal("a changed value opened")
	}
	if _, err := s.Open(sealed[:5], []byte("row-1")); err == nil {
		t.Fatal("a truncated value opened")
	}
	if _, err := store.NewSealer(key[:16], nil); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

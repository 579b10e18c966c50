package passwordhash

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h, err := New(Params{MemoryKiB: 1024, Threads: 1}, bytes.Repeat([]byte{1}, 32), rand.NewChaCha8([32]byte{2}))
	if err != nil {
		t.Fatal(err)
	}
	phc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=1024,t=1,p=1$") || strings.Contains(phc, "correct") {
		t.Fatalf("PHC %q", phc)
	}
	if ok, err := h.Verify(ctx, phc, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := h.Verify(ctx, phc, "correct horsf"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	// Another key (another pepper) does not verify.
	other, _ := New(Params{MemoryKiB: 1024, Threads: 1}, bytes.Repeat([]byte{9}, 32), rand.NewChaCha8([32]byte{2}))
	if ok, _ := other.Verify(ctx, phc, "correct horse"); ok {
		t.Fatal("a hash verified under another key")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=0,t=1,p=1$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA"} {
		if _, err := h.Verify(ctx, bad, "x"); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := New(Params{}, []byte("short"), rand.NewChaCha8([32]byte{})); err == nil {
		t.Fatal("short key accepted")
	}
}

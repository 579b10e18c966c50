package sqlstore

import "testing"

func TestRaiseProcs(t *testing.T) {
	for _, tc := range []struct {
		name          string
		writers, cpus int
		env           bool
		want          int
	}{
		{"one writer", 1, 2, false, 3},
		{"several writers, at most doubled", 6, 2, false, 4},
		{"many CPUs, few writers", 2, 32, false, 34},
		{"environment wins", 6, 2, true, 2},
		{"no SQLite writer", 0, 2, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs, sets := tc.cpus, 0
			gomaxprocs := func(n int) int {
				old := procs
				if n > 0 {
					procs, sets = n, sets+1
				}
				return old
			}
			env := func(k string) (string, bool) {
				if k != ProcsEnv {
					t.Errorf("looked up %q", k)
				}
				return "2", tc.env
			}
			if got := raiseProcs(tc.writers, env, gomaxprocs); got != tc.want || procs != tc.want {
				t.Errorf("raiseProcs(%d) on %d CPUs = %d (runtime %d), want %d", tc.writers, tc.cpus, got, procs, tc.want)
			}
			if unchanged := tc.want == tc.cpus; unchanged && sets != 0 {
				t.Errorf("GOMAXPROCS set %d times, want untouched", sets)
			}
		})
	}
}

//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises the soft limit of open files to the hard limit when
// it is below need, and returns the limit in force and what was done.
func raiseFileLimit(need uint64) (uint64, string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, "limit unknown (" + err.Error() + ")"
	}
	if lim.Cur >= need {
		return lim.Cur, fmt.Sprintf("soft limit %d, hard %d, enough for the %d needed", lim.Cur, lim.Max, need)
	}
	if lim.Cur >= lim.Max {
		return lim.Cur, fmt.Sprintf("soft limit %d, already the hard limit, below the %d needed", lim.Cur, need)
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return old, fmt.Sprintf("soft limit %d, below the %d needed; raising it to the hard limit %d failed: %v", old, need, lim.Max, err)
	}
	return lim.Cur, fmt.Sprintf("soft limit raised from %d to the hard limit %d for the %d needed", old, lim.Cur, need)
}

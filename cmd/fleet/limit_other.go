//go:build !unix

package main

// raiseFileLimit reports that the limit of open files is not known here;
// keep-alive stays on unless -keepalive off is given.
func raiseFileLimit(need uint64) (uint64, string) {
	return need, "limit not checked on this system"
}

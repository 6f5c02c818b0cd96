package cbr

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// This file implements Huawei Cloud's AK/SK request signing, "SDK-HMAC-SHA256":
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n BodyHash
//	StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA256(CanonicalRequest))
//	Signature        = hex(HMAC-SHA256(SK, StringToSign))
//	Authorization    = "SDK-HMAC-SHA256 Access=" AK ", SignedHeaders=" SignedHeaders ", Signature=" Signature
//
// Every CanonicalHeaders line ends in "\n", so a blank line precedes SignedHeaders.
//
// Signing runs once per attempt, so it is written not to allocate: the
// canonical request, the string to sign and the HMAC blocks are built in
// stack buffers, header values are looked up by their canonical keys, and
// AKSK.sign puts X-Sdk-Date and Authorization in one string and their header
// values in one slice.

// sdkDateFormat is the layout of the X-Sdk-Date header.
const sdkDateFormat = "20060102T150405Z"

// emptyBodySHA256 is the hex SHA-256 of an empty body.
const emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// signAlgorithm names the scheme in the string to sign and in the Authorization header.
const signAlgorithm = "SDK-HMAC-SHA256"

// upperHex holds the digits of the uppercase hex used by percent-encoding.
const upperHex = "0123456789ABCDEF"

// headerName is a header that takes part in a signature: its key in an
// http.Header (canonical, as Header.Set makes it) and its lowercase name.
type headerName struct{ key, name string }

// Two names take their values from the signing rather than from the headers.
const (
	hostHeader    = "host"       // the host the request is sent to
	sdkDateHeader = "x-sdk-date" // signing.date
)

// signing is what a signature covers besides the signed headers.
type signing struct {
	method   string
	url      *url.URL    // path and query are used; url.Host is NOT used
	host     string      // the value signed for "host"
	date     []byte      // X-Sdk-Date, also the value signed for "x-sdk-date"
	header   http.Header // the values of the other signed names
	bodyHash []byte      // lowercase hex SHA-256 of the exact body sent, or "UNSIGNED-PAYLOAD"
}

// appendAuthorization appends the value of the Authorization header to dst.
// signed are the distinct headers to sign, in any order: "host" and
// "x-sdk-date" always, every other one when header has a value for it.
// Neither header nor signed is modified.
func (s *signing) appendAuthorization(dst []byte, signed []headerName, ak, sk string) []byte {
	var hdrBuf [8]signedHeader
	hdrs := s.collectSignedHeaders(hdrBuf[:0], signed)

	var crBuf [1024]byte
	cr := s.appendCanonicalRequest(crBuf[:0], hdrs)

	var stsBuf [128]byte
	sts := appendStringToSign(stsBuf[:0], s.date, sha256.Sum256(cr))
	sig := hmacSHA256(sk, sts)

	dst = append(dst, signAlgorithm+" Access="...)
	dst = append(dst, ak...)
	dst = append(dst, ", SignedHeaders="...)
	dst = appendSignedHeaders(dst, hdrs)
	dst = append(dst, ", Signature="...)
	return hex.AppendEncode(dst, sig[:])
}

// appendBodyHash appends the lowercase hex SHA-256 of body to dst.
func appendBodyHash(dst, body []byte) []byte {
	sum := sha256.Sum256(body)
	return hex.AppendEncode(dst, sum[:])
}

// appendSdkDate appends t in UTC as X-Sdk-Date (20060102T150405Z) to dst.
func appendSdkDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, sdkDateFormat)
	}
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10))
	dst = append(dst, byte('0'+month/10), byte('0'+month%10), byte('0'+day/10), byte('0'+day%10), 'T')
	dst = append(dst, byte('0'+hour/10), byte('0'+hour%10), byte('0'+minute/10), byte('0'+minute%10))
	return append(dst, byte('0'+sec/10), byte('0'+sec%10), 'Z')
}

// signedHeader is one header that takes part in the signature.
type signedHeader struct {
	name   string   // lowercase name
	values []string // values as sent; unused for "host" and "x-sdk-date"
}

// collectSignedHeaders returns the headers to sign, sorted by name, using
// buf's storage.
func (s *signing) collectSignedHeaders(buf []signedHeader, signed []headerName) []signedHeader {
	hdrs := buf[:0]
	for _, h := range signed {
		if h.name == hostHeader || h.name == sdkDateHeader {
			hdrs = append(hdrs, signedHeader{name: h.name})
		} else if values := headerValues(s.header, h); len(values) > 0 {
			hdrs = append(hdrs, signedHeader{name: h.name, values: values})
		}
	}
	sortSmall(hdrs, func(a, b signedHeader) bool { return a.name < b.name })
	return hdrs
}

// headerValues returns the values of header h: those under its canonical key,
// or, when there are none, those of a key that differs only in case, as a
// header set directly in the map may be.
func headerValues(header http.Header, h headerName) []string {
	if values, ok := header[h.key]; ok {
		return values
	}
	for k, values := range header {
		if len(k) == len(h.name) && strings.EqualFold(k, h.name) {
			return values
		}
	}
	return nil
}

// appendCanonicalRequest appends the canonical request to dst.
func (s *signing) appendCanonicalRequest(dst []byte, hdrs []signedHeader) []byte {
	var rawQuery string
	if s.url != nil {
		rawQuery = s.url.RawQuery
	}
	dst = append(dst, s.method...)
	dst = append(dst, '\n')
	dst = appendCanonicalURI(dst, s.url)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, rawQuery)
	dst = append(dst, '\n')
	dst = s.appendCanonicalHeaders(dst, hdrs)
	dst = append(dst, '\n')
	dst = appendSignedHeaders(dst, hdrs)
	dst = append(dst, '\n')
	return append(dst, s.bodyHash...)
}

// appendCanonicalURI appends the canonical URI of u to dst: the path split on "/", each decoded segment
// percent-encoded, starting and ending with "/". u.RawPath is preferred when it is a valid encoding of u.Path, so an
// escaped slash ("a%2Fb") stays inside its segment, as on the wire. A nil u gives "/".
func appendCanonicalURI(dst []byte, u *url.URL) []byte {
	var path string
	encoded := false
	if u != nil {
		path = u.Path
		// EscapedPath returns RawPath only when it is valid for Path; that is also what net/http sends.
		if u.RawPath != "" && u.EscapedPath() == u.RawPath {
			path, encoded = u.RawPath, true
		}
	}
	if !strings.HasPrefix(path, "/") {
		dst = append(dst, '/')
	}
	for {
		segment, rest, more := strings.Cut(path, "/")
		if encoded {
			if decoded, err := url.PathUnescape(segment); err == nil {
				segment = decoded
			}
		}
		dst = appendEscaped(dst, segment)
		if !more {
			break
		}
		dst = append(dst, '/')
		path = rest
	}
	if dst[len(dst)-1] != '/' {
		dst = append(dst, '/')
	}
	return dst
}

// appendCanonicalQuery appends the canonical query string of rawQuery to dst: escaped name=value pairs joined by "&",
// sorted by name and then by value, one pair per value, "name=" for an empty value. Pairs that url.ParseQuery
// rejects (a bad escape, a ";") are left out; the rest are still signed.
func appendCanonicalQuery(dst []byte, rawQuery string) []byte {
	var pairBuf [16]queryPair
	pairs := pairBuf[:0]
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 == nil && err2 == nil {
			pairs = append(pairs, queryPair{k, v})
		}
	}
	sortSmall(pairs, func(a, b queryPair) bool { return a.name < b.name || a.name == b.name && a.value < b.value })
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = appendEscaped(dst, p.name)
		dst = append(dst, '=')
		dst = appendEscaped(dst, p.value)
	}
	return dst
}

// sortSmall sorts s by less, stably, by insertion: what signing sorts holds a
// few elements, and it keeps the code of a general sort per element type out
// of every program that signs (about 10 KB each).
func sortSmall[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// queryPair is one name=value of a query, unescaped.
type queryPair struct{ name, value string }

// appendCanonicalHeaders appends one "name:value\n" line per signed header value to dst, with values trimmed and,
// when a header has several, sorted. "host" and "x-sdk-date" take their values from s.
func (s *signing) appendCanonicalHeaders(dst []byte, hdrs []signedHeader) []byte {
	for _, h := range hdrs {
		switch {
		case h.name == hostHeader:
			dst = appendHeaderLine(dst, h.name, s.host)
		case h.name == sdkDateHeader:
			dst = append(dst, sdkDateHeader+":"...)
			dst = append(dst, bytes.TrimSpace(s.date)...)
			dst = append(dst, '\n')
		case len(h.values) == 1:
			dst = appendHeaderLine(dst, h.name, h.values[0])
		default:
			values := make([]string, len(h.values)) // header's own slice is not ours to sort
			for i, v := range h.values {
				values[i] = strings.TrimSpace(v)
			}
			slices.Sort(values)
			for _, v := range values {
				dst = appendHeaderLine(dst, h.name, v)
			}
		}
	}
	return dst
}

// appendHeaderLine appends "name:trimmed value\n" to dst.
func appendHeaderLine(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	dst = append(dst, strings.TrimSpace(value)...)
	return append(dst, '\n')
}

// appendSignedHeaders appends the names of hdrs joined by ";" to dst.
func appendSignedHeaders(dst []byte, hdrs []signedHeader) []byte {
	for i, h := range hdrs {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, h.name...)
	}
	return dst
}

// appendStringToSign appends the string to sign for the given X-Sdk-Date value and canonical request hash to dst.
func appendStringToSign(dst, date []byte, canonicalRequestHash [sha256.Size]byte) []byte {
	dst = append(dst, signAlgorithm+"\n"...)
	dst = append(dst, bytes.TrimSpace(date)...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, canonicalRequestHash[:])
}

// hmacSHA256 returns HMAC-SHA256(key, msg), as defined by RFC 2104:
// SHA256(key^opad || SHA256(key^ipad || msg)). Unlike crypto/hmac, it works
// in stack buffers and does not allocate.
func hmacSHA256(key string, msg []byte) [sha256.Size]byte {
	var block [sha256.BlockSize]byte // the key, zero-padded to a block
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256([]byte(key))
		copy(block[:], sum[:])
	} else {
		copy(block[:], key)
	}
	var buf [sha256.BlockSize + 256]byte
	inner := buf[:0]
	for _, b := range block {
		inner = append(inner, b^0x36)
	}
	innerSum := sha256.Sum256(append(inner, msg...))
	outer := buf[:0]
	for _, b := range block {
		outer = append(outer, b^0x5c)
	}
	return sha256.Sum256(append(outer, innerSum[:]...))
}

// appendEscaped appends s to dst with every byte outside the RFC 3986 unreserved set (A-Z a-z 0-9 - _ . ~)
// percent-encoded with uppercase hex.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0F])
		}
	}
	return dst
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

package cbr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// This file implements Huawei Cloud's AK/SK request signing, "SDK-HMAC-SHA256":
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n BodyHash
//	StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA256(CanonicalRequest))
//	Signature        = hex(HMAC-SHA256(SK, StringToSign))
//	Authorization    = "SDK-HMAC-SHA256 Access=" AK ", SignedHeaders=" SignedHeaders ", Signature=" Signature
//
// Every CanonicalHeaders line ends in "\n", so a blank line precedes SignedHeaders.
// The canonical request and the string to sign are built in stack buffers, so signing a
// typical request allocates little beyond crypto/hmac's state and the returned string.

// sdkDateFormat is the layout of the X-Sdk-Date header.
const sdkDateFormat = "20060102T150405Z"

// emptyBodySHA256 is the hex SHA-256 of an empty body.
const emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// signAlgorithm names the scheme in the string to sign and in the Authorization header.
const signAlgorithm = "SDK-HMAC-SHA256"

// upperHex holds the digits of the uppercase hex used by percent-encoding.
const upperHex = "0123456789ABCDEF"

// signRequest returns the value of the Authorization header for one request.
// It is a pure function: method is the HTTP method, u the request URL (path and query are used; u.Host is NOT
// used), host the value to sign for the "host" header, header the request headers, one key a name as Header.Set
// makes them (must already contain X-Sdk-Date), signed the distinct lowercase header names to sign (any
// order; "host" takes its value from host, every other name from header; a name absent from header is skipped and
// not listed), bodyHash the lowercase hex SHA-256 of the exact body bytes sent (or "UNSIGNED-PAYLOAD"), ak/sk the
// key pair.
//
// Neither header nor signed is modified.
func signRequest(method string, u *url.URL, host string, header http.Header, signed []string, bodyHash, ak, sk string) string {
	var hdrBuf [8]signedHeader
	hdrs := collectSignedHeaders(hdrBuf[:0], header, signed)

	var crBuf [1024]byte
	cr := appendCanonicalRequest(crBuf[:0], method, u, host, hdrs, bodyHash)

	var stsBuf [128]byte
	sts := appendStringToSign(stsBuf[:0], strings.TrimSpace(header.Get("X-Sdk-Date")), sha256.Sum256(cr))
	sig := hmacSHA256(sk, sts)

	var out [256]byte
	auth := append(out[:0], signAlgorithm+" Access="...)
	auth = append(auth, ak...)
	auth = append(auth, ", SignedHeaders="...)
	auth = appendSignedHeaders(auth, hdrs)
	auth = append(auth, ", Signature="...)
	auth = hex.AppendEncode(auth, sig[:])
	return string(auth)
}

// hashBody returns the lowercase hex SHA-256 of body.
func hashBody(body []byte) string {
	sum := sha256.Sum256(body)
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:])
}

// signedHeader is one header that takes part in the signature.
type signedHeader struct {
	name   string   // lowercase name
	values []string // values as sent; unused for "host"
}

// collectSignedHeaders returns the headers to sign, sorted by name, using buf's storage: "host" when signed lists
// it, and every other name of signed that header has values for.
func collectSignedHeaders(buf []signedHeader, header http.Header, signed []string) []signedHeader {
	hdrs := buf[:0]
	for _, name := range signed {
		values := headerValues(header, name)
		if name == "host" || len(values) > 0 {
			hdrs = append(hdrs, signedHeader{name: name, values: values})
		}
	}
	slices.SortFunc(hdrs, func(a, b signedHeader) int { return strings.Compare(a.name, b.name) })
	return hdrs
}

// headerValues returns the values of the header named name in h, ignoring case. Unlike h.Values, it does not
// allocate a canonical form of name.
func headerValues(h http.Header, name string) []string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// appendCanonicalRequest appends the canonical request to dst.
func appendCanonicalRequest(dst []byte, method string, u *url.URL, host string, hdrs []signedHeader, bodyHash string) []byte {
	var rawQuery string
	if u != nil {
		rawQuery = u.RawQuery
	}
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = appendCanonicalURI(dst, u)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, rawQuery)
	dst = append(dst, '\n')
	dst = appendCanonicalHeaders(dst, hdrs, host)
	dst = append(dst, '\n')
	dst = appendSignedHeaders(dst, hdrs)
	dst = append(dst, '\n')
	return append(dst, bodyHash...)
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
// rejects are left out; the rest are still signed.
func appendCanonicalQuery(dst []byte, rawQuery string) []byte {
	if rawQuery == "" {
		return dst
	}
	params, _ := url.ParseQuery(rawQuery)
	var keyBuf [16]string
	keys := keyBuf[:0]
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		values := params[k]
		slices.Sort(values) // params is ours: sorting in place is fine.
		for _, v := range values {
			if !first {
				dst = append(dst, '&')
			}
			first = false
			dst = appendEscaped(dst, k)
			dst = append(dst, '=')
			dst = appendEscaped(dst, v)
		}
	}
	return dst
}

// appendCanonicalHeaders appends one "name:value\n" line per signed header value to dst, with values trimmed and,
// when a header has several, sorted. The "host" header takes its value from host.
func appendCanonicalHeaders(dst []byte, hdrs []signedHeader, host string) []byte {
	for _, h := range hdrs {
		switch {
		case h.name == "host":
			dst = appendHeaderLine(dst, h.name, host)
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
func appendStringToSign(dst []byte, date string, canonicalRequestHash [sha256.Size]byte) []byte {
	dst = append(dst, signAlgorithm+"\n"...)
	dst = append(dst, date...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, canonicalRequestHash[:])
}

// hmacSHA256 returns HMAC-SHA256(key, msg).
func hmacSHA256(key string, msg []byte) [sha256.Size]byte {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(msg)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	return sum
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

//go:build pipeline

package cbr

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A metadata service that never answers is the SDK's own timeout, not the
// caller's deadline.
func TestMetadataTimeoutIsAnAttemptTimeout(t *testing.T) {
	t.Parallel()
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(meta.Close)
	creds, err := ECSMetadata{Endpoint: meta.URL}.bind(binding{now: time.Now})
	require.NoError(t, err)
	m := creds.(*metadataKeys)
	m.timeout = 100 * time.Millisecond

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = m.keys.get(ctx, m.fetch)
	assert.ErrorIs(t, err, ErrAttemptTimeout)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, ctx.Err())
}

// Package cbr is a client for the agent API of Huawei Cloud Backup and
// Recovery (CBR): the calls a backup agent's installer makes to register the
// agent of a host, and to mark it uninstalled when it is removed.
//
// It is written for programs that run unattended on many servers: every call
// takes a context, retries what is safe to retry with jittered backoff, checks
// its input before sending anything, and returns errors that say what failed,
// with the request ID to quote to support. It depends only on the standard
// library, go-retryablehttp and the go-cleanhttp it brings. Package
// [github.com/cbrsdk/cbr/cbrtest] is an in-process fake of the API for tests.
//
// # Quick start
//
//	c, err := cbr.NewClient(
//		cbr.WithRegion("ap-southeast-1"),
//		cbr.WithProjectID("f841e01fd2b14e7fa41b6ae7aa6b0594"),
//		cbr.WithCredentials(cbr.Token(token)),
//	)
//	if err != nil {
//		return err
//	}
//	agent, err := c.RegisterAgent(ctx, cbr.AgentRegister{
//		AgentID:      id, // chosen by the installer; a UUID
//		HostName:     "ecs-00002",
//		HostIP:       "10.10.0.2",
//		HostOS:       "linux",
//		AgentVersion: "1.0.0",
//		AgentType:    cbr.AgentTypeNative,
//	})
//	...
//	agent, err = c.UpdateAgent(ctx, id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
//
// [NewClient] does no I/O and reads no environment variable or file (unless
// [FromEnv] is given): an endpoint (from [WithRegion] or [WithEndpoint]) and
// credentials are required, and a project ID unless the client can look it up
// in IAM (see [WithRegion]); a missing or malformed one is an error that names it.
//
// # Operations
//
// Besides [Client.RegisterAgent] and [Client.UpdateAgent]: [Client.ShowAgent],
// [Client.ListAgents] (one page) and [Client.Agents] (every page, as an
// iterator), [Client.UnregisterAgent] (which deletes the agent's backups),
// [Client.AddAgentPaths], [Client.RemoveAgentPaths] and [Client.CheckAgents].
// RegisterAgent never reports a registration that happened as a failure: when
// an attempt may have taken effect and the call still fails, it asks with
// ShowAgent. Marking an agent uninstalled twice is not an error.
//
// # Authentication
//
// Requests are authenticated by a [Credentials] value, given with
// [WithCredentials]:
//   - [AKSK] signs every attempt with SDK-HMAC-SHA256, with a SecurityToken
//     for temporary keys;
//   - [IAMPassword] gets a project-scoped IAM token, caches it and renews it
//     before it expires, or at once when CBR refuses with a 401 a token older
//     than a minute;
//   - [ECSMetadata] gets the temporary keys of the cloud server's agency from
//     the ECS metadata service, for installers on Huawei Cloud servers;
//   - [Token] is a static project-scoped IAM token, sent as the X-Auth-Token
//     header, as the CBR API reference documents.
//
// [FromEnv] reads the official SDKs' HUAWEICLOUD_SDK_* variables and
// credentials file, only when given. Credentials are applied to every attempt
// afresh, beneath the retries, and are sent only to the endpoint's host; the
// client follows no redirect. No credential prints its secret with any fmt
// verb, with log/slog or as JSON, but fmt cannot redact one held in an
// unexported field of your own struct: keep credentials out of what you print.
//
// # Errors
//
// A call fails with one of:
//   - a [*ValidationError], matching [ErrInvalidRequest], when its input is
//     invalid; nothing was sent;
//   - an [*APIError] for any non-2xx answer, with the status, the service's
//     error code and message (from every body shape CBR, its API gateway and
//     IAM use), the request ID, and the number of attempts; it matches
//     [ErrNotFound] (404), [ErrUnauthorized] (401), [ErrForbidden] (403) or
//     [ErrRateLimited] (429);
//   - the context's error, matched by errors.Is with context.DeadlineExceeded
//     or context.Canceled, when the context ended first;
//   - a wrapped transport error otherwise.
//
// Match the kind with errors.Is and read the details with errors.As:
//
//	_, err := c.UpdateAgent(ctx, id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
//	var apiErr *cbr.APIError
//	switch {
//	case errors.Is(err, cbr.ErrNotFound):
//		// CBR does not know the agent: nothing to uninstall.
//	case errors.As(err, &apiErr):
//		log.Printf("CBR said %s (request id %s)", apiErr.Code, apiErr.RequestID)
//	}
//
// Every error string is one line starting with "cbr: " and holds no secret.
//
// # Retries and timeouts
//
// Every attempt is a whole exchange: the request is sent and the whole answer
// read and decoded within [RetryPolicy].AttemptTimeout (30s by default), so a
// body that breaks or stalls is a failed attempt like a dropped connection.
// Failures (a connection that failed or broke, an attempt that timed out, a
// 500, 502, 503 or 504) are retried up to MaxAttempts (4) attempts, after a
// random wait (full jitter) below 500ms·2ⁿ, capped at 20s. Throttling (a 429,
// or a 503 with Retry-After) is a queue, not a failure: it is waited out until
// the context's deadline, with waits that spread a crowd of clients, and a
// Retry-After is a minimum. No wait is begun that would outlast the deadline:
// a Retry-After beyond it returns the 429 at once. Without a deadline,
// MaxDuration (15 minutes) bounds the call. A TLS or certificate failure, a
// redirect, failed credentials and any other status are never retried. See
// docs/RELIABILITY.md for every guarantee and bound.
//
// An attempt that may have taken effect is never blindly repeated where that
// matters: RegisterAgent looks the agent up with ShowAgent before it sends a
// registration again, UpdateAgent settles an uninstall that may have
// happened, and UnregisterAgent treats a 404 after such an attempt as done.
//
// Give every call a deadline with its context. Without [WithHTTPClient] the
// client uses its own connection pool with timeouts on dialing (10s), the TLS
// handshake (10s) and the response headers (30s); [WithTLSConfig] and
// [WithProxy] configure it. With WithHTTPClient, that client's transport is
// used beneath the retries (read for every attempt), and its Timeout, if
// shorter, bounds each attempt. [Client.Close] releases the idle connections
// of the client's own pool.
//
// # Concurrency
//
// A [Client] is immutable and safe for concurrent use by many goroutines.
// Build one and share it for the life of the program.
package cbr

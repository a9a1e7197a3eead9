// Package spdk is a typed JSON-RPC client for SPDK applications (spdk_tgt and friends), built
// against the behaviour of real SPDK v24.01 recorded in shared/spdk/transcripts (the tests use
// the copy in testdata/transcripts and check it against the original when that is present).
//
// # Connecting
//
// Dial connects to an RPC socket and returns a *Client; New does the same without connecting
// until the first call. The address is a unix socket path ("/var/tmp/spdk.sock") or a TCP
// "host:port" (see ParseAddress). Options: WithLogger (wire traffic at Trace; silent by
// default), WithDialTimeout and WithCallTimeout (a bound for calls whose context has none).
//
// # Calls
//
// Every SPDK method VDA drives has a typed method named after it (bdev_lvol_create is
// BdevLvolCreate) with the uniform shape
//
//	func (c *Client) BdevLvolCreate(ctx context.Context, p BdevLvolCreateParams) (string, error)
//
// so consumers can declare small interfaces over exactly the calls they need. Call invokes any
// other method. Params structs encode to exactly the JSON real SPDK expects: optional values
// whose zero differs from "absent" are pointers (nil is not sent), e.g.
//
//	c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{
//		LvsName: "lvs0", LvolName: "vd1", SizeInMiB: new(uint64(96)), ThinProvision: new(false),
//	})
//
// # Connection behaviour
//
// One Client keeps one connection and pipelines every concurrent call on it, matching replies
// by integer id (SPDK mangles replies to requests without one). The context bounds each call:
// a hung SPDK never blocks a caller past its deadline, and a late reply to an abandoned call is
// dropped. Undecodable bytes from SPDK break the connection: the calls in flight fail and the
// next call reconnects.
//
// When the connection breaks while a reply is awaited, read-only methods (IsReadOnly) are
// retried once on a fresh connection. Any other method fails with an error wrapping
// ErrOutcomeUnknown and is never replayed: SPDK may or may not have executed it, so read the
// state back. A request that could not be written at all was not executed and is retried once.
//
// # Errors
//
// SPDK's error replies are *Error values carrying the method, code and message. errors.Is maps
// them onto sentinels (ErrNotFound, ErrExists, ErrBusy, ErrWrongPhase, ErrInvalidParams, ...),
// smoothing over SPDK's inconsistent codes: -19, -2 and bdev_nvme_get_controllers' +22 are all
// ErrNotFound; -17, -114 and "File exists" texts are ErrExists; -1 is ErrWrongPhase or
// ErrNotPermitted depending on the message.
//
// # Capabilities
//
// Version (spdk_get_version) and Methods (rpc_get_methods) report what the SPDK at the other
// end offers; Supports caches the method list per connection.
package spdk

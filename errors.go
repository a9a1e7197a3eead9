package vda

import "errors"

// Sentinel errors of the Cluster API. Every error a Cluster method returns
// for a caller's mistake or for the cluster's state wraps one of them (test
// with errors.Is); package portal maps them to gRPC status codes.
var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("vda: not found")
	// ErrAlreadyExists: an object with that name already exists.
	ErrAlreadyExists = errors.New("vda: already exists")
	// ErrInvalidArgument: a request field is malformed or out of range.
	ErrInvalidArgument = errors.New("vda: invalid argument")
	// ErrFailedPrecondition: the request is well formed but the cluster's
	// state forbids it (e.g. deleting an object still in use).
	ErrFailedPrecondition = errors.New("vda: failed precondition")
	// ErrResourceExhausted: not enough capacity, disks or controller nodes.
	ErrResourceExhausted = errors.New("vda: resource exhausted")
)

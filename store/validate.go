package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidateKey checks a key: non-empty, at most MaxKeyBytes, valid UTF-8,
// no NUL byte (so that every backend, SQL text columns included, stores it
// unchanged). Backends call it; errors wrap ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	return ValidatePrefix(key)
}

// ValidatePrefix checks a List or Watch prefix: like ValidateKey, but the
// empty prefix (all keys) is allowed.
func ValidatePrefix(prefix string) error {
	if len(prefix) > MaxKeyBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(prefix), MaxKeyBytes)
	}
	if !utf8.ValidString(prefix) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, prefix)
	}
	if strings.IndexByte(prefix, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidKey, prefix)
	}
	return nil
}

// ValidateListOptions checks a List request.
func ValidateListOptions(prefix string, opt ListOptions) error {
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	if opt.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalidArgument, opt.Limit)
	}
	if len(opt.StartAfter) > MaxKeyBytes {
		return fmt.Errorf("%w: start-after key of %d bytes", ErrInvalidKey, len(opt.StartAfter))
	}
	return nil
}

// ValidateWatch checks a Watch request.
func ValidateWatch(prefix string, fromRevision int64) error {
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	if fromRevision < 0 {
		return fmt.Errorf("%w: negative revision %d", ErrInvalidArgument, fromRevision)
	}
	return nil
}

// ValidateTTL checks a lease TTL.
func ValidateTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: lease ttl %v must be positive", ErrInvalidArgument, ttl)
	}
	return nil
}

// ValidateTxn checks a Txn against the limits every backend enforces: valid
// keys, at most MaxTxnOps conds and ops, no key written twice, no value over
// MaxValueBytes, at most MaxTxnBytes in total, non-negative revisions and
// leases.
func ValidateTxn(t Txn) error {
	if len(t.Conds) > MaxTxnOps || len(t.Ops) > MaxTxnOps {
		return fmt.Errorf("%w: %d conds and %d ops, limit %d each",
			ErrInvalidArgument, len(t.Conds), len(t.Ops), MaxTxnOps)
	}
	total := 0
	for _, c := range t.Conds {
		if err := ValidateKey(c.Key); err != nil {
			return fmt.Errorf("cond: %w", err)
		}
		if c.ModRevision < 0 {
			return fmt.Errorf("%w: cond on %q: negative revision", ErrInvalidArgument, c.Key)
		}
		total += len(c.Key)
	}
	seen := make(map[string]struct{}, len(t.Ops))
	for _, op := range t.Ops {
		if err := validateOp(op); err != nil {
			return err
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: key %q written twice in one txn", ErrInvalidArgument, op.Key)
		}
		seen[op.Key] = struct{}{}
		total += len(op.Key) + len(op.Value)
	}
	if total > MaxTxnBytes {
		return fmt.Errorf("%w: txn of %d bytes, limit %d", ErrValueTooLarge, total, MaxTxnBytes)
	}
	return nil
}

func validateOp(op Op) error {
	if err := ValidateKey(op.Key); err != nil {
		return fmt.Errorf("op: %w", err)
	}
	if len(op.Value) > MaxValueBytes {
		return fmt.Errorf("%w: value of %q is %d bytes, limit %d",
			ErrValueTooLarge, op.Key, len(op.Value), MaxValueBytes)
	}
	if op.Lease < 0 {
		return fmt.Errorf("%w: op on %q: negative lease", ErrInvalidArgument, op.Key)
	}
	if op.Delete && (len(op.Value) > 0 || op.Lease != NoLease) {
		return fmt.Errorf("%w: delete of %q carries a value or lease", ErrInvalidArgument, op.Key)
	}
	return nil
}

// PrefixEnd returns the smallest string greater than every string starting
// with prefix, or "" if there is none (prefix empty or all 0xff bytes).
func PrefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

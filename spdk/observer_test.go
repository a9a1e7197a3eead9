package spdk

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWithObserver(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) {
		if r.Method == "bdev_lvol_create" {
			r.replyError(-17, "File exists")
			return
		}
		echoVersion(r)
	})
	type call struct {
		method string
		err    error
	}
	var mu sync.Mutex
	var calls []call
	c := dialTest(t, s, WithObserver(func(method string, d time.Duration, err error) {
		require.GreaterOrEqual(t, d, time.Duration(0))
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{method, err})
	}))
	ctx := context.Background()
	_, err := c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	err = c.Call(ctx, "bdev_lvol_create", nil, nil)
	require.Error(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls, 2)
	require.Equal(t, "spdk_get_version", calls[0].method)
	require.NoError(t, calls[0].err)
	require.Equal(t, "bdev_lvol_create", calls[1].method)
	var se *Error
	require.True(t, errors.As(calls[1].err, &se), "the observer sees the typed error")
	require.Equal(t, -17, se.Code)
}

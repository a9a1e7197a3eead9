package allstores_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/allstores"
)

func TestEveryScheme(t *testing.T) {
	assert.Equal(t, []string{"embedded", "etcd", "memory", "mysql", "postgres", "postgresql", "sqlite"}, store.Schemes())
}

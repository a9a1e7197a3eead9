// Package allstores links every store backend, for programs that let the
// operator choose one by URI (the reference binaries and the dev cluster):
//
//	import _ "github.com/vda-io/vda/store/allstores"
//
// An embedder that uses one backend imports only that one: memstore
// (memory://), etcdstore (etcd://, etcd's client only), etcdembed
// (embedded://, an etcd server in-process), or one of sqlstore's drivers,
// sqlstore/postgres, sqlstore/mysql and sqlstore/sqlite.
package allstores

// Package etcdembed runs a real etcd server in-process: the embedded
// default store of the binaries and the dev cluster, and a fast etcd for
// tests. It links etcd's server, which etcdstore alone does not.
//
// Importing the package registers the store.Open scheme embedded (and
// etcdstore's etcd):
//
//	embedded:///var/lib/vda/etcd?prefix=/vda/
//
// The URL path is the data directory: the etcd server is
// started in-process on it (and serves clients on the unix socket
// <dir>/etcd.sock, for other processes such as the monitor or etcdctl), the
// returned Store talks to it in-process (etcd's v3client: no gRPC, no
// socket), and closing the Store stops the server. Query parameters:
// prefix (key prefix, default none), socket (another socket path).
//
// Start runs a server alone (Server.Client connects to it through the
// socket, Server.InProcessClient without); Open runs one and returns an
// etcdstore.Store on it that stops the server when closed.
package etcdembed

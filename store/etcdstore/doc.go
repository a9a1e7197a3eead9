// Package etcdstore implements store.Store on etcd v3 (clientv3), and
// starts a real etcd server in-process for single-machine deployments and
// tests (StartEmbedded).
//
// Every key lives under a key prefix (Config.Prefix), so several clusters
// or test cases can share one etcd without seeing each other's keys.
// Revisions and leases are etcd's own and therefore shared by every prefix.
//
// Importing the package registers two store.Open schemes:
//
//	etcd://h1:2379,h2:2379/vda?cacert=ca.pem&cert=c.pem&key=c.key&user=u&password=p
//	etcd:///vda?endpoint=unix:///run/etcd.sock
//	embedded:///var/lib/vda/etcd?prefix=/vda/
//
// For etcd://, the URL path is the key prefix ("/vda" means keys under
// "/vda/"; no path means the whole keyspace). Query parameters: cacert
// (CA bundle; implies TLS), cert and key (client certificate; imply TLS),
// tls=1 (TLS with the system roots), user and password (etcd
// authentication; the password may also be given as URL userinfo),
// endpoint (extra endpoints, repeatable, e.g. unix sockets) and
// dial-timeout (a Go duration).
//
// For embedded://, the URL path is the data directory: the etcd server is
// started in-process on it (and serves clients on the unix socket
// <dir>/etcd.sock, e.g. for etcdctl), the returned Store talks to it through
// that socket, and closing the Store stops the server. Query parameters:
// prefix (key prefix, default none), socket (another socket path).
//
// etcd's own logs (zap) are discarded; lifecycle events go to the injected
// hclog.Logger.
package etcdstore

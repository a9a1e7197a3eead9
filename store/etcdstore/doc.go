// Package etcdstore implements store.Store on etcd v3 (clientv3). It links
// etcd's client only; package etcdembed runs an etcd server in-process
// (embedded://) for single-machine deployments and tests.
//
// Every key lives under a key prefix (Config.Prefix), so several clusters
// or test cases can share one etcd without seeing each other's keys.
// Revisions and leases are etcd's own and therefore shared by every prefix.
//
// Importing the package registers the store.Open scheme etcd:
//
//	etcd://h1:2379,h2:2379/vda?cacert=ca.pem&cert=c.pem&key=c.key&user=u&password=p
//	etcd:///vda?endpoint=unix:///run/etcd.sock
//
// For etcd://, the URL path is the key prefix ("/vda" means keys under
// "/vda/"; no path means the whole keyspace). Query parameters: cacert
// (CA bundle; implies TLS), cert and key (client certificate; imply TLS),
// tls=1 (TLS with the system roots), user and password (etcd
// authentication; the password may also be given as URL userinfo),
// endpoint (extra endpoints, repeatable, e.g. unix sockets) and
// dial-timeout (a Go duration).
//
// etcd's own logs (zap) are discarded; lifecycle events go to the injected
// hclog.Logger.
package etcdstore

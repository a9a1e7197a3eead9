// Package hclogzap adapts hclog for the zap logging of libraries such as
// etcd, so their messages reach the logger VDA was given.
package hclogzap

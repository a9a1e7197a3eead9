// Package tutorial holds the control-plane steps of the seed tutorial
// (seed 003, "Multiple Servers Deployment"): its vda_cli commands exactly as
// written and the "exp get" outputs it shows, with helpers to run them
// through our vda CLI and compare the results. The CLI test and the
// multi-host end-to-end test both use it.
package tutorial

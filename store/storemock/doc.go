// Package storemock holds gomock (go.uber.org/mock) doubles of the store
// interfaces (store.Store, store.Watcher, store.Compactor), for embedders'
// unit tests of code that takes a store. Tests of behaviour want a real
// backend instead: memstore is in-process and fast.
//
// Regenerate with go generate ./store/storemock (TestGeneratedCode checks
// that the committed file is current).
package storemock

//go:generate go tool mockgen -write_package_comment=false -package storemock -destination store.go -typed github.com/vda-io/vda/store Store,Watcher,Compactor

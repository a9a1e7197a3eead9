package portaltest

import (
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/portal"
)

// WriteCerts creates a CA in dir and issues a server certificate (for
// 127.0.0.1, ::1 and localhost) and a client certificate, valid for a day.
// Each returned TLSConfig names its certificate, its key and the CA. It is
// mtlstest.WriteCerts.
func WriteCerts(dir string) (server, client portal.TLSConfig, err error) {
	return mtlstest.WriteCerts(dir)
}
